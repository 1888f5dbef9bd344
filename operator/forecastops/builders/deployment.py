"""The model-server Deployment of one revision in one role (stable, canary or preview)."""

from __future__ import annotations

from typing import Any

from forecastops.builders import env
from forecastops.builders.meta import object_meta
from forecastops.builders.scheduling import scheduling
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
from forecastops.spec import (
    EnvVar,
    ModelSource,
    ObjectRef,
    PodInputs,
    Scheme,
    SecretKeyRef,
    Server,
)
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


PRE_STOP_SECONDS = 5
"""How long a stopping model server keeps serving before SIGTERM (within the 30 s grace)."""


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
        **scheduling(inputs.server),
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
            **{setting: value for setting, (value, _) in _flags(owner, inputs).items()}
        ),
        "ports": [{"name": SERVER_PORT_NAME, "containerPort": SERVER_PORT, "protocol": "TCP"}],
        "env": server_env(inputs, revision=revision),
        "startupProbe": _probe(contract.LIVE_PATH, period=2, failures=90),
        "livenessProbe": _probe(contract.LIVE_PATH, period=10, failures=3),
        "readinessProbe": _probe(contract.READY_PATH, period=5, failures=3),
        # Keep serving while the endpoint removal reaches every kube-proxy (and mesh, and
        # load balancer): without it a connection routed in that window to a pod already
        # gone times out. The kubelet's own sleep: no shell or binary needed in the image.
        "lifecycle": {"preStop": {"sleep": {"seconds": PRE_STOP_SECONDS}}},
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
    """The server's settings as environment variables, named by the server's contract,
    then the spec's own `spec.server.env` (which `env_conflicts` keeps apart from them)."""
    variables = [variable for _, variable in _operator_env(inputs, revision=revision)]
    return variables + [_user_variable(v) for v in inputs.server.env or ()]


def env_conflicts(owner: ObjectRef, inputs: PodInputs) -> list[str]:
    """One problem per ``spec.server.env`` entry that names a variable the operator sets
    itself for these inputs (as a variable or a flag), with the field it comes from.

    Derived from the code that builds the container, so a setting the builder learns is
    guarded at once. Names compare case-insensitively, as the server reads them.
    """
    taken = {name.upper(): source for name, source in _operator_variables(owner, inputs).items()}
    return [
        f"spec.server.env[{index}]: {variable.name} is set by the operator from {source}"
        for index, variable in enumerate(inputs.server.env or ())
        if (source := taken.get(variable.name.upper()))
    ]


def _operator_variables(owner: ObjectRef, inputs: PodInputs) -> dict[str, str]:
    """Every server variable the operator sets, with its source: its env and its flags."""
    sources = {v["name"]: source for source, v in _operator_env(inputs, revision="")}
    for setting, (_, source) in _flags(owner, inputs).items():
        sources[contract.env_name(setting)] = source
    return sources


def _flags(owner: ObjectRef, inputs: PodInputs) -> dict[str, tuple[str | int, str]]:
    """The settings passed as ``forecast-server`` flags: setting -> (value, source)."""
    return {
        "model_uri": (served_model_uri(inputs.model), "spec.model.uri"),
        "model_name": (owner.name, "metadata.name"),
        "host": ("0.0.0.0", "the pod's network (it listens on every address)"),
        "port": (SERVER_PORT, f"the container port ({SERVER_PORT})"),
    }


Sourced = tuple[str, dict[str, Any]]
"""A variable the operator sets, with the spec field it comes from."""


def _operator_env(inputs: PodInputs, *, revision: str) -> list[Sourced]:
    model = inputs.model
    variables: list[Sourced] = [
        ("the revision (a hash of spec.model and spec.server)", env.setting("revision", revision)),
        ("spec.model.version", env.setting("model_version", model.version)),
    ]
    if model.sha256:
        variables.append(("spec.model.sha256", env.setting("model_sha256", model.sha256)))
    if output := model.output_contract:
        source = "spec.model.outputContract"
        variables.append(
            (source, env.setting("output_non_negative", str(output.non_negative).lower()))
        )
        if output.max_abs_value is not None:
            variables.append(
                (source, env.setting("output_max_abs_value", repr(output.max_abs_value)))
            )
        variables.append((source, env.setting("output_on_violation", str(output.on_violation))))
    variables += [("spec.model.credentialsSecret", v) for v in _model_credentials_env(model)]
    variables += _server_features_env(inputs.server)
    return variables


def _user_variable(variable: EnvVar) -> dict[str, Any]:
    if variable.secret is not None:
        return env.from_secret(variable.name, variable.secret)
    return env.value(variable.name, variable.value or "")


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


def _server_features_env(server: Server) -> list[Sourced]:
    variables: list[Sourced] = []
    if server.auth and server.auth.api_key_secret:
        variables.append(
            (
                "spec.server.auth.apiKeySecret",
                env.setting_from_secret("api_keys", server.auth.api_key_secret),
            )
        )
    if server.auth and server.auth.jwt:
        jwt, source = server.auth.jwt, "spec.server.auth.jwt"
        variables.append((source, env.setting_from_secret("jwt_key", jwt.key_secret)))
        if jwt.algorithms:
            variables.append((source, env.setting("jwt_algorithms", ",".join(jwt.algorithms))))
        variables.append((source, env.setting("jwt_audience", jwt.audience)))
        if jwt.issuer:
            variables.append((source, env.setting("jwt_issuer", jwt.issuer)))
    if server.cache:
        source = "spec.server.cache"
        variables.append(
            (source, env.setting_from_secret("redis_url", server.cache.redis_url_secret))
        )
        variables.append((source, env.setting("cache_ttl_seconds", server.cache.ttl_seconds)))
    if server.prediction_log:
        log, source = server.prediction_log, "spec.server.predictionLog"
        variables.append((source, env.setting_from_secret("database_url", log.postgres_url_secret)))
        variables.append((source, env.setting("predlog_retention_days", log.retention_days)))
    return variables


def _probe(path: str, *, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": SERVER_PORT_NAME},
        "periodSeconds": period,
        "timeoutSeconds": 2,
        "failureThreshold": failures,
    }
