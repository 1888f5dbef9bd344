"""The Prometheus provider against a real Prometheus server."""

from __future__ import annotations

import uuid

import httpx
import pytest
from forecastops.analysis.prometheus import PrometheusProvider
from forecastops.analysis.provider import MetricsError, NoDataError

pytestmark = pytest.mark.services


@pytest.fixture
def provider(prometheus):
    with httpx.Client() as client:
        yield PrometheusProvider(prometheus.url, client=client)


@pytest.fixture
def self_job(prometheus):
    """Prometheus scraping itself as a fresh job, so `up{job=...}` has exactly one series."""
    job = f"self-{uuid.uuid4().hex[:8]}"
    prometheus.set_targets(job, [f"{prometheus.host}:{prometheus.port}"])
    prometheus.wait_for(f'up{{job="{job}"}} == 1', timeout=30)
    yield job
    prometheus.set_targets(job, [])


def test_given_one_series_when_queried_then_its_value(provider, self_job):
    assert provider.run_query(f'sum(up{{job="{self_job}"}})') == 1.0


def test_given_no_series_when_queried_then_no_data(provider):
    with pytest.raises(NoDataError, match="no data"):
        provider.run_query('sum(up{job="nothing-scrapes-this"})')


def test_given_zero_over_zero_when_queried_then_nan_is_no_data(provider):
    with pytest.raises(NoDataError, match="NaN"):
        provider.run_query("vector(0) / vector(0)")


def test_given_two_series_when_queried_then_asked_to_aggregate(provider):
    query = (
        'label_replace(vector(1), "a", "x", "", "") or label_replace(vector(2), "a", "y", "", "")'
    )
    with pytest.raises(MetricsError, match="aggregate them"):
        provider.run_query(query)


def test_given_invalid_promql_when_queried_then_prometheus_error_text(provider):
    with pytest.raises(MetricsError, match="bad_data"):
        provider.run_query("sum(")


def test_given_running_server_when_checked_then_online_and_a_closed_port_is_not(provider):
    assert provider.is_online()
    with httpx.Client() as client:
        assert not PrometheusProvider("http://127.0.0.1:9", client=client, timeout=2).is_online()
