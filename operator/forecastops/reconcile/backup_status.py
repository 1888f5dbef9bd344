"""`status.backup` and the BackupHealthy condition, from the backup CronJob's Jobs (pure).

The controller-manager runs the backup: the CronJob the operator applies creates a Job
per schedule (and `kubectl create job --from=cronjob/<name>-backup` one by hand). Both
carry the CronJob's jobTemplate labels and a controller owner reference to the CronJob;
the operator watches Jobs by those labels and counts only those whose owner is the
CronJob it observes, so a Job of an older CronJob of the same name never counts.

    status.backup:
      lastScheduleTime      the last time the CronJob scheduled a backup
      lastSuccessfulTime    when the last successful backup Job completed
      lastFailureTime       when the last failed backup Job failed
      lastJob, lastOutcome  the newest Job and its outcome: Succeeded, Failed or Running
      message               the newest Job's outcome in words

BackupHealthy is True when the newest finished backup succeeded, False (reason
BackupFailed, naming the Job) when it failed, Unknown before the first one finished.

Times never go back: the CronJob keeps only its three newest Jobs of each outcome and
anybody may delete them, so a time in the previous status that is newer than every Job
left is kept. The times are the API server's (the Jobs' and the CronJob's), never this
process's clock, and written to the second, so a pass with nothing new writes nothing.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from forecastops.reconcile.status import BACKUP_HEALTHY, Condition

SCHEDULED_AT = "batch.kubernetes.io/cronjob-scheduled-timestamp"
"""Set by the CronJob controller on the Jobs it schedules (Kubernetes 1.28+)."""

_SUCCEEDED = ("Complete", "SuccessCriteriaMet")
_FAILED = ("Failed", "FailureTarget")
_EPOCH = datetime.min.replace(tzinfo=UTC)


class JobOutcome(StrEnum):
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    RUNNING = "Running"


@dataclass(frozen=True)
class JobRun:
    """One backup Job, as far as the status cares."""

    name: str
    created: datetime
    scheduled: datetime | None
    """When the CronJob scheduled it; None for a Job created by hand."""
    outcome: JobOutcome
    finished: datetime | None = None
    reason: str = ""
    message: str = ""

    @property
    def order(self) -> tuple[datetime, datetime, str]:
        """Newest last: by the time it was meant to run, then created, then name."""
        return (self.scheduled or self.created, self.created, self.name)


@dataclass(frozen=True)
class BackupReport:
    status: dict[str, Any] | None = None
    """status.backup; None (removed) while there is no backup CronJob."""
    condition: Condition | None = None
    """BackupHealthy; None while there is no backup CronJob."""

    @property
    def conditions(self) -> list[Condition]:
        return [self.condition] if self.condition else []


def report_backup(
    cronjob: Mapping[str, Any] | None,
    jobs: Iterable[Mapping[str, Any]],
    previous: Mapping[str, Any] | None,
) -> BackupReport:
    """status.backup and BackupHealthy for the observed backup CronJob and Jobs.

    `jobs` may hold any backup Job of the ForecastModel: only those the CronJob controls
    count. `previous` is the status.backup of the last pass.
    """
    if cronjob is None:
        return BackupReport()
    uid = cronjob.get("metadata", {}).get("uid")
    runs = sorted(
        (read_job(job) for job in jobs if _controlled_by(job, uid)), key=lambda r: r.order
    )
    before = previous or {}
    succeeded = _newest_finished(runs, JobOutcome.SUCCEEDED)
    failed = _newest_finished(runs, JobOutcome.FAILED)
    last_success = _latest(before.get("lastSuccessfulTime"), succeeded and succeeded.finished)
    last_failure = _latest(before.get("lastFailureTime"), failed and failed.finished)
    scheduled = [r.scheduled for r in runs if r.scheduled]
    last_schedule = _latest(
        before.get("lastScheduleTime"),
        _time(cronjob.get("status", {}).get("lastScheduleTime")),
        *scheduled,
    )
    status: dict[str, Any] = {
        "lastScheduleTime": _stamp(last_schedule),
        "lastSuccessfulTime": _stamp(last_success),
        "lastFailureTime": _stamp(last_failure),
    }
    if runs:
        newest = runs[-1]
        status |= {
            "lastJob": newest.name,
            "lastOutcome": str(newest.outcome),
            "message": describe(newest),
        }
    elif before.get("lastJob"):  # every Job deleted: what the last pass saw still holds
        status |= {k: before[k] for k in ("lastJob", "lastOutcome", "message") if k in before}
    else:
        status["message"] = _not_yet(cronjob)
    condition = backup_healthy(
        last_success,
        last_failure,
        failed,
        running=bool(runs) and runs[-1].outcome is JobOutcome.RUNNING,
    )
    return BackupReport({k: v for k, v in status.items() if v is not None}, condition)


def backup_healthy(
    last_success: datetime | None,
    last_failure: datetime | None,
    failed: JobRun | None,
    *,
    running: bool,
) -> Condition:
    """True if the newest finished backup succeeded; a success and a failure in the same
    second count as a success (there is a backup from that second)."""
    if last_failure is not None and (last_success is None or last_failure > last_success):
        which = (
            f"backup Job {failed.name}"
            if failed and failed.finished == last_failure
            else ("the last backup")
        )
        cause = f" ({failed.reason}: {failed.message})" if failed and failed.reason else ""
        since = (
            f"; the last successful backup completed at {_stamp(last_success)}"
            if last_success
            else "; no backup has succeeded yet"
        )
        message = f"{which} failed at {_stamp(last_failure)}{cause}{since}"
        return Condition(BACKUP_HEALTHY, "False", "BackupFailed", message)
    if last_success is not None:
        return Condition(
            BACKUP_HEALTHY,
            "True",
            "BackupSucceeded",
            f"the last backup completed at {_stamp(last_success)}",
        )
    if running:
        return Condition(
            BACKUP_HEALTHY, "Unknown", "BackupRunning", "the first backup Job is running"
        )
    return Condition(BACKUP_HEALTHY, "Unknown", "NoBackupYet", "no backup Job has finished yet")


def read_job(job: Mapping[str, Any]) -> JobRun:
    """A Job's outcome from its conditions, as the Job controller sets them: Complete
    (or SuccessCriteriaMet, set first since 1.31) for a success, Failed (or FailureTarget,
    set while its pods are still being stopped) for a failure; anything else runs."""
    meta, status = job.get("metadata", {}), job.get("status") or {}
    created = _time(meta.get("creationTimestamp")) or _EPOCH
    scheduled = _time((meta.get("annotations") or {}).get(SCHEDULED_AT))
    run = JobRun(meta.get("name", ""), created, scheduled, JobOutcome.RUNNING)
    true = {c.get("type"): c for c in status.get("conditions") or [] if c.get("status") == "True"}
    for kind in _SUCCEEDED:
        if kind in true:
            finished = _time(status.get("completionTime")) or _time(
                true[kind].get("lastTransitionTime")
            )
            return _replace(run, JobOutcome.SUCCEEDED, finished or created)
    for kind in _FAILED:
        if kind in true:
            condition = true[kind]
            finished = _time(condition.get("lastTransitionTime")) or created
            return _replace(
                run,
                JobOutcome.FAILED,
                finished,
                condition.get("reason", ""),
                condition.get("message", ""),
            )
    return run


def describe(run: JobRun) -> str:
    if run.outcome is JobOutcome.SUCCEEDED:
        return f"backup Job {run.name} succeeded at {_stamp(run.finished)}"
    if run.outcome is JobOutcome.FAILED:
        cause = f": {run.reason}: {run.message}" if run.reason else ""
        return f"backup Job {run.name} failed at {_stamp(run.finished)}{cause}"
    return f"backup Job {run.name} is running (created {_stamp(run.created)})"


def backup_timestamps(backup: Mapping[str, Any] | None) -> tuple[float, float]:
    """(last success, last failure) of a status.backup as Unix time; 0 for never."""
    backup = backup or {}
    return tuple(  # type: ignore[return-value]
        (t.timestamp() if (t := _time(backup.get(key))) else 0.0)
        for key in ("lastSuccessfulTime", "lastFailureTime")
    )


def _controlled_by(job: Mapping[str, Any], uid: str | None) -> bool:
    return uid is not None and any(
        ref.get("controller") and ref.get("kind") == "CronJob" and ref.get("uid") == uid
        for ref in job.get("metadata", {}).get("ownerReferences") or []
    )


def _newest_finished(runs: list[JobRun], outcome: JobOutcome) -> JobRun | None:
    done = [r for r in runs if r.outcome is outcome and r.finished is not None]
    return max(done, key=lambda r: (r.finished, r.order), default=None)


def _not_yet(cronjob: Mapping[str, Any]) -> str:
    spec = cronjob.get("spec", {})
    if spec.get("suspend"):
        return "no backup Job yet; the backup CronJob is suspended"
    return f"no backup Job yet (schedule {spec.get('schedule', '?')!r})"


def _replace(
    run: JobRun, outcome: JobOutcome, finished: datetime, reason: str = "", message: str = ""
) -> JobRun:
    return JobRun(run.name, run.created, run.scheduled, outcome, finished, reason, message)


def _time(value: Any) -> datetime | None:
    """An RFC 3339 time (as the API server writes them) in UTC; None if absent or bad."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).replace(microsecond=0)


def _latest(*values: Any) -> datetime | None:
    times = [t for t in map(_time, values) if t is not None]
    return max(times, default=None)


def _stamp(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def job_snapshot(job: Mapping[str, Any]) -> dict[str, Any]:
    """What of a Job to keep in memory: the fields `read_job` and the owner check read
    (not its pod template)."""
    meta = job.get("metadata", {})
    kept = ("name", "namespace", "uid", "labels", "annotations", "creationTimestamp")
    return {
        "metadata": {
            **{k: copy.deepcopy(meta[k]) for k in kept if k in meta},
            "ownerReferences": copy.deepcopy(meta.get("ownerReferences") or []),
        },
        "status": copy.deepcopy(dict(job.get("status") or {})),
    }
