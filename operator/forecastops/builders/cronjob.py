"""The backup CronJob: `forecastctl backup` in the server image, on the spec's schedule."""

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
from forecastops.names import Component, backup_cronjob_name, common_labels
from forecastops.spec import Backup, ObjectRef, SecretKeyRef, Server

CONTAINER = "backup"


def build_backup_cronjob(
    owner: ObjectRef, backup: Backup, server: Server, *, pod_uid: int
) -> dict[str, Any]:
    """One backup at a time (Forbid), three of each outcome kept for `kubectl get jobs`."""
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
                        "containers": [_container(owner, backup, server)],
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


def _container(owner: ObjectRef, backup: Backup, server: Server) -> dict[str, Any]:
    return {
        "name": CONTAINER,
        "image": server.image,
        "imagePullPolicy": str(server.image_pull_policy),
        "command": ["forecastctl", "backup", "--name", owner.name, "--namespace", owner.namespace],
        "env": backup_env(backup, server),
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
        "securityContext": container_security_context(),
        "volumeMounts": [tmp_mount()],
    }


def backup_env(backup: Backup, server: Server) -> list[dict[str, Any]]:
    """Where to write (BACKUP_*) and what to dump (the prediction log's database URL)."""
    s3 = backup.destination
    secret = s3.credentials_secret
    variables = [
        env.value("BACKUP_S3_BUCKET", s3.bucket),
        env.value("BACKUP_S3_PREFIX", s3.prefix),
        env.value("BACKUP_RETENTION_DAYS", backup.retention_days),
        env.from_secret("BACKUP_S3_ACCESS_KEY_ID", SecretKeyRef(secret, "AWS_ACCESS_KEY_ID")),
        env.from_secret(
            "BACKUP_S3_SECRET_ACCESS_KEY", SecretKeyRef(secret, "AWS_SECRET_ACCESS_KEY")
        ),
    ]
    if s3.endpoint:
        variables.append(env.value("BACKUP_S3_ENDPOINT", s3.endpoint))
    if s3.region:
        variables.append(env.value("BACKUP_S3_REGION", s3.region))
    if server.prediction_log:
        variables.append(
            env.from_secret("PREDICTION_POSTGRES_URL", server.prediction_log.postgres_url_secret)
        )
    return variables
