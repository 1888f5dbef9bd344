"""The operator's own metrics about rollouts, for dashboards and alert rules.

| name                                   | type    | labels                          |
|----------------------------------------|---------|---------------------------------|
| ``forecastops_analysis_runs_total``    | counter | namespace, name, metric, verdict |
| ``forecastops_rollout_phase``          | gauge   | namespace, name, phase (1 = current) |
| ``forecastops_canary_weight``          | gauge   | namespace, name (percent, achieved) |
| ``forecastops_rollout_aborted_total``  | counter | namespace, name                 |

``forecastops_analysis_runs_total`` counts measurements by verdict (Successful, Failed,
Inconclusive): a rising Inconclusive rate means a metric has no data to judge. The
names and labels are those of deploy/monitoring/metrics.yaml, which the alert rules and
the dashboard use.
"""

from __future__ import annotations

import contextlib

from prometheus_client import CollectorRegistry, Counter, Gauge

from forecastops.rollout.actions import Decision
from forecastops.rollout.state import ABORTED_PHASES, Phase, RolloutStatus


class RolloutMetrics:
    """Registered on the registry it is given (never the global default one)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.analysis_runs = Counter(
            "forecastops_analysis_runs_total",
            "Analysis measurements, by metric and verdict.",
            ["namespace", "name", "metric", "verdict"],
            registry=registry,
        )
        self.phase = Gauge(
            "forecastops_rollout_phase",
            "1 for the ForecastModel's current rollout phase, 0 for the others.",
            ["namespace", "name", "phase"],
            registry=registry,
        )
        self.canary_weight = Gauge(
            "forecastops_canary_weight",
            "The share of requests the candidate gets, in percent.",
            ["namespace", "name"],
            registry=registry,
        )
        self.aborted = Counter(
            "forecastops_rollout_aborted_total",
            "Rollouts aborted (by analysis, deadline or a user); the reason is in status.",
            ["namespace", "name"],
            registry=registry,
        )

    def observe(self, namespace: str, name: str, before: RolloutStatus, decision: Decision) -> None:
        """Export what one decision changed: new measurements, phase, weight, aborts."""
        after = decision.status
        for entry in after.history[_new_from(before, after) :]:
            verdict = str(entry.measurement.verdict)
            self.analysis_runs.labels(namespace, name, entry.measurement.metric, verdict).inc()
        for phase in Phase:
            self.phase.labels(namespace, name, str(phase)).set(1 if phase is after.phase else 0)
        self.canary_weight.labels(namespace, name).set(after.canary_weight)
        aborted = self.aborted.labels(namespace, name)  # exists at 0 before the first abort
        if after.phase in ABORTED_PHASES and before.phase not in ABORTED_PHASES:
            aborted.inc()

    def forget(self, namespace: str, name: str) -> None:
        """Drop a deleted ForecastModel's gauges (counters stay: they only ever rise)."""
        for phase in Phase:
            _remove(self.phase, namespace, name, str(phase))
        _remove(self.canary_weight, namespace, name)


def _new_from(before: RolloutStatus, after: RolloutStatus) -> int:
    """Index in after.history of the first entry this decision added."""
    if not before.history:
        return 0
    newest_before = before.history[-1]
    for i in range(len(after.history) - 1, -1, -1):
        if after.history[i] == newest_before:
            return i + 1
    return 0


def _remove(gauge: Gauge, *labels: str) -> None:
    with contextlib.suppress(KeyError):
        gauge.remove(*labels)
