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
from forecastops.names import (
    LABEL_ROLE,
    LIVENESS_PATH,
    READINESS_PATH,
    SERVER_PORT,
    SERVER_PORT_NAME,
    Role,
    deployment_name,
    pod_labels,
    selector_labels,
)
from forecastops.spec import ModelSource, ObjectRef, PodInputs, Scheme, SecretKeyRef, Server

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
        "args": [
            "--model-uri",
            served_model_uri(inputs.model),
            "--model-name",
            owner.name,
            "--host",
            "0.0.0.0",
            "--port",
            str(SERVER_PORT),
        ],
        "ports": [{"name": SERVER_PORT_NAME, "containerPort": SERVER_PORT, "protocol": "TCP"}],
        "env": server_env(inputs, revision=revision),
        "startupProbe": _probe(LIVENESS_PATH, period=2, failures=90),
        "livenessProbe": _probe(LIVENESS_PATH, period=10, failures=3),
        "readinessProbe": _probe(READINESS_PATH, period=5, failures=3),
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
    model = inputs.model
    variables = [
        env.value("PREDICTION_REVISION", revision),
        env.value("PREDICTION_MODEL_VERSION", model.version),
    ]
    if model.sha256:
        variables.append(env.value("PREDICTION_MODEL_SHA256", model.sha256))
    variables += _model_credentials_env(model)
    variables += _server_features_env(inputs.server)
    return variables


def _model_credentials_env(model: ModelSource) -> list[dict[str, Any]]:
    if model.credentials_secret is None:
        return []
    secret = model.credentials_secret
    if model.scheme is Scheme.HTTPS:
        return [
            env.from_secret("PREDICTION_MODEL_AUTHORIZATION", SecretKeyRef(secret, "authorization"))
        ]
    return [
        env.from_secret("AWS_ACCESS_KEY_ID", SecretKeyRef(secret, "AWS_ACCESS_KEY_ID")),
        env.from_secret("AWS_SECRET_ACCESS_KEY", SecretKeyRef(secret, "AWS_SECRET_ACCESS_KEY")),
        env.from_secret(
            "AWS_ENDPOINT_URL", SecretKeyRef(secret, "AWS_ENDPOINT_URL"), optional=True
        ),
        env.from_secret("AWS_REGION", SecretKeyRef(secret, "AWS_REGION"), optional=True),
    ]


def _server_features_env(server: Server) -> list[dict[str, Any]]:
    variables = []
    if server.auth and server.auth.api_key_secret:
        variables.append(env.from_secret("PREDICTION_API_KEY", server.auth.api_key_secret))
    if server.auth and server.auth.jwt:
        jwt = server.auth.jwt
        variables.append(env.from_secret("PREDICTION_JWT_KEY", jwt.key_secret))
        if jwt.algorithms:
            variables.append(env.value("PREDICTION_JWT_ALGORITHMS", ",".join(jwt.algorithms)))
        if jwt.audience:
            variables.append(env.value("PREDICTION_JWT_AUDIENCE", jwt.audience))
        if jwt.issuer:
            variables.append(env.value("PREDICTION_JWT_ISSUER", jwt.issuer))
    if server.cache:
        variables.append(env.from_secret("PREDICTION_REDIS_URL", server.cache.redis_url_secret))
        variables.append(env.value("PREDICTION_CACHE_TTL_SECONDS", server.cache.ttl_seconds))
    if server.prediction_log:
        log = server.prediction_log
        variables.append(env.from_secret("PREDICTION_POSTGRES_URL", log.postgres_url_secret))
        variables.append(env.value("PREDICTION_LOG_RETENTION_DAYS", log.retention_days))
    return variables


def _probe(path: str, *, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": SERVER_PORT_NAME},
        "periodSeconds": period,
        "timeoutSeconds": 2,
        "failureThreshold": failures,
    }
