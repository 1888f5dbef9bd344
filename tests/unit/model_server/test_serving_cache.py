"""Cache keys and the circuit breaker that keeps a dead Redis off the request path."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from model_server.cache import CircuitBreaker, PredictionCache, cache_key
from model_server.metrics import Metrics

SHA = "0123456789abcdef" * 4


def test_key_is_canonical_over_the_float32_values() -> None:
    a = np.array([[1, 2, 3]], dtype=np.float32)
    b = np.asarray([[1.0, 2.0, 3.0]], dtype=np.float64).astype(np.float32)
    c = np.asfortranarray(np.array([[1, 2, 3]], dtype=np.float32))
    assert cache_key("r1", SHA, a) == cache_key("r1", SHA, b) == cache_key("r1", SHA, c)


def test_key_depends_on_revision_model_values_and_shape() -> None:
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    base = cache_key("r1", SHA, x)
    assert base.startswith(b"forecastops:pred:r1:0123456789abcdef:")
    assert cache_key("r2", SHA, x) != base
    assert cache_key("r1", "f" * 64, x) != base
    assert cache_key("r1", SHA, x + 1) != base
    assert cache_key("r1", SHA, x.reshape(3, 2)) != base


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_backs_off_and_probes_one_at_a_time() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(initial=1.0, maximum=4.0, clock=clock)
    assert breaker.allow() and breaker.closed
    breaker.record_failure()
    assert not breaker.allow()  # open for 1 s
    clock.now += 1.0
    assert breaker.allow()  # the probe
    assert not breaker.allow()  # others skip while it runs
    breaker.record_failure()  # probe failed: open for 2 s
    clock.now += 1.5
    assert not breaker.allow()
    clock.now += 0.5
    assert breaker.allow()
    breaker.record_failure()  # 4 s, the cap
    clock.now += 4.0
    assert breaker.allow()
    breaker.record_failure()
    clock.now += 3.9
    assert not breaker.allow()
    clock.now += 0.1
    assert breaker.allow()
    breaker.record_success()
    assert breaker.closed and breaker.allow() and breaker.allow()
    breaker.record_failure()  # backoff starts over
    clock.now += 1.0
    assert breaker.allow()


@pytest.mark.asyncio
async def test_unreachable_redis_means_no_cache_and_no_error() -> None:
    metrics = Metrics("m", "r")
    # a port nothing listens on: connection refused at once
    cache = PredictionCache("redis://127.0.0.1:1/0", metrics, ttl_seconds=10, timeout_seconds=0.05)
    key = cache_key("r", SHA, np.ones((1, 3), dtype=np.float32))
    assert await cache.get(key, rows=1) is None
    assert metrics.cache_errors._value.get() == 1
    # the breaker is open: the next calls do not even try
    for _ in range(10):
        assert await cache.get(key, rows=1) is None
        cache.put(key, np.ones(1, dtype=np.float32))
    await asyncio.sleep(0)
    assert metrics.cache_errors._value.get() == 1
    assert metrics.cache_hits._value.get() == metrics.cache_misses._value.get() == 0
    await cache.close()
