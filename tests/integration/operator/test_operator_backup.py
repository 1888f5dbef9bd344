"""Backups on the real control plane: the operator's CronJob, the Jobs the
controller-manager creates from it, and status.backup following them.

Given a ForecastModel with spec.backup on a one-minute schedule, in a namespace that
enforces Pod Security "restricted", when the controller-manager's CronJob controller
creates a Job and kwok completes its pod, then the operator's status.backup shows the
Job, its success and BackupHealthy=True, and its metrics the time. When a later Job
fails (its pod never starts and the Job controller stops it at its deadline: kwok
completes every pod it runs, so a failing container cannot be staged), BackupHealthy
turns False naming that Job, with a Warning Event.
"""

from __future__ import annotations

import copy
import json
import re

import pytest

from devenv.harness import forecastmodel

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

NAME = "store-demand"
CRONJOB = f"{NAME}-backup"
RESTRICTED = {"pod-security.kubernetes.io/enforce": "restricted"}
MODEL = {
    "uri": "https://models.example.com/store-demand/v1/model.onnx",
    "sha256": "3b5e0c6f2a9d4e7b8c1f0a2d3e4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b",
    "version": "v1",
}
FORECASTMODEL = forecastmodel(
    NAME,
    {
        "model": MODEL,
        "server": {
            "predictionLog": {"postgresUrlSecret": {"name": "prediction-log", "key": "url"}}
        },
        "backup": {
            "schedule": "* * * * *",
            "retentionDays": 3,
            "destination": {
                "s3": {
                    "bucket": "backups",
                    "endpoint": "http://seaweedfs.storage.svc:8333",
                    "credentialsSecret": "backup-store",
                }
            },
        },
    },
)
SECRETS = {
    "backup-store": {"AWS_ACCESS_KEY_ID": "id", "AWS_SECRET_ACCESS_KEY": "secret"},
    "prediction-log": {"url": "postgresql://app:pw@postgres:5432/predlog"},
}


def backup_status(kit, namespace: str) -> dict:
    return (kit.fm(NAME, namespace) or {}).get("status", {}).get("backup") or {}


def gauge(operator, metric: str, namespace: str) -> float | None:
    pattern = (
        rf'^{metric}\{{(?=[^}}]*namespace="{namespace}")(?=[^}}]*name="{NAME}")[^}}]*\}} (\S+)$'
    )
    found = re.search(pattern, operator.metrics(), re.M)
    return float(found.group(1)) if found else None


@pytest.fixture
def backed_up(kit, namespace) -> str:
    for name, data in SECRETS.items():
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name},
            "stringData": data,
        }
        assert kit.apply(secret, namespace).returncode == 0
    done = kit.apply(FORECASTMODEL, namespace)
    assert done.returncode == 0, done.stderr
    return namespace


