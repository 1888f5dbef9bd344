"""Analysis runs: which metrics are due, how verdicts add up, and what a run concludes.

How a run concludes, per metric (limits from `spec.rollout.analysis`):

| tally                                             | run outcome   | rollout does |
|---------------------------------------------------|---------------|--------------|
| failures > failureLimit                           | Failed        | aborts       |
| consecutive inconclusive > inconclusiveLimit      | Inconclusive  | pauses, with the reason |
| every metric has `count` successes (step runs)    | Successful    | next step    |
| anything else                                     | Running       | keeps measuring |

Inconclusive measurements (no data, NaN, query errors) are counted apart: they never add
a success, so a run whose every measurement errored can never pass (argo-rollouts#4479),
and they never add a failure, so missing data never rolls back (argo-rollouts#1905).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from forecastops.analysis.measurement import Measurement
from forecastops.rollout.spec import AnalysisSpec
from forecastops.rollout.state import AnalysisRun, HistoryEntry, MetricTally, RolloutStatus
from forecastops.rollout.steps import format_seconds

BACKGROUND = "background"


def step_run_name(index: int) -> str:
    """The run of steps[index], named as people count steps: `step-3` for index 2."""
    return f"step-{index + 1}"


def start_run(
    name: str, label: str, templates: tuple[str, ...], now: datetime, *, finite: bool
) -> AnalysisRun:
    """A fresh run whose first measurement is due at once."""
    return AnalysisRun(
        name=name,
        label=label,
        templates=templates,
        started_at=now,
        next_at=now,
        tallies=tuple(MetricTally(metric) for metric in templates),
        finite=finite,
    )


def due_metrics(status: RolloutStatus, now: datetime) -> tuple[str, ...]:
    """Metric names to measure in this pass, each once, in a stable order."""
    names: dict[str, None] = {}
    for run in status.runs:
        if run.next_at <= now:
            names.update(dict.fromkeys(run.templates))
    return tuple(names)


def record(
    runs: tuple[AnalysisRun, ...],
    measurements: Mapping[str, Measurement],
    now: datetime,
    interval_seconds: float,
) -> tuple[tuple[AnalysisRun, ...], tuple[HistoryEntry, ...]]:
    """Add this pass's measurements to every due run that asked for them."""
    updated: list[AnalysisRun] = []
    history: list[HistoryEntry] = []
    for run in runs:
        taken = [measurements[m] for m in run.templates if m in measurements]
        if run.next_at > now or not taken:
            updated.append(run)
            continue
        tallies = tuple(
            tally.add(measurements[tally.metric]) if tally.metric in measurements else tally
            for tally in run.tallies
        )
        next_at = now + timedelta(seconds=interval_seconds)
        updated.append(replace(run, tallies=tallies, next_at=next_at))
        history += [HistoryEntry(run.name, m) for m in taken]
    return tuple(updated), tuple(history)


class RunOutcome(StrEnum):
    RUNNING = "Running"
    SUCCESSFUL = "Successful"
    FAILED = "Failed"
    INCONCLUSIVE = "Inconclusive"


@dataclass(frozen=True)
class RunVerdict:
    outcome: RunOutcome
    message: str = ""


def judge_run(run: AnalysisRun, spec: AnalysisSpec) -> RunVerdict:
    """The run's outcome (see the module's table), with a message naming the metric."""
    for tally in run.tallies:
        if tally.failures > spec.failure_limit:
            return RunVerdict(
                RunOutcome.FAILED,
                f"metric {tally.metric!r} failed {tally.failures} times "
                f"(failureLimit {spec.failure_limit}) in {run.label}: {_last(tally)}",
            )
    for tally in run.tallies:
        if tally.consecutive_inconclusive > spec.inconclusive_limit:
            return RunVerdict(
                RunOutcome.INCONCLUSIVE,
                f"metric {tally.metric!r} was inconclusive {tally.consecutive_inconclusive} "
                f"times in a row (inconclusiveLimit {spec.inconclusive_limit}) in "
                f"{run.label}: {_last(tally)}",
            )
    if run.finite and all(tally.successes >= spec.count for tally in run.tallies):
        return RunVerdict(
            RunOutcome.SUCCESSFUL,
            f"{', '.join(run.templates)} passed {spec.count} times in {run.label}",
        )
    return RunVerdict(RunOutcome.RUNNING)


def judge_runs(runs: tuple[AnalysisRun, ...], spec: AnalysisSpec) -> dict[str, RunVerdict]:
    return {run.name: judge_run(run, spec) for run in runs}


def forgive_inconclusive(run: AnalysisRun) -> AnalysisRun:
    """After a person resumes an inconclusive pause, the streak of inconclusive starts over."""
    return replace(run, tallies=tuple(replace(t, consecutive_inconclusive=0) for t in run.tallies))


def progress(run: AnalysisRun, spec: AnalysisSpec) -> str:
    """`error-rate 2/3 passed, latency-p95 1/3 passed (1 inconclusive)`."""
    parts = []
    for tally in run.tallies:
        part = f"{tally.metric} {min(tally.successes, spec.count)}/{spec.count} passed"
        extra = [
            f"{n} {what}"
            for n, what in ((tally.failures, "failed"), (tally.inconclusive, "inconclusive"))
            if n
        ]
        parts.append(f"{part} ({', '.join(extra)})" if extra else part)
    return ", ".join(parts)


def template_variables(
    name: str, namespace: str, status: RolloutStatus, spec: AnalysisSpec
) -> dict[str, str]:
    """The values of a query's `{{...}}` placeholders (see analysis.template)."""
    return {
        "name": name,
        "namespace": namespace,
        "revision": status.candidate_revision or "",
        "stableRevision": status.stable_revision or "",
        "interval": format_seconds(spec.interval_seconds),
    }


def _last(tally: MetricTally) -> str:
    return tally.last.message if tally.last else "no measurement"
