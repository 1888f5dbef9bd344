"""Metric names and labels as the rollout analysis queries them; a registry per app."""

from __future__ import annotations

from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from model_server.metrics import Metrics


def samples(metrics: Metrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    body, _ = metrics.render()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


def test_requests_and_latency_are_labelled_with_model_and_revision() -> None:
    metrics = Metrics("forecast", "rev-a")
    metrics.observe_request("infer", 200, 0.0003)
    metrics.observe_request("infer", 200, 0.002)
    metrics.observe_request("forecast", 400, 0.0001)
    got = samples(metrics)
    base = {("model", "forecast"), ("revision", "rev-a")}
    ok = frozenset(base | {("endpoint", "infer"), ("code", "200")})
    assert got[("prediction_service_requests_total", ok)] == 2
    bad = frozenset(base | {("endpoint", "forecast"), ("code", "400")})
    assert got[("prediction_service_requests_total", bad)] == 1
    bucket = frozenset(base | {("endpoint", "infer"), ("le", "0.0005")})
    assert got[("prediction_service_request_duration_seconds_bucket", bucket)] == 1
    count = frozenset(base | {("endpoint", "infer")})
    assert got[("prediction_service_request_duration_seconds_count", count)] == 2


def test_the_other_series() -> None:
    metrics = Metrics("forecast", "rev-a")
    metrics.cache_hits.inc()
    metrics.cache_misses.inc(2)
    metrics.predlog_queue_depth.set(7)
    metrics.predlog_dropped("buffer_full", 3)
    metrics.load_failed("checksum")
    metrics.model_loaded("2")
    got = {name: value for (name, _), value in samples(metrics).items()}
    assert got["prediction_service_cache_hits_total"] == 1
    assert got["prediction_service_cache_misses_total"] == 2
    assert got["prediction_service_prediction_log_queue_depth"] == 7
    assert got["prediction_service_prediction_log_dropped_total"] == 3
    assert got["prediction_service_model_load_failures_total"] == 1
    assert got["prediction_service_model_info"] == 1


def test_each_app_owns_its_registry() -> None:
    Metrics("a", "1")
    Metrics("a", "1")  # no "Duplicated timeseries" error
    assert REGISTRY.get_sample_value("prediction_service_requests_total") is None
