"""Analysis runs: due metrics, tallies and outcomes (failure, inconclusive, success)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from forecastops.analysis.measurement import Measurement, Verdict
from forecastops.rollout.runs import (
    RunOutcome,
    due_metrics,
    forgive_inconclusive,
    judge_run,
    progress,
    record,
    start_run,
)
from forecastops.rollout.spec import AnalysisSpec
from forecastops.rollout.state import RolloutStatus
from rollout_world import T0

LIMITS = AnalysisSpec(interval_seconds=1, failure_limit=2, inconclusive_limit=3, count=3)
S, F, I = Verdict.SUCCESSFUL, Verdict.FAILED, Verdict.INCONCLUSIVE  # noqa: E741


def run_after(verdicts: list[Verdict], *, finite: bool = True, metric: str = "error-rate"):
    run = start_run("step-3", "step 3/5 (analysis error-rate)", (metric,), T0, finite=finite)
    now = T0
    for verdict in verdicts:
        value = {S: 0.0, F: 0.5, I: None}[verdict]
        message = "no data: the query returned no series" if verdict is I else "judged"
        (run,), _ = record(
            (run,), {metric: Measurement(metric, verdict, value, message, now)}, now, 1
        )
        now += timedelta(seconds=1)
    return run


OUTCOMES = [
    ([], RunOutcome.RUNNING),
    ([S, S], RunOutcome.RUNNING),
    ([S, S, S], RunOutcome.SUCCESSFUL),
    ([F, S, S, S], RunOutcome.SUCCESSFUL),  # one failure within the limit
    ([F, F], RunOutcome.RUNNING),
    ([F, F, F], RunOutcome.FAILED),  # failures > failureLimit
    ([F, S, F, S, F], RunOutcome.FAILED),  # failures count in total, not in a row
    ([I, I, I], RunOutcome.RUNNING),
    ([I, I, I, I], RunOutcome.INCONCLUSIVE),  # consecutive inconclusive > inconclusiveLimit
    ([I, I, I, S, I, I, I], RunOutcome.RUNNING),  # a success breaks the streak
    ([I] * 50, RunOutcome.INCONCLUSIVE),
    ([F, F, F, I, I, I, I], RunOutcome.FAILED),  # failure judged before inconclusive
]


@pytest.mark.parametrize(
    ("verdicts", "outcome"), OUTCOMES, ids=["-".join(v) or "none" for v, _ in OUTCOMES]
)
def test_given_verdicts_when_run_judged_then_outcome(verdicts, outcome):
    assert judge_run(run_after(verdicts), LIMITS).outcome is outcome


def test_given_every_measurement_errored_when_judged_then_never_successful():
    """argo-rollouts#4479: all-errored is not a pass, however long it runs."""
    lenient = replace(LIMITS, inconclusive_limit=1000)
    for n in range(0, 60):
        assert judge_run(run_after([I] * n), lenient).outcome is RunOutcome.RUNNING


def test_given_background_run_when_successes_pile_up_then_it_never_completes():
    assert judge_run(run_after([S] * 20, finite=False), LIMITS).outcome is RunOutcome.RUNNING
    assert (
        judge_run(run_after([S] * 5 + [F] * 3, finite=False), LIMITS).outcome is RunOutcome.FAILED
    )


def test_given_failed_run_when_judged_then_message_names_metric_count_limit_and_value():
    verdict = judge_run(run_after([F, F, F]), LIMITS)
    assert verdict.message == (
        "metric 'error-rate' failed 3 times (failureLimit 2) in step 3/5 (analysis error-rate): judged"
    )


def test_given_inconclusive_run_when_judged_then_message_keeps_the_provider_text():
    message = judge_run(run_after([I] * 4), LIMITS).message
    assert "inconclusive 4 times in a row (inconclusiveLimit 3)" in message
    assert "no data: the query returned no series" in message


def test_given_inconclusive_streak_when_forgiven_then_streak_restarts_and_totals_stay():
    run = forgive_inconclusive(run_after([I] * 4))
    assert run.tally("error-rate").consecutive_inconclusive == 0
    assert run.tally("error-rate").inconclusive == 4
    assert judge_run(run, LIMITS).outcome is RunOutcome.RUNNING


def test_given_runs_when_due_then_each_metric_listed_once():
    a = start_run("step-3", "a", ("error-rate", "latency-p95"), T0, finite=True)
    b = start_run("background", "b", ("error-rate",), T0, finite=False)
    later = replace(b, next_at=T0 + timedelta(seconds=5))
    assert due_metrics(RolloutStatus(runs=(a, b)), T0) == ("error-rate", "latency-p95")
    assert due_metrics(RolloutStatus(runs=(later,)), T0) == ()


def test_given_run_not_due_when_recorded_then_unchanged():
    run = replace(
        start_run("step-0", "s", ("m",), T0, finite=True), next_at=T0 + timedelta(seconds=9)
    )
    (same,), history = record((run,), {"m": Measurement("m", S, 0.0, "", T0)}, T0, 1)
    assert same == run and history == ()


def test_given_progress_when_described_then_counts_per_metric():
    assert (
        progress(run_after([S, F, I]), LIMITS) == "error-rate 1/3 passed (1 failed, 1 inconclusive)"
    )
