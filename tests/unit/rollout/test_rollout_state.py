"""`status.rollout` round trips: what is written is read back exactly, damage is survived."""

from __future__ import annotations

import math
from datetime import timedelta

from forecastops.analysis.measurement import Measurement, Verdict
from forecastops.rollout.runs import start_run
from forecastops.rollout.state import (
    HistoryEntry,
    MetricTally,
    Phase,
    RolloutStatus,
    from_dict,
    last_analysis,
    summary_fields,
    to_dict,
)
from rollout_world import T0

FAILED = Measurement(
    "error-rate", Verdict.FAILED, 0.34, "0.34 meets failureCondition 'result > 0.01'", T0
)
NO_DATA = Measurement(
    "latency-p95", Verdict.INCONCLUSIVE, None, "no data", T0 + timedelta(milliseconds=250)
)


def busy_status() -> RolloutStatus:
    run = start_run(
        "step-3", "step 3/5 (analysis error-rate)", ("error-rate", "latency-p95"), T0, finite=True
    )
    run = run.__class__(
        **{
            **run.__dict__,
            "tallies": (
                MetricTally("error-rate", 2, 1, 0, 0, FAILED),
                MetricTally("latency-p95", 0, 0, 2, 2, NO_DATA),
            ),
        }
    )
    return RolloutStatus(
        phase=Phase.PAUSED,
        stable_revision="5d8f7c",
        candidate_revision="a41e02",
        step_index=2,
        step_started_at=T0,
        route_weight=10,
        canary_weight=17,
        runs=(run,),
        history=(HistoryEntry("step-3", FAILED), HistoryEntry("step-3", NO_DATA)),
        reason="InconclusiveAnalysis",
        message="metric 'latency-p95' was inconclusive",
        aborted_revision="0ld",
        last_command="pause:1",
        stable_promoted=True,
        scale_down_at=T0 + timedelta(seconds=30),
    )


def test_given_busy_status_when_written_and_read_then_identical():
    status = busy_status()
    assert from_dict(to_dict(status)) == status


def test_given_status_when_written_then_json_friendly_camel_case_and_compact():
    raw = to_dict(busy_status())
    assert raw["stepStartedAt"] == "2025-01-01T12:00:00.000Z"
    assert raw["history"][1]["time"] == "2025-01-01T12:00:00.250Z"
    assert "value" not in raw["history"][1], "no value is stored as absent, not as null"
    assert raw["runs"][0]["metrics"][1]["consecutiveInconclusive"] == 2
    assert to_dict(RolloutStatus()) == {"phase": "Pending", "routeWeight": 0, "canaryWeight": 0}


def test_given_infinite_value_when_written_then_stored_as_text_and_read_back():
    inf = Measurement("latency-p95", Verdict.FAILED, math.inf, "inf meets failureCondition", T0)
    status = RolloutStatus(history=(HistoryEntry("background", inf),))
    assert to_dict(status)["history"][0]["value"] == "inf"
    assert from_dict(to_dict(status)).history[0].measurement.value == math.inf


def test_given_damaged_status_when_read_then_defaults_instead_of_a_crash():
    raw = {
        "phase": "Exploding",
        "stepStartedAt": "yesterday",
        "runs": [{"name": "step-1"}],
        "history": [{}],
    }
    status = from_dict(raw)
    assert status.phase is Phase.PENDING
    assert status.step_started_at is None
    assert status.runs[0].tallies == ()
    assert status.history[0].measurement.verdict is Verdict.INCONCLUSIVE
    assert from_dict(None) == RolloutStatus()


def test_given_status_when_summarised_then_crd_fields_and_last_analysis_per_metric():
    summary = summary_fields(busy_status())
    assert "phase" not in summary  # status.phase is decided by reconcile.status.phase_of
    assert (summary["stableRevision"], summary["canaryRevision"]) == ("5d8f7c", "a41e02")
    assert (summary["currentStepIndex"], summary["canaryWeight"]) == (2, 17)
    assert summary["lastAnalysis"]["error-rate"]["value"] == 0.34
    assert summary["lastAnalysis"]["error-rate"]["verdict"] == "Failed"
    assert summary["lastAnalysis"]["latency-p95"]["message"] == "no data"


def test_given_rolled_back_when_summarised_then_canary_revision_names_the_aborted_one():
    status = RolloutStatus(
        phase=Phase.ROLLED_BACK, stable_revision="5d8f7c", aborted_revision="a41e02"
    )
    assert summary_fields(status)["canaryRevision"] == "a41e02"
    assert (
        summary_fields(RolloutStatus(phase=Phase.HEALTHY, aborted_revision="x"))["canaryRevision"]
        is None
    )


def test_given_history_when_same_metric_measured_twice_then_last_analysis_keeps_newest():
    newer = Measurement("error-rate", Verdict.SUCCESSFUL, 0.001, "ok", T0 + timedelta(seconds=1))
    status = RolloutStatus(history=(HistoryEntry("step-3", FAILED), HistoryEntry("step-3", newer)))
    assert last_analysis(status)["error-rate"]["verdict"] == "Successful"
