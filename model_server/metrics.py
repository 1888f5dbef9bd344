"""Prometheus metrics, in a registry that the app owns (never the global default one).

| name                                                      | type      | labels                              |
|-----------------------------------------------------------|-----------|-------------------------------------|
| ``prediction_service_requests_total``                     | counter   | model, revision, endpoint, code     |
| ``prediction_service_request_duration_seconds``           | histogram | model, revision, endpoint           |
| ``prediction_service_cache_hits_total``                   | counter   | model, revision                     |
| ``prediction_service_cache_misses_total``                 | counter   | model, revision                     |
| ``prediction_service_cache_errors_total``                 | counter   | model, revision                     |
| ``prediction_service_prediction_log_queue_depth``         | gauge     | model, revision (rows waiting)      |
| ``prediction_service_prediction_log_written_total``       | counter   | model, revision (rows)              |
| ``prediction_service_prediction_log_dropped_total``       | counter   | model, revision, reason (rows)      |
| ``prediction_service_model_load_failures_total``          | counter   | model, revision, reason             |
| ``prediction_service_model_info``                         | gauge     | model, revision, version (1 = ready) |

``endpoint`` is ``infer`` or ``forecast``; ``model`` is always the served model's name
(never a name taken from a request, which would let clients create series).

Several worker processes (``--workers N``) share one set of series through
prometheus-client's multiprocess mode: `main` points ``PROMETHEUS_MULTIPROC_DIR`` at a
fresh directory before the workers start, and each worker passes that directory here.
The default, and the recommendation on Kubernetes, is one process per pod.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

# From 100 µs (a cached or 1-row prediction) to 10 s; 0.2 s is the seeds' p95 objective.
LATENCY_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.2,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)


class Metrics:
    """The server's metrics for one model and revision."""

    def __init__(self, model: str, revision: str, *, multiprocess_dir: str | None = None) -> None:
        self.registry = CollectorRegistry()
        if multiprocess_dir:
            MultiProcessCollector(self.registry, path=multiprocess_dir)
            self._target: CollectorRegistry | None = None  # values live in the directory
        else:
            self._target = self.registry
        self._base = (model, revision)
        base = ["model", "revision"]

        self._requests = Counter(
            "prediction_service_requests_total",
            "Prediction requests by endpoint and HTTP status code.",
            [*base, "endpoint", "code"],
            registry=self._target,
        )
        self._duration = Histogram(
            "prediction_service_request_duration_seconds",
            "Time from the request's arrival in the app to its response.",
            [*base, "endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=self._target,
        )
        self.cache_hits = self._counter("cache_hits", "Predictions answered from the cache.")
        self.cache_misses = self._counter("cache_misses", "Cache lookups that found nothing.")
        self.cache_errors = self._counter(
            "cache_errors", "Cache operations that failed (the request went on without it)."
        )
        self.predlog_written = self._counter(
            "prediction_log_written", "Prediction rows written to the prediction log."
        )
        self.predlog_queue_depth = Gauge(
            "prediction_service_prediction_log_queue_depth",
            "Prediction rows waiting in memory to be written.",
            base,
            registry=self._target,
            multiprocess_mode="livesum",
        ).labels(*self._base)
        self._predlog_dropped = Counter(
            "prediction_service_prediction_log_dropped_total",
            "Prediction rows that could not be kept (buffer_full, rejected, shutdown).",
            [*base, "reason"],
            registry=self._target,
        )
        self._load_failures = Counter(
            "prediction_service_model_load_failures_total",
            "Failed attempts to load the model, by reason.",
            [*base, "reason"],
            registry=self._target,
        )
        self._violations = Counter(
            "prediction_service_output_contract_violations_total",
            "Answers that broke the output contract, by check (nan, negative, max_abs).",
            [*base, "check"],
            registry=self._target,
        )
        self._model_info = Gauge(
            "prediction_service_model_info",
            "1 once the model of this version is loaded and passed its golden request.",
            [*base, "version"],
            registry=self._target,
            multiprocess_mode="livemax",
        )
        # labels() takes a lock and builds a tuple: the hot path reuses bound children.
        self._request_children: dict[tuple[str, int], tuple[Any, Any]] = {}

    def _counter(self, name: str, documentation: str) -> Any:
        metric = Counter(
            f"prediction_service_{name}_total",
            documentation,
            ["model", "revision"],
            registry=self._target,
        )
        return metric.labels(*self._base)

    def observe_request(self, endpoint: str, code: int, seconds: float) -> None:
        children = self._request_children.get((endpoint, code))
        if children is None:
            children = (
                self._requests.labels(*self._base, endpoint, str(code)),
                self._duration.labels(*self._base, endpoint),
            )
            self._request_children[(endpoint, code)] = children
        children[0].inc()
        children[1].observe(seconds)

    def predlog_dropped(self, reason: str, rows: int) -> None:
        self._predlog_dropped.labels(*self._base, reason).inc(rows)

    def contract_violated(self, check: str) -> None:
        self._violations.labels(*self._base, check).inc()

    def load_failed(self, reason: str) -> None:
        self._load_failures.labels(*self._base, reason).inc()

    def model_loaded(self, version: str) -> None:
        self._model_info.labels(*self._base, version).set(1)

    def close(self) -> None:
        """At a worker's exit: its live gauges no longer count."""
        if self._target is None:
            mark_process_dead(os.getpid())

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
