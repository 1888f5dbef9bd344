"""Settings: environment with the PREDICTION_ prefix, flags over environment, secrets hidden."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from model_server.settings import ServerSettings, redact_uri

SHA = "ab" * 32


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("PREDICTION_"):
            monkeypatch.delenv(name)


def test_environment_with_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREDICTION_MODEL_URI", "file:///m/model.onnx")
    monkeypatch.setenv("PREDICTION_REVISION", "rev-7")
    monkeypatch.setenv("PREDICTION_FAULT_ERROR_RATE", "0.25")
    monkeypatch.setenv("PREDICTION_API_KEYS", "one, two,,")
    settings = ServerSettings()
    assert settings.revision == "rev-7"
    assert settings.fault_error_rate == 0.25
    assert [k.get_secret_value() for k in settings.api_keys] == ["one", "two"]


def test_arguments_override_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREDICTION_MODEL_URI", "file:///env.onnx")
    monkeypatch.setenv("PREDICTION_PORT", "9000")
    settings = ServerSettings(model_uri="file:///flag.onnx", port=9100)
    assert (settings.model_uri, settings.port) == ("file:///flag.onnx", 9100)


def test_defaults_are_safe() -> None:
    settings = ServerSettings(model_uri="/m/model.onnx")
    assert settings.host == "127.0.0.1"
    assert settings.workers == 1
    assert settings.intra_op_threads is None  # cores // workers, decided at load
    assert settings.fault_error_rate == 0 and settings.fault_latency_ms == 0
    assert settings.redis_url is None and settings.database_url is None
    assert settings.api_keys == [] and settings.jwt_key is None
    assert settings.model_scheme == "file"


@pytest.mark.parametrize("uri", ["s3://bucket/model.onnx", "https://models.example/m.onnx"])
def test_remote_models_need_a_sha256(uri: str) -> None:
    with pytest.raises(ValidationError, match="model_sha256 is required"):
        ServerSettings(model_uri=uri)
    assert ServerSettings(model_uri=uri, model_sha256=SHA).model_sha256 == SHA


def test_sha256_is_normalised_and_checked() -> None:
    settings = ServerSettings(model_uri="s3://b/k", model_sha256=f"sha256:{SHA.upper()}")
    assert settings.model_sha256 == SHA
    with pytest.raises(ValidationError, match="64 hexadecimal"):
        ServerSettings(model_uri="s3://b/k", model_sha256="abc")


def test_unsupported_scheme() -> None:
    with pytest.raises(ValidationError, match="unsupported scheme 'ftp'"):
        ServerSettings(model_uri="ftp://host/model.onnx", model_sha256=SHA)


def test_jwt_needs_an_audience_and_a_real_algorithm() -> None:
    with pytest.raises(ValidationError, match="jwt_audience is required"):
        ServerSettings(model_uri="/m", jwt_key="k")
    with pytest.raises(ValidationError, match="'none' is not allowed"):
        ServerSettings(model_uri="/m", jwt_key="k", jwt_audience="a", jwt_algorithms="HS256,none")


def test_fault_rate_is_a_fraction() -> None:
    with pytest.raises(ValidationError):
        ServerSettings(model_uri="/m", fault_error_rate=1.5)


def test_public_summary_hides_secrets() -> None:
    settings = ServerSettings(
        model_uri="https://user:pw@models.example/m.onnx?X-Amz-Signature=s3cr3t",
        model_sha256=SHA,
        api_keys="key-one",
        jwt_key="jwt-secret",
        jwt_audience="forecast",
        redis_url="redis://:redis-pw@cache:6379/0",
        database_url="postgresql://u:pg-pw@db/predictions",
    )
    text = repr(settings.public_summary()) + repr(settings)
    for secret in ("pw", "s3cr3t", "key-one", "jwt-secret"):
        assert secret not in text
    assert settings.public_summary()["model_uri"] == "https://models.example/m.onnx"
    assert settings.public_summary()["redis_url"] == "<set>"


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        ("s3://bucket/a/model.onnx", "s3://bucket/a/model.onnx"),
        ("https://u:p@h:8443/m.onnx?sig=x", "https://h:8443/m.onnx"),
        ("http://[::1]:9000/m.onnx", "http://[::1]:9000/m.onnx"),
        ("/local/model.onnx", "/local/model.onnx"),
    ],
)
def test_redact_uri(uri: str, shown: str) -> None:
    assert redact_uri(uri) == shown
