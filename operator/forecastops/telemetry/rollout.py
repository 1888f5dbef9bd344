"""The operator's counters about rollouts: analysis verdicts and aborts.

| name                                   | type    | labels                           |
|----------------------------------------|---------|----------------------------------|
| ``forecastops_analysis_runs_total``    | counter | namespace, name, metric, verdict |
| ``forecastops_rollout_aborted_total``  | counter | namespace, name                  |

``forecastops_analysis_runs_total`` counts measurements by verdict (Successful, Failed,
Inconclusive): a rising Inconclusive rate means a metric has no data to judge. The
phase and canary weight gauges come from the status (`prometheus_metrics`). Names and
labels are those of deploy/monitoring/metrics.yaml, which the alerts and dashboard use.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

from forecastops.rollout.actions import Decision
from forecastops.rollout.state import ABORTED_PHASES, HistoryEntry, RolloutStatus


class RolloutCounters:
    """Registered on the registry it is given (never the global default one)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.analysis_runs = Counter(
            "forecastops_analysis_runs_total",
            "Analysis measurements, by metric and verdict.",
            ["namespace", "name", "metric", "verdict"],
            registry=registry,
        )
        self.aborted = Counter(
            "forecastops_rollout_aborted_total",
            "Rollouts aborted (by analysis, deadline or a user); the reason is in status.",
            ["namespace", "name"],
            registry=registry,
        )

    def observe(self, namespace: str, name: str, before: RolloutStatus, decision: Decision) -> None:
        """Count what one decision added: its measurements, and an abort."""
        for entry in new_measurements(before, decision.status):
            verdict = str(entry.measurement.verdict)
            self.analysis_runs.labels(namespace, name, entry.measurement.metric, verdict).inc()
        aborted = self.aborted.labels(namespace, name)  # exists at 0 before the first abort
        if aborted_now(before, decision.status):
            aborted.inc()


def new_measurements(before: RolloutStatus, after: RolloutStatus) -> tuple[HistoryEntry, ...]:
    """The history entries `after` holds that `before` did not (the history is bounded)."""
    if not before.history:
        return after.history
    newest_before = before.history[-1]
    for i in range(len(after.history) - 1, -1, -1):
        if after.history[i] == newest_before:
            return after.history[i + 1 :]
    return after.history


def aborted_now(before: RolloutStatus, after: RolloutStatus) -> bool:
    return after.phase in ABORTED_PHASES and before.phase not in ABORTED_PHASES
