"""The model-server Deployment of one revision in one role (stable, canary or preview)."""

from __future__ import annotations

from typing import Any

from forecastops.builders import env
from forecastops.builders.meta import object_meta
from forecastops.builders.security import (
    container_security_context,
    pod_security_context,
    tmp_mount,
    tmp_volume,
)
from forecastops.kube.names import (
    LABEL_ROLE,
    SERVER_PORT,
    SERVER_PORT_NAME,
    Role,
    deployment_name,
    pod_labels,
    selector_labels,
)
from forecastops.spec import ModelSource, ObjectRef, PodInputs, Scheme, SecretKeyRef, Server
from model_server import contract

CONTAINER = "server"
MODEL_VOLUME = "model"
MODEL_MOUNT = "/models"


def build_deployment(
    owner: ObjectRef,
    inputs: PodInputs,
    *,
    revision: str,
    role: Role,
    replicas: int | None,
    pod_uid: int,
) -> dict[str, Any]:
    """The Deployment running `inputs` as `revision` in `role`.

    `replicas` None leaves the count to a HorizontalPodAutoscaler. The selector holds the
    role but not the revision (a selector is immutable); the pod template carries both.
    """
    labels = pod_labels(owner.name, revision=revision, role=role, version=inputs.model.version)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": object_meta(owner, deployment_name(owner.name, role), labels),
        "spec": {
            **({"replicas": replicas} if replicas is not None else {}),
            "selector": {"matchLabels": {**selector_labels(owner.name), LABEL_ROLE: str(role)}},
            "revisionHistoryLimit": 3,
            "progressDeadlineSeconds": 600,
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0},
            },
            "template": {
                "metadata": {
                    "labels": labels,
                    "annotations": {"kubectl.kubernetes.io/default-container": CONTAINER},
                },
                "spec": build_pod_spec(owner, inputs, revision=revision, pod_uid=pod_uid),
            },
        },
    }


def build_pod_spec(
    owner: ObjectRef, inputs: PodInputs, *, revision: str, pod_uid: int
) -> dict[str, Any]:
    volumes = [tmp_volume()]
    if inputs.model.scheme is Scheme.PVC:
        claim = inputs.model.uri.removeprefix("pvc://").partition("/")[0]
        volumes.append(
            {"name": MODEL_VOLUME, "persistentVolumeClaim": {"claimName": claim, "readOnly": True}}
        )
    return {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": pod_security_context(pod_uid),
        "terminationGracePeriodSeconds": 30,
        "containers": [build_server_container(owner, inputs, revision=revision)],
        "volumes": volumes,
    }


def build_server_container(owner: ObjectRef, inputs: PodInputs, *, revision: str) -> dict[str, Any]:
    mounts = [tmp_mount()]
    if inputs.model.scheme is Scheme.PVC:
        mounts.append({"name": MODEL_VOLUME, "mountPath": MODEL_MOUNT, "readOnly": True})
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": inputs.server.image,
        "imagePullPolicy": str(inputs.server.image_pull_policy),
        "command": ["forecast-server"],
        "args": contract.cli_args(
            model_uri=served_model_uri(inputs.model),
            model_name=owner.name,
            host="0.0.0.0",
            port=SERVER_PORT,
        ),
        "ports": [{"name": SERVER_PORT_NAME, "containerPort": SERVER_PORT, "protocol": "TCP"}],
        "env": server_env(inputs, revision=revision),
        "startupProbe": _probe(contract.LIVE_PATH, period=2, failures=90),
        "livenessProbe": _probe(contract.LIVE_PATH, period=10, failures=3),
        "readinessProbe": _probe(contract.READY_PATH, period=5, failures=3),
        "securityContext": container_security_context(),
        "volumeMounts": mounts,
    }
    resources = inputs.server.resources
    if resources.requests or resources.limits:
        container["resources"] = {
            key: dict(values)
            for key, values in (("requests", resources.requests), ("limits", resources.limits))
            if values
        }
    return container


def served_model_uri(model: ModelSource) -> str:
    """The URI the server loads: a pvc:// model is read from the claim mounted read-only."""
    if model.scheme is Scheme.PVC:
        path = model.uri.removeprefix("pvc://").partition("/")[2]
        return f"file://{MODEL_MOUNT}/{path}"
    return model.uri


def server_env(inputs: PodInputs, *, revision: str) -> list[dict[str, Any]]:
    """The server's settings as environment variables, named by the server's contract."""
    model = inputs.model
    variables = [
        env.setting("revision", revision),
        env.setting("model_version", model.version),
    ]
    if model.sha256:
        variables.append(env.setting("model_sha256", model.sha256))
    if contract := model.output_contract:
        variables.append(env.setting("output_non_negative", str(contract.non_negative).lower()))
        if contract.max_abs_value is not None:
            variables.append(env.setting("output_max_abs_value", repr(contract.max_abs_value)))
        variables.append(env.setting("output_on_violation", str(contract.on_violation)))
    variables += _model_credentials_env(model)
    variables += _server_features_env(inputs.server)
    return variables


def _model_credentials_env(model: ModelSource) -> list[dict[str, Any]]:
    """A credentials Secret holds the model store's keys under the names the CRD documents."""
    if model.credentials_secret is None:
        return []
    secret = model.credentials_secret
    if model.scheme is Scheme.HTTPS:
        ref = SecretKeyRef(secret, env.HTTPS_AUTHORIZATION_KEY)
        return [env.setting_from_secret("model_authorization", ref)]
    return [
        env.setting_from_secret(setting, SecretKeyRef(secret, key), optional=optional)
        for setting, key, optional in (
            ("s3_access_key_id", env.S3_ACCESS_KEY_ID, False),
            ("s3_secret_access_key", env.S3_SECRET_ACCESS_KEY, False),
            ("s3_endpoint_url", env.S3_ENDPOINT_URL, True),
            ("s3_region", env.S3_REGION, True),
        )
    ]


def _server_features_env(server: Server) -> list[dict[str, Any]]:
    variables = []
    if server.auth and server.auth.api_key_secret:
        variables.append(env.setting_from_secret("api_keys", server.auth.api_key_secret))
    if server.auth and server.auth.jwt:
        jwt = server.auth.jwt
        variables.append(env.setting_from_secret("jwt_key", jwt.key_secret))
        if jwt.algorithms:
            variables.append(env.setting("jwt_algorithms", ",".join(jwt.algorithms)))
        variables.append(env.setting("jwt_audience", jwt.audience))
        if jwt.issuer:
            variables.append(env.setting("jwt_issuer", jwt.issuer))
    if server.cache:
        variables.append(env.setting_from_secret("redis_url", server.cache.redis_url_secret))
        variables.append(env.setting("cache_ttl_seconds", server.cache.ttl_seconds))
    if server.prediction_log:
        log = server.prediction_log
        variables.append(env.setting_from_secret("database_url", log.postgres_url_secret))
        variables.append(env.setting("predlog_retention_days", log.retention_days))
    return variables


def _probe(path: str, *, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": SERVER_PORT_NAME},
        "periodSeconds": period,
        "timeoutSeconds": 2,
        "failureThreshold": failures,
    }
