"""The operator's Deployment and the model server's settings agree (the fast tier).

The container the operator builds for each example is read by the server's own settings
code: its args by `forecast-server`'s parser, its env (Secret references replaced by
sample values) by `load_settings`, which refuses unknown ``PREDICTION_*`` variables. The
settings must then say what the resource asked. The integration tier
(tests/integration/operator/test_operator_pod_contract.py) starts the same container.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from forecastops.builders.deployment import build_deployment
from forecastops.kube.names import SERVER_PORT, Role

from devenv.paths import REPO
from model_server import contract
from model_server.main import InvalidSettings, load_settings, main, parse_args

EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))


def server_settings(container: dict[str, Any], monkeypatch: pytest.MonkeyPatch):
    """What `forecast-server` makes of `container`: Secret references read as `<key>`."""
    for name in [n for n in os.environ if n.upper().startswith("PREDICTION_")]:
        monkeypatch.delenv(name)
    assert container["command"] == ["forecast-server"]
    for variable in container["env"]:
        if "value" in variable:
            monkeypatch.setenv(variable["name"], variable["value"])
        else:
            ref = variable["valueFrom"]["secretKeyRef"]
            monkeypatch.setenv(variable["name"], sample(ref["key"]))
    return load_settings(parse_args(container["args"]))


def sample(key: str) -> str:
    """A valid value for a Secret's key of that name."""
    return {
        "url": "postgresql://u:p@db/predlog",
        "authorization": "Bearer t",
        "AWS_ENDPOINT_URL": "http://s3.local:9000",
    }.get(key, f"<{key}>")


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_the_server_reads_what_the_operator_wrote(
    path: Path, parse, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = yaml.safe_load(path.read_text())
    body["metadata"].update(namespace="ns", uid="u")
    fm = parse(body)
    deployment = build_deployment(
        fm.ref, fm.spec.pod, revision="abc123", role=Role.STABLE, replicas=1, pod_uid=10001
    )
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    settings = server_settings(container, monkeypatch)

    spec, server = body["spec"], body["spec"].get("server", {})
    assert (settings.model_name, settings.revision) == (fm.ref.name, "abc123")
    assert (settings.host, settings.port) == ("0.0.0.0", SERVER_PORT)
    assert settings.model_uri == spec["model"]["uri"]
    assert settings.model_version == spec["model"]["version"]
    assert settings.model_sha256 == spec["model"].get("sha256")
    auth = server.get("auth", {})
    assert bool(settings.api_keys) == ("apiKeySecret" in auth)
    assert (settings.jwt_key is not None) == ("jwt" in auth)
    if "jwt" in auth:
        assert settings.jwt_audience == auth["jwt"]["audience"]
        assert settings.jwt_issuer == auth["jwt"].get("issuer")
        assert settings.jwt_algorithms == auth["jwt"].get("algorithms", ["RS256"])
    assert (settings.redis_url is not None) == ("cache" in server)
    if "cache" in server:
        assert settings.cache_ttl_seconds == server["cache"]["ttlSeconds"]
    assert (settings.database_url is not None) == ("predictionLog" in server)
    if "predictionLog" in server:
        assert settings.predlog_retention_days == server["predictionLog"]["retentionDays"]
    contract = spec["model"].get("outputContract", {})
    assert settings.output_non_negative == contract.get("nonNegative", False)
    assert settings.output_max_abs_value == contract.get("maxAbsValue")
    assert settings.output_on_violation == contract.get("onViolation", "count")
    credentials = "credentialsSecret" in spec["model"]
    https = spec["model"]["uri"].startswith("https://")
    assert (settings.model_authorization is not None) == (credentials and https)
    assert (settings.s3_access_key_id is not None) == (credentials and not https)


def test_every_operator_variable_is_a_server_setting(parse) -> None:
    """No example makes the operator write a variable the server does not read."""
    for path in EXAMPLES:
        body = yaml.safe_load(path.read_text())
        body["metadata"].update(namespace="ns", uid="u")
        fm = parse(body)
        deployment = build_deployment(
            fm.ref, fm.spec.pod, revision="r", role=Role.STABLE, replicas=1, pod_uid=1
        )
        env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        names = {variable["name"]: "x" for variable in env}
        assert contract.unknown_variables(names) == [], path.name
        assert all(name.startswith(contract.ENV_PREFIX) for name in names), path.name


def test_a_jwt_without_an_audience_is_refused(parse) -> None:
    from forecastops.spec import InvalidSpec

    body = yaml.safe_load((REPO / "examples/secured.yaml").read_text())
    body["metadata"].update(namespace="ns", uid="u")
    del body["spec"]["server"]["auth"]["jwt"]["audience"]
    with pytest.raises(InvalidSpec, match=r"spec\.server\.auth\.jwt\.audience: is required"):
        parse(body)


# --- the server's side of the contract --------------------------------------------------------
def test_env_name_refuses_a_setting_that_does_not_exist() -> None:
    assert contract.env_name("api_keys") == "PREDICTION_API_KEYS"
    with pytest.raises(KeyError, match=r"no setting 'api_key' \(did you mean api_keys\?\)"):
        contract.env_name("api_key")


@pytest.mark.parametrize(
    ("variable", "hint"),
    [
        ("PREDICTION_API_KEY", "PREDICTION_API_KEYS"),
        ("PREDICTION_LOG_RETENTION_DAYS", "PREDICTION_PREDLOG_RETENTION_DAYS"),
        ("prediction_redis_ur", "PREDICTION_REDIS_URL"),
    ],
)
def test_an_unknown_variable_is_named_with_the_closest_setting(variable: str, hint: str) -> None:
    [problem] = contract.unknown_variables({variable: "x", "PREDICTION_PORT": "1", "HOME": "/"})
    assert problem == f"{variable} is not a setting (did you mean {hint}?)"


def test_the_server_refuses_to_start_on_an_unknown_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PREDICTION_API_KEY", "k")
    assert main(["--model-uri", "file:///nowhere/model.onnx"]) == 2
    err = capsys.readouterr().err
    assert "PREDICTION_API_KEY is not a setting (did you mean PREDICTION_API_KEYS?)" in err


def test_every_problem_is_reported_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREDICTION_POSTGRES_URL", "postgresql://x")
    monkeypatch.setenv("PREDICTION_JWT_KEY", "secret")
    with pytest.raises(InvalidSettings) as refused:
        load_settings({"model_uri": "file:///m.onnx"})
    assert len(refused.value.problems) == 2
    assert "PREDICTION_POSTGRES_URL is not a setting" in refused.value.problems[0]
    assert "jwt_audience is required" in refused.value.problems[1]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PREDICTION_MODEL_AUTHORIZATION": "Bearer t"}, "sent only over https"),
        ({"PREDICTION_S3_ACCESS_KEY_ID": "k"}, "go together"),
    ],
)
def test_credentials_that_cannot_be_used_are_refused(
    env: dict[str, str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(InvalidSettings, match=message):
        load_settings({"model_uri": "s3://b/m.onnx", "model_sha256": "a" * 64})


def test_secret_settings_are_never_plain_values() -> None:
    from forecastops.builders import env

    assert contract.is_secret("api_keys") and not contract.is_secret("revision")
    with pytest.raises(ValueError, match="api_keys is a secret"):
        env.setting("api_keys", "leaked")


def test_cli_args_are_the_servers_flags() -> None:
    args = contract.cli_args(port=8000, model_uri="file:///m.onnx")
    assert args == ["--model-uri", "file:///m.onnx", "--port", "8000"]
    assert parse_args(args) == {"model_uri": "file:///m.onnx", "port": 8000}
    with pytest.raises(KeyError, match="not a flag"):
        contract.cli_args(api_keys="k")
