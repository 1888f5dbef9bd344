"""Status logic: Ready only at the desired revision with available pods; tables of cases."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from forecastops.kube.kinds import SERVICE_MONITOR, VPA
from forecastops.reconcile.status import (
    Condition,
    Failure,
    RolloutState,
    build_conditions,
    merge_conditions,
    observe_rollout,
    phase_of,
    status_patch,
    transition_events,
)
from forecastops.rollout.state import Phase

from tests.unit.deployment_bodies import deployment_body

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
LATER = datetime(2026, 3, 2, 11, 0, tzinfo=UTC)


def deployment(revision="r1", **fields):
    """Three replicas of version v7 at generation 2, complete unless `fields` say otherwise."""
    return deployment_body(revision, version="v7", **{"generation": 2, "replicas": 3, **fields})


DEADLINE = {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}


@pytest.mark.parametrize(
    ("body", "revision", "state", "message"),
    [
        (None, "r1", RolloutState.MISSING, "does not exist yet"),
        (deployment("r0"), "r1", RolloutState.PROGRESSING, "rolling out revision r1 (running r0)"),
        (
            deployment(observed=1),
            "r1",
            RolloutState.PROGRESSING,
            "waiting for the Deployment controller",
        ),
        (
            deployment(conditions=[DEADLINE]),
            "r1",
            RolloutState.DEADLINE_EXCEEDED,
            "exceeded its progress deadline",
        ),
        (
            deployment(updated=1, total=4),
            "r1",
            RolloutState.PROGRESSING,
            "1 of 3 replicas updated, 3 old",
        ),
        (deployment(total=4), "r1", RolloutState.PROGRESSING, "3 of 3 replicas updated, 1 old"),
        (
            deployment(available=1),
            "r1",
            RolloutState.COMPLETE,
            "1/3 replicas of revision r1 available",
        ),
        (deployment(updated=1, total=1, available=1), "r1", RolloutState.COMPLETE, "1/3 replicas"),
        (deployment(), "r1", RolloutState.COMPLETE, "3/3 replicas of revision r1 available"),
        (
            deployment(replicas=1, updated=1, total=1, available=0),
            "r1",
            RolloutState.PROGRESSING,
            "0 of 1",
        ),
        (deployment("r0"), None, RolloutState.COMPLETE, "revision r0 available"),
    ],
    ids=[
        "missing",
        "other-revision",
        "generation-not-observed",
        "deadline-exceeded",
        "updating",
        "old-pods-terminating",
        "scaling-up-is-not-a-rollout",
        "scale-up-before-pods-exist",
        "complete",
        "no-pod-available",
        "complete-when-no-revision-is-desired",
    ],
)
def test_rollout_is_judged_as_kubectl_rollout_status_does(body, revision, state, message):
    rollout = observe_rollout(body, revision)
    assert rollout.state is state
    assert message in rollout.message


def conditions_for(body, revision="r1", failure=None, checksum="ab" * 32, optional=None):
    rollout = observe_rollout(body, revision)
    conditions = build_conditions(
        rollout, failure=failure, checksum=checksum, optional_children=optional or {}
    )
    return rollout, {c.type: c for c in conditions}


@pytest.mark.parametrize(
    ("body", "failure", "ready", "progressing", "degraded", "verified", "phase"),
    [
        (None, None, ("False", "Creating"), "True", "False", "Unknown", Phase.PENDING),
        (
            deployment("r0"),
            None,
            ("False", "RolloutInProgress"),
            "True",
            "False",
            "Unknown",
            Phase.PROGRESSING,
        ),
        (deployment(), None, ("True", "StableAvailable"), "False", "False", "True", Phase.HEALTHY),
        (
            deployment(conditions=[DEADLINE]),
            None,
            ("False", "ProgressDeadlineExceeded"),
            "False",
            "True",
            "Unknown",
            Phase.DEGRADED,
        ),
        (
            deployment(),
            Failure("InvalidSpec", "spec.model.version: is required"),
            ("False", "InvalidSpec"),
            "False",
            "True",
            "Unknown",
            Phase.DEGRADED,
        ),
        (
            None,
            Failure("ApplyFailed", "422 Invalid"),
            ("False", "ApplyFailed"),
            "False",
            "True",
            "Unknown",
            Phase.DEGRADED,
        ),
    ],
    ids=["creating", "rolling", "healthy", "deadline", "invalid-spec", "apply-failed"],
)
def test_conditions_and_phase(body, failure, ready, progressing, degraded, verified, phase):
    rollout, by_type = conditions_for(body, failure=failure)
    assert (by_type["Ready"].status, by_type["Ready"].reason) == ready
    assert by_type["Progressing"].status == progressing
    assert by_type["Degraded"].status == degraded
    assert by_type["ModelVerified"].status == verified
    assert phase_of(list(by_type.values()), rollout) is phase


def test_an_invalid_spec_says_the_old_revision_keeps_serving():
    _, by_type = conditions_for(
        deployment("r0"), revision=None, failure=Failure("InvalidSpec", "bad")
    )
    assert by_type["Ready"].message == "bad; revision r0 keeps serving"


def test_a_model_without_checksum_is_never_called_verified():
    _, by_type = conditions_for(deployment(), checksum=None)
    assert (by_type["ModelVerified"].status, by_type["ModelVerified"].reason) == (
        "Unknown",
        "NoChecksum",
    )


def test_optional_children_report_whether_they_were_skipped():
    _, by_type = conditions_for(deployment(), optional={VPA: False, SERVICE_MONITOR: True})
    assert (by_type["VerticalPodAutoscaler"].status, by_type["VerticalPodAutoscaler"].reason) == (
        "False",
        "CRDNotInstalled",
    )
    assert "verticalpodautoscalers.autoscaling.k8s.io" in by_type["VerticalPodAutoscaler"].message
    assert by_type["ServiceMonitor"].status == "True"


def test_transition_time_moves_only_when_the_status_does():
    first = merge_conditions(
        [], [Condition("Ready", "False", "Creating", "m")], generation=1, now=NOW
    )
    same = merge_conditions(
        first, [Condition("Ready", "False", "RolloutInProgress", "m2")], generation=2, now=LATER
    )
    flipped = merge_conditions(
        same, [Condition("Ready", "True", "StableAvailable", "ok")], generation=2, now=LATER
    )
    assert first[0]["lastTransitionTime"] == "2026-03-02T10:00:00Z"
    assert same[0]["lastTransitionTime"] == "2026-03-02T10:00:00Z"
    assert same[0]["observedGeneration"] == 2 and same[0]["reason"] == "RolloutInProgress"
    assert flipped[0]["lastTransitionTime"] == "2026-03-02T11:00:00Z"


def test_conditions_of_other_parts_are_kept_and_dropped_own_ones_go():
    previous = [
        {
            "type": "Paused",
            "status": "True",
            "lastTransitionTime": "t",
            "reason": "R",
            "message": "",
        },
        {
            "type": "VerticalPodAutoscaler",
            "status": "True",
            "lastTransitionTime": "t",
            "reason": "R",
            "message": "",
        },
    ]
    merged = merge_conditions(
        previous, [Condition("Ready", "True", "A", "m")], generation=1, now=NOW
    )
    assert [c["type"] for c in merged] == ["Ready", "Paused"]


def test_status_patch_holds_only_changed_owned_fields_and_removes_with_null():
    previous = {"phase": "Healthy", "currentRevision": "r1", "other": {"x": 1}, "version": "v1"}
    desired = {"phase": "Healthy", "currentRevision": "r2", "version": None}
    assert status_patch(previous, desired) == {"currentRevision": "r2", "version": None}
    assert status_patch(previous, {**previous, "other": {"x": 2}}) == {}, "not ours"


def test_status_patch_removes_nested_fields_that_are_gone():
    """A merge patch merges objects: a key of status.rollout that is gone is sent as null."""
    previous = {"rollout": {"phase": "RolledBack", "abortedRevision": "b", "runs": [1]}}
    desired = {"rollout": {"phase": "Progressing", "runs": [2]}}
    assert status_patch(previous, desired) == {
        "rollout": {"phase": "Progressing", "abortedRevision": None, "runs": [2]}
    }


def test_events_for_becoming_ready_and_for_each_new_failure_only():
    ready = [Condition("Ready", "True", "StableAvailable", "3/3")]
    failing = [Condition("Degraded", "True", "InvalidSpec", "spec.x: bad")]
    assert [(e.type, e.reason) for e in transition_events([], ready)] == [("Normal", "Available")]
    assert (
        transition_events([{"type": "Ready", "status": "True", "reason": "StableAvailable"}], ready)
        == []
    )
    assert [(e.type, e.reason) for e in transition_events([], failing)] == [
        ("Warning", "InvalidSpec")
    ]
