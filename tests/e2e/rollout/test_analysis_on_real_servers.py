"""The analysis the rollouts rely on, against real model servers and a real Prometheus:
a healthy revision passes, a faulty one fails, one without traffic has no data."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from forecastops.analysis.measurement import Verdict, measure
from forecastops.analysis.prometheus import PrometheusProvider
from forecastops.analysis.spec import parse_metric

from devenv.rollouts import METRICS

pytestmark = [pytest.mark.services, pytest.mark.slow]


def judge(prometheus, metric: str, revision: str):
    spec = parse_metric(next(m for m in METRICS if m["name"] == metric))
    with httpx.Client() as client:
        provider = PrometheusProvider(prometheus.url, client=client)
        variables = {
            "revision": revision,
            "name": "demand",
            "namespace": "e2e",
            "stableRevision": "",
            "interval": "1s",
        }
        return measure(spec, provider, variables, datetime.now(UTC))


def test_given_real_servers_when_measured_then_healthy_passes_faulty_fails_idle_has_no_data(
    prometheus, servers
):
    servers.start("e2e-good", model_name="demand")
    servers.start("e2e-errors", model_name="demand", error_rate=0.5)
    servers.start("e2e-slow", model_name="demand", latency_ms=300)
    servers.start("e2e-idle", model_name="demand", load=False)
    for revision in ("e2e-good", "e2e-errors", "e2e-slow"):
        servers.wait_scraped(revision)

    good = judge(prometheus, "error-rate", "e2e-good")
    assert (good.verdict, good.value) == (Verdict.SUCCESSFUL, 0.0)
    errors = judge(prometheus, "error-rate", "e2e-errors")
    assert errors.verdict is Verdict.FAILED and 0.2 < errors.value < 0.8
    assert judge(prometheus, "latency-p95", "e2e-good").verdict is Verdict.SUCCESSFUL
    slow = judge(prometheus, "latency-p95", "e2e-slow")
    assert slow.verdict is Verdict.FAILED and slow.value > 0.2
    idle = judge(prometheus, "error-rate", "e2e-idle")
    assert idle.verdict is Verdict.INCONCLUSIVE and "no data" in idle.message
