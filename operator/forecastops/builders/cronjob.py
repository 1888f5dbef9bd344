"""The backup CronJob: `forecastctl backup` in the server image, on the spec's schedule."""

from __future__ import annotations

from typing import Any

from forecastops.backup.settings import BackupSettings
from forecastops.builders import env
from forecastops.builders.meta import object_meta
from forecastops.builders.scheduling import scheduling
from forecastops.builders.security import (
    container_security_context,
    pod_security_context,
    tmp_mount,
    tmp_volume,
)
from forecastops.kube.names import Component, backup_cronjob_name, common_labels
from forecastops.spec import Backup, ModelSource, ObjectRef, PodInputs, Scheme, SecretKeyRef, Server

CONTAINER = "backup"


def build_backup_cronjob(
    owner: ObjectRef, backup: Backup, stable: PodInputs, *, pod_uid: int
) -> dict[str, Any]:
    """One backup at a time (Forbid), three of each outcome kept for `kubectl get jobs`.

    It runs in the stable revision's server image and backs up that revision's model, on
    the nodes the server may run on (spec.server.nodeSelector and tolerations).
    """
    labels = common_labels(owner.name, Component.BACKUP)
    spec: dict[str, Any] = {
        "schedule": backup.schedule,
        "suspend": backup.suspend,
        "concurrencyPolicy": "Forbid",
        "startingDeadlineSeconds": 600,
        "successfulJobsHistoryLimit": 3,
        "failedJobsHistoryLimit": 3,
        "jobTemplate": {
            "metadata": {"labels": labels},
            "spec": {
                "backoffLimit": 2,
                "activeDeadlineSeconds": 3 * 3600,
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "restartPolicy": "Never",
                        "enableServiceLinks": False,
                        "securityContext": pod_security_context(pod_uid),
                        **scheduling(stable.server),
                        "containers": [_container(owner, backup, stable.server, stable.model)],
                        "volumes": [tmp_volume()],
                    },
                },
            },
        },
    }
    if backup.time_zone:
        spec["timeZone"] = backup.time_zone
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": object_meta(owner, backup_cronjob_name(owner.name), labels),
        "spec": spec,
    }


def _container(
    owner: ObjectRef, backup: Backup, server: Server, model: ModelSource
) -> dict[str, Any]:
    return {
        "name": CONTAINER,
        "image": server.image,
        "imagePullPolicy": str(server.image_pull_policy),
        "command": ["forecastctl", "backup", "backup", "--name", owner.name],
        "env": backup_env(owner, backup, server, model),
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
        "securityContext": container_security_context(),
        "volumeMounts": [tmp_mount()],
    }


def backup_env(
    owner: ObjectRef, backup: Backup, server: Server, model: ModelSource
) -> list[dict[str, Any]]:
    """The settings of `forecastctl backup`, named by `BackupSettings`; credentials by reference.

    Without a prefix, backups go under `<namespace>/`, so that ForecastModels of the same
    name in different namespaces never share keys.
    """
    s3 = backup.destination
    variables = [
        _setting("name", owner.name),
        _setting("bucket", s3.bucket),
        _setting("prefix", s3.prefix or f"{owner.namespace}/"),
        _setting("retention_days", backup.retention_days),
        _from_secret("access_key_id", SecretKeyRef(s3.credentials_secret, env.S3_ACCESS_KEY_ID)),
        _from_secret(
            "secret_access_key", SecretKeyRef(s3.credentials_secret, env.S3_SECRET_ACCESS_KEY)
        ),
    ]
    if s3.endpoint:
        variables.append(_setting("endpoint", s3.endpoint))
    if s3.region:
        variables.append(_setting("region", s3.region))
    if server.prediction_log:
        variables.append(_from_secret("database_url", server.prediction_log.postgres_url_secret))
    return variables + _model_env(model)


def _model_env(model: ModelSource) -> list[dict[str, Any]]:
    """The stable model file, to back up with its sha256 (a pvc:// claim is not mounted)."""
    if model.scheme is Scheme.PVC:
        return []
    variables = [_setting("stable_model_uri", model.uri)]
    if model.sha256:
        variables.append(_setting("stable_model_sha256", model.sha256))
    secret = model.credentials_secret
    if secret and model.scheme is Scheme.S3:
        variables += [
            _from_secret(setting, SecretKeyRef(secret, key), optional=optional)
            for setting, key, optional in (
                ("model_access_key_id", env.S3_ACCESS_KEY_ID, False),
                ("model_secret_access_key", env.S3_SECRET_ACCESS_KEY, False),
                ("model_s3_endpoint", env.S3_ENDPOINT_URL, True),
                ("model_s3_region", env.S3_REGION, True),
            )
        ]
    return variables


def _setting(name: str, text: str | int) -> dict[str, Any]:
    return env.value(BackupSettings.env_name(name), text)


def _from_secret(name: str, ref: SecretKeyRef, optional: bool = False) -> dict[str, Any]:
    return env.from_secret(BackupSettings.env_name(name), ref, optional)
