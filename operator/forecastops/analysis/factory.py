"""Which provider answers a metric: chosen by the metric's source, one client shared."""

from __future__ import annotations

import httpx

from forecastops.analysis.null import NullProvider
from forecastops.analysis.prometheus import PrometheusProvider
from forecastops.analysis.provider import MetricsProvider
from forecastops.analysis.spec import MetricSource, PrometheusSource


class ProviderFactory:
    """Builds providers for metric sources; one per address, reusing one HTTP client."""

    def __init__(
        self,
        *,
        prometheus_url: str | None,
        timeout: float = 10.0,
        client: httpx.Client | None = None,
    ) -> None:
        self.prometheus_url = prometheus_url.rstrip("/") if prometheus_url else None
        self._timeout = timeout
        self._client = client or httpx.Client()
        self._providers: dict[str, MetricsProvider] = {}

    def provider_for(self, source: MetricSource) -> MetricsProvider:
        match source:
            case PrometheusSource(address=address):
                return self._prometheus(address or self.prometheus_url)
        return NullProvider(f"no provider for metric source {type(source).__name__}")

    def close(self) -> None:
        self._client.close()

    def _prometheus(self, address: str | None) -> MetricsProvider:
        if not address:
            return NullProvider(
                "no Prometheus address: set prometheus.address on the metric "
                "or FORECASTOPS_PROMETHEUS_URL on the operator"
            )
        if address not in self._providers:
            self._providers[address] = PrometheusProvider(
                address, client=self._client, timeout=self._timeout
            )
        return self._providers[address]
