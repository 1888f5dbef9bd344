"""Every builder, against golden YAML, and the properties every generated pod must have."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from fmsamples import MODEL, body_with, example
from forecastops.backup.settings import BackupSettings
from forecastops.builders.cronjob import build_backup_cronjob
from forecastops.builders.deployment import build_deployment
from forecastops.builders.service import build_service
from forecastops.kube.kinds import CHILD_KINDS, OPTIONAL_KINDS, Capabilities
from forecastops.kube.names import LABEL_REVISION, LABEL_ROLE, Role
from forecastops.kube.revision import compute_revision
from forecastops.reconcile.children import build_children
from forecastops.reconcile.delivery import decide_delivery, prepare

from model_server import contract

EVERYTHING = Capabilities(frozenset(OPTIONAL_KINDS))
SECRET_ENV = {contract.env_name(s) for s in contract.settings() if contract.is_secret(s)} | {
    BackupSettings.env_name(name)
    for name, field in BackupSettings.model_fields.items()
    if "SecretStr" in str(field.annotation)
}


def children_of(fm, capabilities=EVERYTHING) -> dict[str, dict[str, Any]]:
    """The children of `fm`'s first revision (deployed directly, before any rollout)."""
    revision = compute_revision(fm.spec.pod)
    body = {"metadata": {"name": fm.ref.name, "namespace": fm.ref.namespace, "uid": fm.ref.uid}}
    preparation = prepare(body, fm.spec.rollout, now=datetime(2025, 1, 1, tzinfo=UTC))
    first = decide_delivery(preparation, body, {}, revision=revision, measurements={})
    desired = build_children(
        fm, revision=revision, capabilities=capabilities, pod_uid=10001, delivery=first
    )
    return {_label(key, fm.ref.name): manifest for key, manifest in desired.manifests.items()}


def _label(key, instance: str) -> str:
    """The kind; `Service-metrics` for the Service `<name>-metrics` beside the main one."""
    suffix = key.name.removeprefix(instance).removeprefix("-")
    return f"{key.kind}-{suffix}" if key.kind == "Service" and suffix else key.kind


@pytest.mark.parametrize("name", ["minimal", "production"])
def test_children_of_each_example_match_their_golden_files(name, parse, golden):
    for kind, manifest in children_of(parse(example(name))).items():
        golden(f"{name}-{kind.lower()}", manifest)


def test_minimal_example_has_exactly_the_always_present_children(parse):
    kinds = set(children_of(parse(example("minimal")), Capabilities()))
    assert kinds == {"Deployment", "Service", "PodDisruptionBudget", "NetworkPolicy"}


def test_production_example_has_every_kind_of_child(parse):
    kinds = {kind.kind for kind in CHILD_KINDS}
    assert set(children_of(parse(example("production")))) == kinds | {"Service-metrics"}


def test_pvc_model_is_mounted_read_only_and_served_as_a_file(parse, golden):
    fm = parse(body_with({"model": {**MODEL, "uri": "pvc://model-store/store-demand/v7.onnx"}}))
    deployment = build_deployment(
        fm.ref, fm.spec.pod, revision="abc", role=Role.STABLE, replicas=2, pod_uid=10001
    )
    golden("deployment-pvc-model", deployment)


def test_jwt_and_https_credentials_are_secret_references(parse):
    spec = {
        "model": {**MODEL, "uri": "https://models.example.com/m.onnx", "credentialsSecret": "web"},
        "server": {
            "auth": {
                "jwt": {
                    "keySecret": {"name": "jwt", "key": "public.pem"},
                    "algorithms": ["RS256", "ES256"],
                    "audience": "forecasts",
                    "issuer": "https://id.example.com",
                }
            }
        },
    }
    fm = parse(body_with(spec))
    env = _env(
        build_deployment(fm.ref, fm.spec.pod, revision="r", role=Role.STABLE, replicas=1, pod_uid=1)
    )
    assert env["PREDICTION_JWT_KEY"] == {"secretKeyRef": {"name": "jwt", "key": "public.pem"}}
    assert env["PREDICTION_JWT_ALGORITHMS"] == "RS256,ES256"
    assert env["PREDICTION_JWT_AUDIENCE"] == "forecasts"
    assert env["PREDICTION_MODEL_AUTHORIZATION"] == {
        "secretKeyRef": {"name": "web", "key": "authorization"}
    }


