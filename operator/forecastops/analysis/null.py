"""The provider used when none is configured: every query is inconclusive, never a pass."""

from __future__ import annotations

from forecastops.analysis.provider import MetricsError


class NullProvider:
    """Answers nothing, and says why; a rollout that depends on it pauses instead of passing."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def run_query(self, query: str) -> float:
        raise MetricsError(self.reason)

    def is_online(self) -> bool:
        return False
