"""Metrics in the Prometheus format: what each ForecastModel is doing, and how the
reconcile loop fares."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from forecastops.rollout.actions import Decision
from forecastops.rollout.state import Phase, RolloutStatus
from forecastops.telemetry.backup import BackupGauges
from forecastops.telemetry.metrics import Key
from forecastops.telemetry.rollout import RolloutCounters


class PrometheusMetrics:
    """One set of metrics in its own registry (so tests can make as many as they like)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.phase = Gauge(
            "forecastops_rollout_phase",
            "1 for the phase each ForecastModel is in, 0 for the others.",
            ["namespace", "name", "phase"],
            registry=self.registry,
        )
        self.canary_weight = Gauge(
            "forecastops_canary_weight",
            "Percent of the traffic each ForecastModel's canary gets.",
            ["namespace", "name"],
            registry=self.registry,
        )
        self.passes = Counter(
            "forecastops_reconcile_total",
            "Reconcile passes, by result: ok, or the kind of API error that ended them.",
            ["result"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "forecastops_reconcile_duration_seconds",
            "Time of one reconcile pass, gather to last write.",
            registry=self.registry,
        )
        self.writes = Counter(
            "forecastops_child_writes_total",
            "Children created, updated or deleted, by kind and verb.",
            ["kind", "verb"],
            registry=self.registry,
        )
        self.rollouts = RolloutCounters(self.registry)
        self.backups = BackupGauges(self.registry)

    def serve(self, port: int, address: str) -> None:
        start_http_server(port, addr=address, registry=self.registry)

    def observe_pass(self, result: str, seconds: float) -> None:
        self.passes.labels(result).inc()
        self.duration.observe(seconds)

    def observe_writes(self, writes: Iterable[tuple[str, str]]) -> None:
        for kind, verb in writes:
            self.writes.labels(kind, verb).inc()

    def observe_status(self, key: Key, status: Mapping[str, Any]) -> None:
        current = status.get("phase")
        for phase in Phase:
            self.phase.labels(*key, phase.value).set(1 if phase.value == current else 0)
        self.canary_weight.labels(*key).set(status.get("canaryWeight") or 0)
        self.backups.observe(key, status.get("backup"))

    def observe_rollout(self, key: Key, before: RolloutStatus, decision: Decision) -> None:
        self.rollouts.observe(*key, before, decision)

    def forget(self, key: Key) -> None:
        with contextlib.suppress(KeyError):  # never observed
            for phase in Phase:
                self.phase.remove(*key, phase.value)
            self.canary_weight.remove(*key)
        self.backups.forget(key)
