"""spec.server.nodeSelector, .tolerations and .env, and spec.autoscaling.behavior: read,
validated with the field named, built into the children, and counted in the revision only
when set."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml
from fmsamples import MODEL, REPO, body_with, example
from forecastops.builders.cronjob import build_backup_cronjob
from forecastops.builders.deployment import build_deployment, env_conflicts
from forecastops.builders.hpa import build_hpa
from forecastops.kube.kinds import OPTIONAL_KINDS, Capabilities
from forecastops.kube.names import Role
from forecastops.kube.revision import compute_revision
from forecastops.reconcile.decide import Snapshot, decide_pass, read_pass
from forecastops.spec import (
    InvalidSpec,
    ScalingPolicyType,
    SelectPolicy,
    TaintEffect,
    TolerationOperator,
)

from model_server import contract

TAINTED = {
    "nodeSelector": {"forecastops.io/pool": "models", "kubernetes.io/arch": "amd64"},
    "tolerations": [
        {"key": "forecastops.io/dedicated", "operator": "Equal", "value": "models"},
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
        {
            "key": "gpu",
            "operator": "Exists",
            "effect": "NoExecute",
            "tolerationSeconds": 30,
        },
    ],
}
FAULTS = [
    {"name": "PREDICTION_FAULT_ERROR_RATE", "value": "0.5"},
    {"name": "PREDICTION_FAULT_LATENCY_MS", "value": "250"},
]
BEHAVIOR = {
    "scaleDown": {
        "stabilizationWindowSeconds": 0,
        "selectPolicy": "Max",
        "policies": [
            {"type": "Percent", "value": 100, "periodSeconds": 1},
            {"type": "Pods", "value": 4, "periodSeconds": 15},
        ],
    },
    "scaleUp": {"selectPolicy": "Disabled"},
}
BACKUP = {"schedule": "0 2 * * *", "destination": {"s3": {"bucket": "b", "credentialsSecret": "s"}}}
PREDICTION_LOG = {"postgresUrlSecret": {"name": "pg", "key": "url"}}
NOW = datetime(2025, 1, 1, tzinfo=UTC)


def problems_of(parse, spec: dict[str, Any]) -> tuple[str, ...]:
    with pytest.raises(InvalidSpec) as raised:
        parse(body_with(spec))
    return raised.value.problems


def pod_spec(deployment: dict[str, Any]) -> dict[str, Any]:
    return deployment["spec"]["template"]["spec"]


def container_env(deployment: dict[str, Any]) -> list[dict[str, Any]]:
    return pod_spec(deployment)["containers"][0]["env"]


# --- nodeSelector and tolerations --------------------------------------------------------------
def test_scheduling_is_read_into_values(parse):
    server = parse(body_with({"model": MODEL, "server": TAINTED})).spec.pod.server
    assert server.node_selector == TAINTED["nodeSelector"]
    first, second, third = server.tolerations
    assert (first.key, first.operator, first.value, first.effect) == (
        "forecastops.io/dedicated",
        TolerationOperator.EQUAL,
        "models",
        None,
    )
    assert second.operator is TolerationOperator.EXISTS and second.effect is TaintEffect.NO_EXECUTE
    assert third.toleration_seconds == 30


def test_every_server_deployment_and_the_backup_pod_get_the_scheduling(parse):
    spec = {
        "model": MODEL,
        "server": {**TAINTED, "predictionLog": PREDICTION_LOG},
        "backup": BACKUP,
    }
    fm = parse(body_with(spec))
    expected_tolerations = [
        {"operator": "Equal", "key": "forecastops.io/dedicated", "value": "models"},
        {"operator": "Exists", "key": "node.kubernetes.io/unreachable", "effect": "NoExecute"},
        {"operator": "Exists", "key": "gpu", "effect": "NoExecute", "tolerationSeconds": 30},
    ]
    pods = [
        pod_spec(
            build_deployment(fm.ref, fm.spec.pod, revision="r", role=role, replicas=1, pod_uid=1)
        )
        for role in Role
    ]
    cronjob = build_backup_cronjob(fm.ref, fm.spec.backup, fm.spec.pod, pod_uid=1)
    pods.append(cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"])
    for pod in pods:
        assert pod["nodeSelector"] == TAINTED["nodeSelector"]
        assert pod["tolerations"] == expected_tolerations


def test_without_scheduling_the_pods_have_no_such_fields(parse):
    fm = parse(example("minimal"))
    pod = pod_spec(
        build_deployment(fm.ref, fm.spec.pod, revision="r", role=Role.STABLE, replicas=1, pod_uid=1)
    )
    assert "nodeSelector" not in pod and "tolerations" not in pod


@pytest.mark.parametrize(
    ("server", "problem"),
    [
        (
            {"tolerations": [{"key": "a", "operator": "Maybe"}]},
            "spec.server.tolerations[0].operator: must be Exists or Equal",
        ),
        (
            {"tolerations": [{"key": "a"}, {"key": "b", "effect": "NoRun"}]},
            "spec.server.tolerations[1].effect: must be one of NoSchedule, PreferNoSchedule, "
            "NoExecute",
        ),
        (
            {"tolerations": [{"key": "a", "operator": "Exists", "value": "x"}]},
            "spec.server.tolerations[0].value: must be empty when operator is Exists",
        ),
        (
            {"tolerations": [{"value": "x"}]},
            "spec.server.tolerations[0].operator: must be Exists when key is empty",
        ),
        (
            {"tolerations": [{"key": "a", "effect": "NoSchedule", "tolerationSeconds": 5}]},
            "spec.server.tolerations[0].tolerationSeconds: applies only to the effect NoExecute",
        ),
        (
            {"tolerations": [{"key": "a", "effect": "NoExecute", "tolerationSeconds": -1}]},
            "spec.server.tolerations[0].tolerationSeconds: must be an integer from 0",
        ),
        ({"tolerations": [{"key": "bad key!"}]}, "spec.server.tolerations[0].key: must be a label"),
        ({"tolerations": {"key": "a"}}, "spec.server.tolerations: must be a list"),
        ({"tolerations": ["a"]}, "spec.server.tolerations[0]: must be an object"),
        ({"nodeSelector": {"pool": "no spaces"}}, "spec.server.nodeSelector.pool: 'no spaces'"),
        ({"nodeSelector": {"-bad": "x"}}, "spec.server.nodeSelector.-bad: is not a valid label"),
        ({"nodeSelector": ["a"]}, "spec.server.nodeSelector: must map names to strings"),
    ],
)
def test_bad_scheduling_names_its_field(parse, server, problem):
    problems = problems_of(parse, {"model": MODEL, "server": server})
    assert any(p.startswith(problem) for p in problems), problems


def test_an_empty_key_with_exists_tolerates_everything(parse):
    spec = {"model": MODEL, "server": {"tolerations": [{"operator": "Exists"}]}}
    fm = parse(body_with(spec))
    pod = pod_spec(
        build_deployment(fm.ref, fm.spec.pod, revision="r", role=Role.STABLE, replicas=1, pod_uid=1)
    )
    assert pod["tolerations"] == [{"operator": "Exists"}]


# --- env -------------------------------------------------------------------------------------
def test_extra_env_follows_the_operators_own_and_secrets_stay_references(parse):
    extra = [
        *FAULTS,
        {"name": "PREDICTION_LOG_LEVEL", "value": "debug"},
        {"name": "TZ", "value": ""},
        {"name": "PREDICTION_JWT_KEY", "valueFrom": {"secretKeyRef": {"name": "j", "key": "k"}}},
    ]
    fm = parse(body_with({"model": MODEL, "server": {"env": extra}}))
    env = container_env(
        build_deployment(fm.ref, fm.spec.pod, revision="r", role=Role.CANARY, replicas=1, pod_uid=1)
    )
    assert env[0]["name"] == "PREDICTION_REVISION"
    assert env[-5:] == [
        {"name": "PREDICTION_FAULT_ERROR_RATE", "value": "0.5"},
        {"name": "PREDICTION_FAULT_LATENCY_MS", "value": "250"},
        {"name": "PREDICTION_LOG_LEVEL", "value": "debug"},
        {"name": "TZ", "value": ""},
        {"name": "PREDICTION_JWT_KEY", "valueFrom": {"secretKeyRef": {"name": "j", "key": "k"}}},
    ]


def test_the_fault_settings_reach_the_server_settings(parse):
    """What a test sets to make a canary bad is what the server reads."""
    from model_server.settings import ServerSettings

    fm = parse(body_with({"model": MODEL, "server": {"env": FAULTS}}))
    env = container_env(
        build_deployment(fm.ref, fm.spec.pod, revision="r", role=Role.CANARY, replicas=1, pod_uid=1)
    )
    plain = {v["name"]: v["value"] for v in env if "value" in v}
    assert contract.unknown_variables(plain) == []
    settings = ServerSettings.model_validate(
        {contract.setting_of(name): value for name, value in plain.items()}
        | {"model_uri": "file:///m.onnx", "model_sha256": None}
    )
    assert (settings.fault_error_rate, settings.fault_latency_ms) == (0.5, 250.0)


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ([{"name": "1ST", "value": "x"}], "spec.server.env[0].name: must be an environment"),
        ([{"value": "x"}], "spec.server.env[0].name: is required"),
        ([{"name": "A"}], "spec.server.env[0]: needs exactly one of value and valueFrom"),
        (
            [{"name": "A", "value": "x", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}],
            "spec.server.env[0]: needs exactly one of value and valueFrom",
        ),
        ([{"name": "A", "value": 3}], "spec.server.env[0].value: must be a string"),
        (
            [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "s"}}}],
            "spec.server.env[0].valueFrom.secretKeyRef.key: is required",
        ),
        (
            [{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}}],
            "spec.server.env[0].valueFrom.secretKeyRef: is required",
        ),
        (
            [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}, {"name": "A", "value": "3"}],
            "spec.server.env[2].name: A is set twice",
        ),
        (
            [
                {"name": "PREDICTION_LOG_LEVEL", "value": "info"},
                {"name": "prediction_log_level", "value": "debug"},
            ],
            "spec.server.env[1].name: prediction_log_level is set twice",
        ),
        (
            [{"name": "OTHER", "value": "x"}, {"name": "PREDICTION_FAULT_RATE", "value": "1"}],
            "spec.server.env[1]: PREDICTION_FAULT_RATE is not a server setting "
            "(did you mean PREDICTION_FAULT_ERROR_RATE?)",
        ),
        (
            [{"name": "PREDICTION_NOTHING_LIKE_IT", "value": "1"}],
            "spec.server.env[0]: PREDICTION_NOTHING_LIKE_IT is not a server setting",
        ),
        (
            [{"name": "PREDICTION_REDIS_URL", "value": "redis://:pw@redis:6379"}],
            "spec.server.env[0]: PREDICTION_REDIS_URL is a secret: set it with "
            "valueFrom.secretKeyRef, never as a value",
        ),
        ({"name": "A", "value": "x"}, "spec.server.env: must be a list"),
    ],
)
def test_bad_env_names_its_entry(parse, env, problem):
    problems = problems_of(parse, {"model": MODEL, "server": {"env": env}})
    assert problem in problems or any(p.startswith(problem) for p in problems), problems


@pytest.mark.parametrize(
    ("server", "env", "problem"),
    [
        (
            {},
            {"name": "PREDICTION_MODEL_URI", "value": "s3://b/other.onnx"},
            "PREDICTION_MODEL_URI is set by the operator from spec.model.uri",
        ),
        (
            {},
            {"name": "PREDICTION_REVISION", "value": "mine"},
            "PREDICTION_REVISION is set by the operator from the revision",
        ),
        (
            {},
            {"name": "prediction_model_version", "value": "v9"},
            "prediction_model_version is set by the operator from spec.model.version",
        ),
        (
            {},
            {"name": "PREDICTION_PORT", "value": "9000"},
            "PREDICTION_PORT is set by the operator from the container port",
        ),
        (
            {"auth": {"apiKeySecret": {"name": "k", "key": "key"}}},
            {
                "name": "PREDICTION_API_KEYS",
                "valueFrom": {"secretKeyRef": {"name": "o", "key": "k"}},
            },
            "PREDICTION_API_KEYS is set by the operator from spec.server.auth.apiKeySecret",
        ),
        (
            {"cache": {"redisUrlSecret": {"name": "r", "key": "url"}}},
            {"name": "PREDICTION_CACHE_TTL_SECONDS", "value": "5"},
            "PREDICTION_CACHE_TTL_SECONDS is set by the operator from spec.server.cache",
        ),
    ],
)
def test_env_the_operator_sets_itself_is_refused_naming_its_source(
    parse, settings, server, env, problem
):
    spec = {"model": MODEL, "server": {**server, "env": [{"name": "A", "value": "1"}, env]}}
    fm = parse(body_with(spec))  # each entry is fine on its own ...
    [conflict] = env_conflicts(fm.ref, fm.spec.pod)
    assert conflict.startswith(f"spec.server.env[1]: {problem}")
    plan = decide_pass(
        read_pass(
            Snapshot(body_with(spec), {}, Capabilities(frozenset(OPTIONAL_KINDS))),
            settings,
            now=NOW,
        )
    )
    assert plan.writes == ()  # ... but the pass refuses the spec and writes nothing
    degraded = next(c for c in plan.status_patch["conditions"] if c["type"] == "Degraded")
    assert degraded["reason"] == "InvalidSpec"
    assert degraded["message"].startswith(f"spec.server.env[1]: {problem}")


def test_a_setting_the_operator_leaves_alone_is_allowed(parse):
    spec = {
        "model": MODEL,
        "server": {
            "env": [
                {
                    "name": "PREDICTION_API_KEYS",
                    "valueFrom": {"secretKeyRef": {"name": "o", "key": "k"}},
                },
                {"name": "PREDICTION_WORKERS", "value": "2"},
            ]
        },
    }
    fm = parse(body_with(spec))
    assert env_conflicts(fm.ref, fm.spec.pod) == []


# --- the revision ----------------------------------------------------------------------------
def _without_new_fields() -> dict[str, Any]:
    """The production example as it was before these fields existed."""
    body = example("production")
    for key in ("nodeSelector", "tolerations", "env"):
        body["spec"]["server"].pop(key, None)
    body["spec"]["autoscaling"].pop("behavior", None)
    return body


def _revision(parse, server: dict[str, Any]) -> str:
    body = _without_new_fields()
    body["spec"]["server"].update(copy.deepcopy(server))
    return compute_revision(parse(body).spec.pod)


def test_absent_or_empty_new_fields_keep_the_revision(parse):
    before = _revision(parse, {})
    assert _revision(parse, {"nodeSelector": {}, "tolerations": [], "env": []}) == before
    body = _without_new_fields()
    body["spec"]["autoscaling"]["behavior"] = BEHAVIOR
    assert compute_revision(parse(body).spec.pod) == before  # the HPA shapes no pod


@pytest.mark.parametrize(
    "server",
    [
        {"nodeSelector": {"pool": "models"}},
        {"tolerations": [{"key": "a", "operator": "Exists"}]},
        {"env": [{"name": "PREDICTION_FAULT_ERROR_RATE", "value": "1"}]},
    ],
    ids=["nodeSelector", "tolerations", "env"],
)
def test_set_new_fields_make_a_new_revision(parse, server):
    assert _revision(parse, server) != _revision(parse, {})


def test_a_changed_env_value_is_a_new_revision(parse):
    bad = _revision(parse, {"env": [{"name": "PREDICTION_FAULT_ERROR_RATE", "value": "1"}]})
    good = _revision(parse, {"env": [{"name": "PREDICTION_FAULT_ERROR_RATE", "value": "0"}]})
    assert bad != good


# --- autoscaling.behavior --------------------------------------------------------------------
def test_behavior_is_read_and_becomes_the_hpas(parse):
    spec = {"model": MODEL, "autoscaling": {"maxReplicas": 5, "behavior": BEHAVIOR}}
    fm = parse(body_with(spec))
    behavior = fm.spec.autoscaling.behavior
    assert behavior.scale_down.stabilization_window_seconds == 0
    assert behavior.scale_down.policies[0].type is ScalingPolicyType.PERCENT
    assert behavior.scale_up.select_policy is SelectPolicy.DISABLED
    assert build_hpa(fm.ref, fm.spec.autoscaling)["spec"]["behavior"] == BEHAVIOR


def test_without_behavior_the_hpa_has_its_defaults(parse):
    fm = parse(body_with({"model": MODEL, "autoscaling": {"maxReplicas": 5, "behavior": {}}}))
    assert fm.spec.autoscaling.behavior is None
    assert "behavior" not in build_hpa(fm.ref, fm.spec.autoscaling)["spec"]


@pytest.mark.parametrize(
    ("behavior", "problem"),
    [
        (
            {"scaleDown": {"stabilizationWindowSeconds": 3601}},
            "spec.autoscaling.behavior.scaleDown.stabilizationWindowSeconds: must be an integer "
            "from 0 to 3600",
        ),
        (
            {"scaleUp": {"selectPolicy": "Most"}},
            "spec.autoscaling.behavior.scaleUp.selectPolicy: must be one of Max, Min, Disabled",
        ),
        (
            {"scaleUp": {"policies": [{"type": "Nodes", "value": 1, "periodSeconds": 1}]}},
            "spec.autoscaling.behavior.scaleUp.policies[0].type: must be Pods or Percent",
        ),
        (
            {"scaleUp": {"policies": [{"type": "Pods", "value": 0, "periodSeconds": 1}]}},
            "spec.autoscaling.behavior.scaleUp.policies[0].value: must be an integer from 1",
        ),
        (
            {"scaleDown": {"policies": [{"type": "Pods", "value": 1, "periodSeconds": 1801}]}},
            "spec.autoscaling.behavior.scaleDown.policies[0].periodSeconds: must be an integer "
            "from 1 to 1800",
        ),
        (
            {"scaleDown": {"policies": [{"type": "Pods", "value": 1}]}},
            "spec.autoscaling.behavior.scaleDown.policies[0].periodSeconds: is required",
        ),
        (
            {"scaleDown": {"policies": []}},
            "spec.autoscaling.behavior.scaleDown.policies: must list at least one policy",
        ),
    ],
)
def test_bad_behavior_names_its_field(parse, behavior, problem):
    spec = {"model": MODEL, "autoscaling": {"maxReplicas": 5, "behavior": behavior}}
    problems = problems_of(parse, spec)
    assert any(p.startswith(problem) for p in problems), problems


# --- the CRD -------------------------------------------------------------------------------
def _crd_spec() -> dict[str, Any]:
    crd = yaml.safe_load((REPO / "crds" / "forecastmodel.yaml").read_text())
    (version,) = crd["spec"]["versions"]
    return version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]


def _typed_everywhere(node: dict[str, Any], path: str) -> list[str]:
    """Paths in `node` without a type: a structural schema has one at every level."""
    missing = [] if "type" in node or "anyOf" in node else [path]
    for name, child in node.get("properties", {}).items():
        missing += _typed_everywhere(child, f"{path}.{name}")
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            missing += _typed_everywhere(node[key], f"{path}[{key}]")
    return missing


def test_the_crd_describes_the_new_fields_structurally():
    spec = _crd_spec()
    server, autoscaling = spec["server"]["properties"], spec["autoscaling"]["properties"]
    fields = {
        "spec.server.nodeSelector": server["nodeSelector"],
        "spec.server.tolerations": server["tolerations"],
        "spec.server.env": server["env"],
        "spec.autoscaling.behavior": autoscaling["behavior"],
    }
    for path, schema in fields.items():
        assert schema.get("description"), path
        assert _typed_everywhere(schema, path) == []
    toleration = server["tolerations"]["items"]["properties"]
    assert toleration["operator"]["enum"] == [o.value for o in TolerationOperator]
    assert toleration["effect"]["enum"] == [e.value for e in TaintEffect]
    assert server["env"]["x-kubernetes-list-map-keys"] == ["name"]
    rules = autoscaling["behavior"]["properties"]
    assert rules["scaleUp"] == rules["scaleDown"]
    assert rules["scaleUp"]["properties"]["selectPolicy"]["enum"] == [p.value for p in SelectPolicy]
    policy = rules["scaleUp"]["properties"]["policies"]["items"]["properties"]
    assert policy["type"]["enum"] == [t.value for t in ScalingPolicyType]
    assert (policy["periodSeconds"]["minimum"], policy["periodSeconds"]["maximum"]) == (1, 1800)
    window = rules["scaleDown"]["properties"]["stabilizationWindowSeconds"]
    assert (window["minimum"], window["maximum"]) == (0, 3600)