def test_canary_deployment_is_apart_from_stable_but_behind_the_same_service(parse):
    fm = parse(example("minimal"))
    stable = build_deployment(
        fm.ref, fm.spec.pod, revision="a", role=Role.STABLE, replicas=3, pod_uid=1
    )
    canary = build_deployment(
        fm.ref, fm.spec.pod, revision="b", role=Role.CANARY, replicas=1, pod_uid=1
    )
    service = build_service(fm.ref)
    assert (stable["metadata"]["name"], canary["metadata"]["name"]) == (
        "store-demand",
        "store-demand-canary",
    )
    for deployment, role in ((stable, "stable"), (canary, "canary")):
        selector = deployment["spec"]["selector"]["matchLabels"]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert selector[LABEL_ROLE] == role and LABEL_REVISION not in selector
        assert selector.items() <= labels.items()
        assert service["spec"]["selector"].items() <= labels.items()
    assert LABEL_REVISION not in service["spec"]["selector"]


def test_hpa_leaves_the_replica_count_to_the_autoscaler(parse):
    children = children_of(parse(example("production")))
    assert "replicas" not in children["Deployment"]["spec"]
    assert children["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]["name"] == "store-demand"


def test_backup_goes_under_the_namespace_without_a_prefix_and_skips_pvc_models(parse):
    spec = {
        "model": {**MODEL, "uri": "pvc://claim/m.onnx"},
        "server": {"predictionLog": {"postgresUrlSecret": {"name": "pl", "key": "url"}}},
        "backup": {
            "schedule": "0 2 * * *",
            "destination": {"s3": {"bucket": "b", "credentialsSecret": "s"}},
        },
    }
    fm = parse(body_with(spec))
    cronjob = build_backup_cronjob(fm.ref, fm.spec.backup, fm.spec.pod, pod_uid=1)
    env = _env(cronjob, "jobTemplate")
    assert env["FORECASTOPS_BACKUP_PREFIX"] == "retail/"
    assert not any(name.startswith("FORECASTOPS_BACKUP_STABLE_MODEL") for name in env)
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"


@pytest.mark.parametrize("name", ["minimal", "production"])
def test_every_pod_meets_pod_security_restricted(name, parse):
    for pod in _pod_specs(children_of(parse(example(name))).values()):
        security = pod["securityContext"]
        assert security["runAsNonRoot"] is True and security["runAsUser"] > 0
        assert security["seccompProfile"] == {"type": "RuntimeDefault"}
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"] == {"drop": ["ALL"]}
            assert context["readOnlyRootFilesystem"] is True
            assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
        assert {"name": "tmp", "emptyDir": {}} in pod["volumes"]


@pytest.mark.parametrize("name", ["minimal", "production"])
def test_secrets_are_only_ever_referenced(name, parse):
    for pod in _pod_specs(children_of(parse(example(name))).values()):
        for container in pod["containers"]:
            for variable in container.get("env", []):
                if variable["name"] in SECRET_ENV:
                    assert "value" not in variable and "secretKeyRef" in variable["valueFrom"]


def test_model_server_container_runs_the_documented_command(parse):
    children = children_of(parse(example("production")))
    container = children["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["forecast-server"]
    assert container["args"][:4] == ["--model-uri", MODEL["uri"], "--model-name", "store-demand"]
    assert container["args"][-2:] == ["--port", "8000"]
    assert container["readinessProbe"]["httpGet"] == {"path": contract.READY_PATH, "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": contract.LIVE_PATH, "port": "http"}
    env = _env(children["Deployment"])
    assert {"PREDICTION_REVISION", "PREDICTION_MODEL_SHA256", "PREDICTION_MODEL_VERSION"} <= set(
        env
    )


def test_every_child_is_owned_by_its_forecastmodel(parse):
    for manifest in children_of(parse(example("production"))).values():
        (owner,) = manifest["metadata"]["ownerReferences"]
        assert owner["kind"] == "ForecastModel" and owner["controller"] is True
        assert manifest["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "forecastops"


def _pod_specs(manifests) -> list[dict[str, Any]]:
    pods = []
    for manifest in manifests:
        if manifest["kind"] == "Deployment":
            pods.append(manifest["spec"]["template"]["spec"])
        elif manifest["kind"] == "CronJob":
            pods.append(manifest["spec"]["jobTemplate"]["spec"]["template"]["spec"])
    return pods


def _env(manifest: dict[str, Any], via: str = "") -> dict[str, Any]:
    spec = manifest["spec"]["jobTemplate"]["spec"] if via else manifest["spec"]
    (container,) = spec["template"]["spec"]["containers"]
    return {v["name"]: v.get("value", v.get("valueFrom")) for v in container["env"]}


def test_a_stopping_model_server_keeps_serving_while_its_endpoint_is_removed(parse):
    """preStop sleeps (the kubelet's own action: the image needs no shell) before SIGTERM,
    within the grace period, so no connection is routed to a pod that is already gone
    (measured on the real node: a canary promotion under load lost a connection without it)."""
    pod = children_of(parse(example("production")))["Deployment"]["spec"]["template"]["spec"]
    [container] = pod["containers"]
    sleep = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert 0 < sleep < pod["terminationGracePeriodSeconds"]
    assert "exec" not in container["lifecycle"]["preStop"]
