"""What the operator reports about itself: the interface and a null object.

`telemetry.factory.build_metrics` picks the implementation; `telemetry.prometheus` is
the Prometheus one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from forecastops.rollout.actions import Decision
from forecastops.rollout.state import RolloutStatus

Key = tuple[str, str]
"""(namespace, name) of a ForecastModel."""


class Metrics(Protocol):
    def observe_pass(self, result: str, seconds: float) -> None:
        """One reconcile pass ended: `ok`, or the kind of API error that ended it."""

    def observe_writes(self, writes: Iterable[tuple[str, str]]) -> None:
        """Children written in a pass, as (kind, verb)."""

    def observe_status(self, key: Key, status: Mapping[str, Any]) -> None:
        """A ForecastModel's status after a pass."""

    def observe_rollout(self, key: Key, before: RolloutStatus, decision: Decision) -> None:
        """A rollout's decision in a pass: its new measurements, an abort."""

    def forget(self, key: Key) -> None:
        """The ForecastModel is gone."""


class NoMetrics:
    """Reports nothing."""

    def observe_pass(self, result: str, seconds: float) -> None:
        pass

    def observe_writes(self, writes: Iterable[tuple[str, str]]) -> None:
        pass

    def observe_status(self, key: Key, status: Mapping[str, Any]) -> None:
        pass

    def observe_rollout(self, key: Key, before: RolloutStatus, decision: Decision) -> None:
        pass

    def forget(self, key: Key) -> None:
        pass
