"""The operator's metrics: Prometheus when asked for (`--metrics-port`), else none.

Prometheus is optional at run time: its implementation (and its library) is loaded only
when metrics are asked for.
"""

from __future__ import annotations

from forecastops.telemetry.metrics import Metrics, NoMetrics


def build_metrics(port: int | None, address: str = "0.0.0.0") -> Metrics:
    """Prometheus metrics served on `address:port`, or none."""
    if port is None:
        return NoMetrics()
    from forecastops.telemetry.prometheus import PrometheusMetrics  # an optional dependency

    metrics = PrometheusMetrics()
    metrics.serve(port, address)
    return metrics
