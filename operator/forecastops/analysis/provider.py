"""The metrics-provider interface: what an analysis asks of a source of measurements.

As in Flagger, a provider answers one query with one number. Prometheus is the first
implementation; forecast-aware analyses (a backtest score of the candidate model, the
divergence of its shadow predictions from stable's) plug in as further providers that
answer their own kind of query with a float.

A provider never decides: it raises `MetricsError` (or its `NoDataError` subclass) when
it cannot answer, and the caller records an *inconclusive* measurement with that text.
"""

from __future__ import annotations

from typing import Protocol


class MetricsError(Exception):
    """The provider could not answer (unreachable, bad query, ambiguous answer)."""


class NoDataError(MetricsError):
    """The query ran but measured nothing (no series, or NaN such as 0/0)."""


class MetricsProvider(Protocol):
    def run_query(self, query: str) -> float:
        """Run `query` and return its single value; raise MetricsError otherwise."""
        ...

    def is_online(self) -> bool:
        """Whether the provider answers at all (used for diagnostics, never for verdicts)."""
        ...