@pytest.mark.parametrize("namespace", [RESTRICTED], indirect=True)
def test_scheduled_backups_show_in_the_status_and_a_failure_turns_health_false(
    kit, backed_up, operator
):
    namespace = backed_up

    # Given the CronJob the operator applied
    cronjob = kit.wait_for(lambda: kit.get("cronjob", CRONJOB, namespace), what="the CronJob")
    spec = cronjob["spec"]
    assert spec["schedule"] == "* * * * *"
    assert spec["concurrencyPolicy"] == "Forbid"
    assert (spec["successfulJobsHistoryLimit"], spec["failedJobsHistoryLimit"]) == (3, 3)
    pod = spec["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    assert container["command"] == ["forecastctl", "backup", "backup", "--name", NAME]
    restricted = {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "runAsNonRoot": True,
    }
    assert restricted.items() <= container["securityContext"].items()
    env = {v["name"]: v for v in container["env"]}
    assert env["AWS_ACCESS_KEY_ID"]["valueFrom"]["secretKeyRef"] == {
        "name": "backup-store",
        "key": "AWS_ACCESS_KEY_ID",
    }
    assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "backup-store"
    assert env["FORECASTOPS_BACKUP_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "prediction-log",
        "key": "url",
    }
    assert env["FORECASTOPS_BACKUP_PREFIX"]["value"] == f"{namespace}/"
    assert env["FORECASTOPS_BACKUP_RETENTION_DAYS"]["value"] == "3"
    assert not [v for v in container["env"] if "value" in v and "SECRET" in v["name"]]

    # When the controller-manager runs it, and kwok completes the pod
    def succeeded():
        status = backup_status(kit, namespace)
        healthy = kit.condition(NAME, namespace, "BackupHealthy").get("status") == "True"
        return healthy and status.get("lastSuccessfulTime") and status

    status = kit.wait_for(succeeded, timeout=150, what="status.backup with a successful Job")

    # Then the status names a Job the CronJob owns, and the metrics have its time
    job = kit.get("job", status["lastJob"], namespace)
    (owner,) = job["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["uid"]) == ("CronJob", cronjob["metadata"]["uid"])
    assert status["lastOutcome"] in ("Succeeded", "Running")  # the next minute's may run
    assert status["lastScheduleTime"]
    assert "lastFailureTime" not in status
    healthy = kit.condition(NAME, namespace, "BackupHealthy")
    assert healthy["reason"] == "BackupSucceeded"
    success = kit.wait_for(
        lambda: gauge(operator, "forecastops_backup_last_success_timestamp_seconds", namespace),
        timeout=30,
        what="the success gauge",
    )
    assert success > 1.7e9
    assert gauge(operator, "forecastops_backup_last_failure_timestamp_seconds", namespace) == 0
    ready = kit.condition(NAME, namespace, "Ready")
    assert ready.get("status") == "True", "a backup never changes whether the model serves"

    # When scheduling stops and a Job of the CronJob fails
    suspend = {"spec": {"backup": {"suspend": True}}}
    kit.kubectl("patch", "fm", NAME, "-n", namespace, "--type=merge", "-p", json.dumps(suspend))
    kit.wait_for(
        lambda: kit.get("cronjob", CRONJOB, namespace)["spec"].get("suspend"),
        what="the CronJob suspended",
    )
    kit.wait_for(
        lambda: all(finished(j) for j in kit.list("jobs", namespace)), what="no Job running"
    )
    failing = failing_job(kit.get("cronjob", CRONJOB, namespace), "backup-fails")
    done = kit.apply(failing, namespace)
    assert done.returncode == 0, done.stderr

    def failed():
        condition = kit.condition(NAME, namespace, "BackupHealthy")
        return condition.get("status") == "False" and condition

    # Then BackupHealthy is False, names the Job and why; the time is in status and metrics
    condition = kit.wait_for(failed, timeout=90, what="BackupHealthy=False")
    assert condition["reason"] == "BackupFailed"
    assert "backup Job backup-fails failed" in condition["message"]
    assert "DeadlineExceeded" in condition["message"]
    status = backup_status(kit, namespace)
    assert status["lastJob"] == "backup-fails" and status["lastOutcome"] == "Failed"
    assert status["lastFailureTime"] >= status["lastSuccessfulTime"]
    warnings = [
        e
        for e in kit.events(NAME, namespace)
        if e["type"] == "Warning" and e["reason"] == "BackupFailed"
    ]
    assert warnings and "backup-fails" in warnings[0]["message"]
    failure = kit.wait_for(
        lambda: gauge(operator, "forecastops_backup_last_failure_timestamp_seconds", namespace),
        timeout=30,
        what="the failure gauge",
    )
    assert failure >= success


def finished(job: dict) -> bool:
    conditions = job.get("status", {}).get("conditions", [])
    return any(c["type"] in ("Complete", "Failed") and c["status"] == "True" for c in conditions)


def failing_job(cronjob: dict, name: str) -> dict:
    """A Job of the CronJob, as `kubectl create job --from` makes one, whose pod can never
    be scheduled: the Job controller fails it at its one-second deadline."""
    template = copy.deepcopy(cronjob["spec"]["jobTemplate"])
    template["spec"]["activeDeadlineSeconds"] = 1
    template["spec"]["backoffLimit"] = 0
    template["spec"]["template"]["spec"]["nodeSelector"] = {"forecastops.io/no-such-node": "true"}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "labels": template["metadata"]["labels"],
            "ownerReferences": [
                {
                    "apiVersion": "batch/v1",
                    "kind": "CronJob",
                    "name": cronjob["metadata"]["name"],
                    "uid": cronjob["metadata"]["uid"],
                    "controller": True,
                }
            ],
        },
        "spec": template["spec"],
    }
