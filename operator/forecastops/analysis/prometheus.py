"""The Prometheus provider: an instant query through the HTTP API, one value out.

What counts as an answer is strict, because a wrong answer moves production traffic:

| Prometheus returns                        | run_query                                  |
|-------------------------------------------|--------------------------------------------|
| one sample (vector of 1, or a scalar)      | its value (+Inf and -Inf included)         |
| an empty vector                           | NoDataError: "no data"                     |
| NaN (e.g. 0/0 when nothing was requested) | NoDataError: "NaN"                         |
| several series                            | MetricsError: aggregate them in the query  |
| status "error", HTTP error, timeout       | MetricsError with Prometheus' own text     |
"""

from __future__ import annotations

import math
from typing import Any

import httpx

from forecastops.analysis.provider import MetricsError, NoDataError


class PrometheusProvider:
    def __init__(self, address: str, *, client: httpx.Client, timeout: float = 10.0) -> None:
        self.address = address.rstrip("/")
        self._client = client
        self._timeout = timeout

    def run_query(self, query: str) -> float:
        return _single_value(self._query(query))

    def is_online(self) -> bool:
        try:
            return self.run_query("vector(1)") == 1.0
        except MetricsError:
            return False

    def _query(self, query: str) -> dict[str, Any]:
        url = f"{self.address}/api/v1/query"
        try:
            response = self._client.get(url, params={"query": query}, timeout=self._timeout)
        except httpx.HTTPError as exc:
            raise MetricsError(f"Prometheus at {self.address} unreachable: {exc}") from exc
        try:
            body = response.json()
        except ValueError:
            raise MetricsError(
                f"Prometheus at {self.address} answered HTTP {response.status_code} "
                f"without JSON: {response.text[:200]!r}"
            ) from None
        if body.get("status") != "success":
            kind = body.get("errorType", f"HTTP {response.status_code}")
            raise MetricsError(f"Prometheus {kind}: {body.get('error', 'unknown error')}")
        return body.get("data") or {}


def _single_value(data: dict[str, Any]) -> float:
    kind, result = data.get("resultType"), data.get("result")
    if kind == "scalar":
        sample = result
    elif kind == "vector":
        if not result:
            raise NoDataError("no data: the query returned no series")
        if len(result) > 1:
            series = ", ".join(str(item.get("metric", {})) for item in result[:3])
            raise MetricsError(
                f"the query returned {len(result)} series ({series}, ...); "
                "aggregate them to one, e.g. with sum(...)"
            )
        sample = result[0].get("value")
    else:
        raise MetricsError(f"unsupported result type {kind!r}: use an instant vector or scalar")
    try:
        value = float(sample[1])
    except (TypeError, ValueError, IndexError):
        raise MetricsError(f"malformed sample {sample!r}") from None
    if math.isnan(value):
        raise NoDataError("NaN: the query had nothing to measure (e.g. 0/0 with no requests)")
    return value
