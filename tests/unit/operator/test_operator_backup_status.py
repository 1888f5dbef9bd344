"""status.backup and BackupHealthy from the backup CronJob's Jobs: tables of the pure
function, then one decide_pass() and the gauges. No cluster, no kopf."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import kopf
import pytest
from fmsamples import example
from forecastops.kube.kinds import OPTIONAL_KINDS, Capabilities, ChildKey
from forecastops.reconcile.backup_status import (
    SCHEDULED_AT,
    JobOutcome,
    backup_timestamps,
    job_snapshot,
    read_job,
    report_backup,
)
from forecastops.reconcile.decide import Snapshot, decide_pass, read_pass
from forecastops.reconcile.status import status_patch
from forecastops.runtime.handlers import index_backup_job, on_backup_job_event
from forecastops.telemetry.prometheus import PrometheusMetrics

CRONJOB_UID = "cj-uid-1"
NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def cronjob(
    uid: str = CRONJOB_UID, last_schedule: str | None = None, suspend: bool = False
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "store-demand-backup", "uid": uid},
        "spec": {"schedule": "0 2 * * *", "suspend": suspend},
        "status": {},
    }
    if last_schedule:
        body["status"]["lastScheduleTime"] = last_schedule
    return body


def job(
    name: str,
    *,
    created: str,
    scheduled: str | None = "same",
    outcome: str = "running",
    at: str | None = None,
    completion: str | None = "same",
    reason: str = "BackoffLimitExceeded",
    owner_uid: str = CRONJOB_UID,
    owner_kind: str = "CronJob",
) -> dict[str, Any]:
    """A Job as the Job controller leaves it: `outcome` is running, succeeded,
    success-criteria-met (1.31+, before Complete), failed or failure-target."""
    annotations = {SCHEDULED_AT: created if scheduled == "same" else scheduled} if scheduled else {}
    conditions = {
        "running": [],
        "succeeded": [("SuccessCriteriaMet", ""), ("Complete", "")],
        "success-criteria-met": [("SuccessCriteriaMet", "")],
        "failed": [("FailureTarget", reason), ("Failed", reason)],
        "failure-target": [("FailureTarget", reason)],
    }[outcome]
    status: dict[str, Any] = {"startTime": created}
    if conditions:
        status["conditions"] = [
            {
                "type": kind,
                "status": "True",
                "lastTransitionTime": at,
                **(
                    {"reason": why, "message": "Job has reached the specified backoff limit"}
                    if why
                    else {}
                ),
            }
            for kind, why in conditions
        ]
    if outcome == "succeeded" and completion:
        status["completionTime"] = at if completion == "same" else completion
    if outcome == "running":
        status["active"] = 1
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "uid": f"uid-{name}",
            "creationTimestamp": created,
            "annotations": annotations,
            "labels": {"app.kubernetes.io/instance": "store-demand"},
            "ownerReferences": [
                {
                    "apiVersion": "batch/v1",
                    "kind": owner_kind,
                    "name": "store-demand-backup",
                    "uid": owner_uid,
                    "controller": True,
                }
            ],
        },
        "spec": {"template": {"spec": {"containers": [{"name": "backup", "image": "x"}]}}},
        "status": status,
    }


def healthy(report) -> tuple[str, str]:
    return report.condition.status, report.condition.reason


# --- no CronJob, no Jobs --------------------------------------------------------------------


def test_without_a_backup_cronjob_there_is_no_backup_status_and_no_condition():
    report = report_backup(None, [job("j", created="2026-03-02T02:00:00Z")], {"lastJob": "j"})
    assert report.status is None and report.condition is None and report.conditions == []


def test_before_the_first_job_health_is_unknown_and_the_schedule_is_named():
    report = report_backup(cronjob(), [], None)
    assert report.status == {"message": "no backup Job yet (schedule '0 2 * * *')"}
    assert healthy(report) == ("Unknown", "NoBackupYet")


def test_a_suspended_cronjob_says_so_before_its_first_job():
    report = report_backup(cronjob(suspend=True), [], None)
    assert "suspended" in report.status["message"]
    assert healthy(report) == ("Unknown", "NoBackupYet")


# --- one Job ----------------------------------------------------------------------------------

T0, T1 = "2026-03-02T02:00:00Z", "2026-03-02T02:00:14Z"


@pytest.mark.parametrize(
    ("outcome", "expected", "success", "failure", "condition"),
    [
        ("running", "Running", None, None, ("Unknown", "BackupRunning")),
        ("succeeded", "Succeeded", T1, None, ("True", "BackupSucceeded")),
        ("success-criteria-met", "Succeeded", T1, None, ("True", "BackupSucceeded")),
        ("failed", "Failed", None, T1, ("False", "BackupFailed")),
        ("failure-target", "Failed", None, T1, ("False", "BackupFailed")),
    ],
)
def test_one_job(outcome, expected, success, failure, condition):
    report = report_backup(cronjob(), [job("b-1", created=T0, outcome=outcome, at=T1)], None)
    status = report.status
    assert status["lastJob"] == "b-1" and status["lastOutcome"] == expected
    assert status.get("lastSuccessfulTime") == success
    assert status.get("lastFailureTime") == failure
    assert status["lastScheduleTime"] == T0
    assert healthy(report) == condition


def test_a_failure_names_the_job_its_reason_and_that_nothing_succeeded_yet():
    report = report_backup(cronjob(), [job("b-1", created=T0, outcome="failed", at=T1)], None)
    assert report.condition.message == (
        "backup Job b-1 failed at 2026-03-02T02:00:14Z (BackoffLimitExceeded: Job has reached "
        "the specified backoff limit); no backup has succeeded yet"
    )
    assert report.status["message"].startswith("backup Job b-1 failed at 2026-03-02T02:00:14Z: ")


def test_a_running_job_says_since_when():
    report = report_backup(cronjob(), [job("b-1", created=T0)], None)
    assert report.status["message"] == "backup Job b-1 is running (created 2026-03-02T02:00:00Z)"


# --- several Jobs: the newest wins ------------------------------------------------------------

DAY1, DAY2, DAY3 = "2026-03-01T02:00:00Z", "2026-03-02T02:00:00Z", "2026-03-03T02:00:00Z"


def done(name: str, day: str, outcome: str, minutes: int = 1) -> dict[str, Any]:
    return job(name, created=day, outcome=outcome, at=day.replace(":00:00Z", f":{minutes:02}:00Z"))


@pytest.mark.parametrize(
    ("jobs", "last_job", "last_outcome", "condition"),
    [
        ([done("a", DAY1, "succeeded"), done("b", DAY2, "failed")], "b", "Failed", "False"),
        ([done("a", DAY1, "failed"), done("b", DAY2, "succeeded")], "b", "Succeeded", "True"),
        # a running Job changes the last outcome, not the health
        ([done("a", DAY1, "succeeded"), job("b", created=DAY2)], "b", "Running", "True"),
        ([done("a", DAY1, "failed"), job("b", created=DAY2)], "b", "Running", "False"),
        # the order of the list does not matter
        ([done("b", DAY2, "failed"), done("a", DAY1, "succeeded")], "b", "Failed", "False"),
    ],
)
def test_the_newest_job_wins(jobs, last_job, last_outcome, condition):
    report = report_backup(cronjob(), jobs, None)
    assert (report.status["lastJob"], report.status["lastOutcome"]) == (last_job, last_outcome)
    assert report.condition.status == condition


def test_a_failure_after_a_success_names_the_failed_job_and_the_last_success():
    jobs = [done("a", DAY1, "succeeded"), done("b", DAY2, "failed"), done("c", DAY3, "failed")]
    report = report_backup(cronjob(), jobs, None)
    assert report.status["lastSuccessfulTime"] == "2026-03-01T02:01:00Z"
    assert report.status["lastFailureTime"] == "2026-03-03T02:01:00Z"
    assert report.condition.message.startswith("backup Job c failed at 2026-03-03T02:01:00Z")
    assert report.condition.message.endswith(
        "; the last successful backup completed at 2026-03-01T02:01:00Z"
    )


def test_health_follows_what_finished_last_not_what_started_last():
    """A slow scheduled backup that fails after a quicker hand-made one succeeded."""
    slow = job("scheduled", created=DAY2, outcome="failed", at="2026-03-02T05:00:00Z")
    quick = job(
        "manual",
        created="2026-03-02T03:00:00Z",
        scheduled=None,
        outcome="succeeded",
        at="2026-03-02T03:10:00Z",
    )
    report = report_backup(cronjob(), [slow, quick], None)
    assert report.status["lastJob"] == "manual"  # started last
    assert healthy(report) == ("False", "BackupFailed")  # but the failure came later


def test_a_job_made_by_hand_counts_but_is_not_a_schedule():
    scheduled = done("b-29000000", DAY1, "succeeded")
    manual = job("backup-now", created=DAY2, scheduled=None, outcome="succeeded", at=DAY2)
    report = report_backup(cronjob(), [scheduled, manual], None)
    assert report.status["lastJob"] == "backup-now"
    assert report.status["lastSuccessfulTime"] == DAY2
    assert report.status["lastScheduleTime"] == DAY1


def test_a_late_created_job_is_ordered_by_its_scheduled_time():
    """The controller-manager catching up creates the Job of an earlier schedule later."""
    catching_up = job("early", created="2026-03-02T04:00:00Z", scheduled=DAY1)
    on_time = job("late", created="2026-03-02T03:00:00Z", scheduled=DAY2)
    report = report_backup(cronjob(), [catching_up, on_time], None)
    assert report.status["lastJob"] == "late"


def test_only_jobs_the_observed_cronjob_controls_count():
    others = [
        done("of-an-older-cronjob", DAY3, "failed"),
        job("not-a-cronjobs", created=DAY3, outcome="failed", at=DAY3, owner_kind="Job"),
    ]
    others[0]["metadata"]["ownerReferences"][0]["uid"] = "cj-uid-0"
    orphan = done("orphan", DAY3, "failed")
    orphan["metadata"]["ownerReferences"] = []
    report = report_backup(cronjob(), [done("mine", DAY1, "succeeded"), *others, orphan], None)
    assert report.status["lastJob"] == "mine" and "lastFailureTime" not in report.status


def test_last_schedule_time_is_the_latest_of_the_cronjob_and_its_jobs():
    status = report_backup(cronjob(last_schedule=DAY3), [done("a", DAY2, "succeeded")], None)
    assert status.status["lastScheduleTime"] == DAY3
    status = report_backup(cronjob(last_schedule=DAY1), [done("a", DAY2, "succeeded")], None)
    assert status.status["lastScheduleTime"] == DAY2


# --- times and clocks --------------------------------------------------------------------------


def test_a_success_and_a_failure_in_the_same_second_count_as_healthy():
    jobs = [
        job("a", created=DAY1, outcome="succeeded", at="2026-03-01T02:05:00Z"),
        job("b", created=DAY2, outcome="failed", at="2026-03-01T02:05:00Z"),
    ]
    assert healthy(report_backup(cronjob(), jobs, None)) == ("True", "BackupSucceeded")


@pytest.mark.parametrize(
    ("raw", "stamped"),
    [
        ("2026-03-02T02:00:14Z", "2026-03-02T02:00:14Z"),
        ("2026-03-02T04:00:14+02:00", "2026-03-02T02:00:14Z"),  # another offset, same instant
        ("2026-03-02T02:00:14.870Z", "2026-03-02T02:00:14Z"),  # to the second
        ("2026-03-02T02:00:14", "2026-03-02T02:00:14Z"),  # no zone: UTC
    ],
)
def test_times_are_written_in_utc_to_the_second(raw, stamped):
    report = report_backup(cronjob(), [job("a", created=T0, outcome="succeeded", at=raw)], None)
    assert report.status["lastSuccessfulTime"] == stamped


def test_completion_time_wins_and_the_condition_time_stands_in_for_it():
    with_completion = job("a", created=T0, outcome="succeeded", at=T1, completion=T0)
    assert read_job(with_completion).finished == datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
    without = job("a", created=T0, outcome="succeeded", at=T1, completion=None)
    assert read_job(without).finished == datetime(2026, 3, 2, 2, 0, 14, tzinfo=UTC)


def test_a_finished_job_without_any_time_falls_back_to_its_creation():
    broken = job("a", created=T0, outcome="failed", at=None)
    assert read_job(broken).finished == datetime(2026, 3, 2, 2, 0, tzinfo=UTC)


def test_times_never_go_back_when_jobs_are_deleted():
    """The history limits (or a person) delete Jobs: what the last pass saw still holds."""
    first = report_backup(
        cronjob(), [done("a", DAY1, "succeeded"), done("b", DAY2, "failed")], None
    )
    after = report_backup(cronjob(), [], first.status)
    assert after.status == first.status
    assert healthy(after) == ("False", "BackupFailed")
    assert after.condition.message.startswith("the last backup failed at 2026-03-02T02:01:00Z")


def test_an_older_job_left_over_does_not_move_the_times_back():
    first = report_backup(cronjob(), [done("b", DAY2, "succeeded")], None)
    after = report_backup(cronjob(), [done("a", DAY1, "succeeded")], first.status)
    assert after.status["lastSuccessfulTime"] == first.status["lastSuccessfulTime"]
    assert after.status["lastJob"] == "a"  # the newest Job that is left


def test_an_unreadable_previous_time_is_ignored():
    previous = {"lastSuccessfulTime": "yesterday", "lastFailureTime": 12}
    report = report_backup(cronjob(), [done("a", DAY1, "failed")], previous)
    assert report.status["lastFailureTime"] == "2026-03-01T02:01:00Z"
    assert "lastSuccessfulTime" not in report.status


def test_a_pass_with_nothing_new_patches_nothing():
    jobs = [done("a", DAY1, "succeeded"), job("b", created=DAY2)]
    first = report_backup(cronjob(last_schedule=DAY2), jobs, None)
    again = report_backup(cronjob(last_schedule=DAY2), jobs, first.status)
    assert again == first
    assert status_patch({"backup": first.status}, {"backup": again.status}) == {}


# --- helpers -----------------------------------------------------------------------------------


def test_read_job_of_a_pending_job_is_running():
    pending = job("a", created=T0)
    del pending["status"]
    assert read_job(pending).outcome is JobOutcome.RUNNING


@pytest.mark.parametrize(
    ("backup", "expected"),
    [
        (None, (0.0, 0.0)),
        ({}, (0.0, 0.0)),
        ({"lastSuccessfulTime": "1970-01-01T00:01:40Z"}, (100.0, 0.0)),
        ({"lastFailureTime": "2026-03-02T02:00:14Z"}, (0.0, 1772416814.0)),
    ],
)
def test_backup_timestamps_are_unix_seconds_and_zero_for_never(backup, expected):
    assert backup_timestamps(backup) == expected


def test_the_index_keeps_a_slim_copy_by_the_forecastmodel_its_labels_name():
    body = job("a", created=T0, outcome="succeeded", at=T1)
    kept = job_snapshot(body)
    assert "spec" not in kept and kept["status"] == body["status"]
    assert kept["metadata"]["ownerReferences"] == body["metadata"]["ownerReferences"]
    assert read_job(kept) == read_job(body)
    indexed = index_backup_job(body=body, namespace="retail", labels=body["metadata"]["labels"])
    assert indexed == {("retail", "store-demand"): kept}
    assert index_backup_job(body=body, namespace="retail", labels={}) == {}


@pytest.mark.asyncio
async def test_a_backup_job_event_asks_for_a_pass_of_its_forecastmodel():
    requested = []

    class Controller:
        async def request(self, key):
            requested.append(key)

    memo = kopf.Memo(controller=Controller())
    labels = {"app.kubernetes.io/instance": "store-demand"}
    await on_backup_job_event(namespace="retail", labels=labels, memo=memo)
    await on_backup_job_event(namespace="retail", labels={}, memo=memo)
    assert requested == [("retail", "store-demand")]


# --- one pass, and the gauges ------------------------------------------------------------------


def _served_children(settings) -> dict[ChildKey, dict[str, Any]]:
    """The children the first pass of the production example writes, as the API has them."""
    body = example("production")
    plan = decide_pass(
        read_pass(Snapshot(body, {}, Capabilities(frozenset(OPTIONAL_KINDS))), settings, now=NOW)
    )
    children = {}
    for write in plan.writes:
        child = copy.deepcopy(dict(write.manifest))
        child["metadata"]["uid"] = CRONJOB_UID if child["kind"] == "CronJob" else write.key.name
        children[write.key] = child
    return children


def test_a_pass_reports_the_backup_and_warns_once_when_it_fails(settings):
    body, children = example("production"), _served_children(settings)
    caps = Capabilities(frozenset(OPTIONAL_KINDS))
    failed = done("store-demand-backup-29000000", DAY2, "failed")
    plan = decide_pass(read_pass(Snapshot(body, children, caps, (failed,)), settings, now=NOW))
    assert plan.status_patch["backup"]["lastOutcome"] == "Failed"
    condition = next(c for c in plan.status_patch["conditions"] if c["type"] == "BackupHealthy")
    assert (condition["status"], condition["reason"]) == ("False", "BackupFailed")
    assert "store-demand-backup-29000000" in condition["message"]
    assert [e.reason for e in plan.events if e.type == "Warning"] == ["BackupFailed"]

    body["status"] = {"backup": plan.status_patch["backup"], "conditions": [condition]}
    again = decide_pass(read_pass(Snapshot(body, children, caps, (failed,)), settings, now=NOW))
    assert "backup" not in again.status_patch
    assert not [e for e in again.events if e.reason == "BackupFailed"]


def test_without_spec_backup_the_backup_status_and_condition_go(settings):
    body, children = example("production"), _served_children(settings)
    body["status"] = {
        "backup": {"lastJob": "x", "lastOutcome": "Succeeded"},
        "conditions": [
            {
                "type": "BackupHealthy",
                "status": "True",
                "reason": "BackupSucceeded",
                "message": "",
                "lastTransitionTime": DAY1,
                "observedGeneration": 1,
            },
        ],
    }
    del body["spec"]["backup"]
    caps = Capabilities(frozenset(OPTIONAL_KINDS))
    cronjob_key = ChildKey("CronJob", "store-demand-backup")
    gone = {k: v for k, v in children.items() if k != cronjob_key}
    plan = decide_pass(read_pass(Snapshot(body, gone, caps), settings, now=NOW))
    assert plan.status_patch["backup"] is None
    assert "BackupHealthy" not in {c["type"] for c in plan.status_patch["conditions"]}


def test_the_gauges_are_zero_until_it_happens_and_go_with_the_backup():
    metrics = PrometheusMetrics()
    key, labels = ("retail", "store-demand"), {"namespace": "retail", "name": "store-demand"}

    def sample(name: str) -> float | None:
        return metrics.registry.get_sample_value(f"forecastops_backup_last_{name}", labels)

    metrics.observe_status(key, {"phase": "Healthy"})
    assert sample("success_timestamp_seconds") is None, "no backup CronJob: no series"
    metrics.observe_status(key, {"backup": {"message": "no backup Job yet"}})
    assert sample("success_timestamp_seconds") == 0 and sample("failure_timestamp_seconds") == 0
    metrics.observe_status(key, {"backup": {"lastSuccessfulTime": "1970-01-01T00:01:40Z"}})
    assert sample("success_timestamp_seconds") == 100 and sample("failure_timestamp_seconds") == 0
    metrics.observe_status(key, {})
    assert sample("success_timestamp_seconds") is None
    metrics.observe_status(key, {"backup": {"lastFailureTime": "1970-01-01T00:01:40Z"}})
    metrics.forget(key)
    assert sample("failure_timestamp_seconds") is None
