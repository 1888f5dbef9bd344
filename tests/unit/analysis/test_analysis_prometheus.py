"""The Prometheus provider against Prometheus' real answers (HTTP mocked with httpx)."""

from __future__ import annotations

import math

import httpx
import pytest
from forecastops.analysis.factory import ProviderFactory
from forecastops.analysis.null import NullProvider
from forecastops.analysis.prometheus import PrometheusProvider
from forecastops.analysis.provider import MetricsError, NoDataError
from forecastops.analysis.spec import PrometheusSource


def vector(*values: str) -> dict:
    result = [
        {"metric": {"revision": f"r{i}"}, "value": [1700000000.0, v]} for i, v in enumerate(values)
    ]
    return {"status": "success", "data": {"resultType": "vector", "result": result}}


def provider_answering(
    body: dict | str, status: int = 200, seen: list | None = None
) -> PrometheusProvider:
    def handler(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        if isinstance(body, str):
            return httpx.Response(status, text=body)
        return httpx.Response(status, json=body)

    client = httpx.Client(transport=httpx.MockTransport(handler))
    return PrometheusProvider("http://prometheus:9090/", client=client)


@pytest.mark.parametrize(
    ("body", "value"),
    [
        (vector("0.0123"), 0.0123),
        (vector("0"), 0.0),
        (vector("+Inf"), math.inf),
        ({"status": "success", "data": {"resultType": "scalar", "result": [1.0, "42"]}}, 42.0),
    ],
    ids=["one-sample", "zero", "infinity", "scalar"],
)
def test_given_single_value_when_queried_then_value_returned(body, value):
    assert provider_answering(body).run_query("q") == value


@pytest.mark.parametrize(
    ("body", "status", "error", "text"),
    [
        (vector(), 200, NoDataError, "no data"),
        (vector("NaN"), 200, NoDataError, "NaN"),
        (vector("0.1", "0.2"), 200, MetricsError, "returned 2 series"),
        (
            {"status": "error", "errorType": "bad_data", "error": "parse error at char 4"},
            400,
            MetricsError,
            "bad_data: parse error",
        ),
        (
            {"status": "error", "errorType": "timeout", "error": "query timed out"},
            503,
            MetricsError,
            "timeout",
        ),
        ("<html>bad gateway</html>", 502, MetricsError, "HTTP 502 without JSON"),
        (
            {"status": "success", "data": {"resultType": "matrix", "result": []}},
            200,
            MetricsError,
            "unsupported result type",
        ),
    ],
    ids=["empty", "nan", "several-series", "bad-query", "timeout", "proxy-error", "range-vector"],
)
def test_given_no_single_value_when_queried_then_error_says_why(body, status, error, text):
    with pytest.raises(error) as caught:
        provider_answering(body, status).run_query("q")
    assert text in str(caught.value)


def test_given_no_data_when_queried_then_it_is_a_metrics_error_too():
    """Callers that catch MetricsError also catch missing data: both are inconclusive."""
    assert issubclass(NoDataError, MetricsError)


def test_given_unreachable_prometheus_when_queried_then_error_names_the_address():
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    provider = PrometheusProvider(
        "http://prometheus:9090", client=httpx.Client(transport=httpx.MockTransport(refuse))
    )
    with pytest.raises(
        MetricsError, match="http://prometheus:9090 unreachable: connection refused"
    ):
        provider.run_query("q")
    assert provider.is_online() is False


def test_given_query_when_run_then_instant_query_api_called_with_it():
    seen: list[httpx.Request] = []
    provider_answering(vector("1"), seen=seen).run_query('sum(up{job="x"})')
    assert seen[0].url.path == "/api/v1/query"
    assert seen[0].url.params["query"] == 'sum(up{job="x"})'


def test_given_prometheus_up_when_checked_then_online():
    assert provider_answering(vector("1")).is_online() is True


def test_given_factory_when_metric_has_no_address_then_default_prometheus_used():
    factory = ProviderFactory(prometheus_url="http://default:9090/")
    provider = factory.provider_for(PrometheusSource("q"))
    assert isinstance(provider, PrometheusProvider) and provider.address == "http://default:9090"
    assert factory.provider_for(PrometheusSource("other")) is provider, "one provider per address"
    override = factory.provider_for(PrometheusSource("q", "http://other:9090"))
    assert override.address == "http://other:9090"
    factory.close()


def test_given_no_address_anywhere_when_provider_asked_then_null_provider_explains():
    provider = ProviderFactory(prometheus_url=None).provider_for(PrometheusSource("q"))
    assert isinstance(provider, NullProvider) and not provider.is_online()
    with pytest.raises(MetricsError, match="FORECASTOPS_PROMETHEUS_URL"):
        provider.run_query("q")
