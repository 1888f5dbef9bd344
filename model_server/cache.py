"""An optional Redis cache of predictions, that never makes a request fail.

Key: the revision, the model's sha256 and a hash of the canonical input, i.e. the
validated float32 matrix (its shape and bytes), so two JSON bodies that differ only in
spacing, key order or ``1`` vs ``1.0`` share an entry, and two models never do. Value:
the float32 predictions. Writes are fire-and-forget; reads wait at most
``cache_timeout_ms``.

When Redis fails, the `CircuitBreaker` opens: requests skip the cache (no added
latency) for 0.5 s, doubling up to 30 s while it keeps failing; after each pause one
request probes Redis while the others keep skipping.

The cache pays off for models that cost more than a Redis round trip (~0.1-0.2 ms on
a loopback or pod network). The sample ONNX model predicts one row in ~10 µs, so there
the cache is for repeated large batches, not for single rows.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable

import numpy as np

from model_server.metrics import Metrics

log = logging.getLogger(__name__)

MAX_PENDING_WRITES = 256


def cache_key(revision: str, model_sha256: str, x: np.ndarray) -> bytes:
    """The key for predictions of `x` (float32, C-contiguous [rows, columns])."""
    digest = hashlib.blake2b(f"{x.shape}".encode(), digest_size=16)
    digest.update(memoryview(np.ascontiguousarray(x, dtype=np.float32)).cast("B"))
    return f"forecastops:pred:{revision}:{model_sha256[:16]}:{digest.hexdigest()}".encode()


class CircuitBreaker:
    """Closed until a failure; then open for a backoff, then one probe at a time."""

    def __init__(
        self,
        initial: float = 0.5,
        maximum: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._initial = initial
        self._maximum = maximum
        self._clock = clock
        self._backoff = initial
        self._open_until = 0.0  # 0: closed
        self._probing = False

    @property
    def closed(self) -> bool:
        return self._open_until == 0.0

    def allow(self) -> bool:
        if self._open_until == 0.0:
            return True
        if self._probing or self._clock() < self._open_until:
            return False
        self._probing = True
        return True

    def record_success(self) -> None:
        if self._open_until != 0.0:
            self._open_until = 0.0
            self._backoff = self._initial
            self._probing = False

    def record_failure(self) -> None:
        self._open_until = self._clock() + self._backoff
        self._backoff = min(self._backoff * 2, self._maximum)
        self._probing = False


class PredictionCache:
    def __init__(
        self,
        url: str,
        metrics: Metrics,
        *,
        ttl_seconds: int,
        timeout_seconds: float,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        import redis.asyncio as redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        self._redis = redis.Redis.from_url(
            url,
            socket_timeout=timeout_seconds,
            socket_connect_timeout=timeout_seconds,
            retry=Retry(NoBackoff(), 0),  # the breaker decides when to try again
            health_check_interval=0,
        )
        self._metrics = metrics
        self._ttl = ttl_seconds
        self._breaker = breaker or CircuitBreaker()
        self._pending: set[asyncio.Task[None]] = set()

    async def get(self, key: bytes, rows: int) -> np.ndarray | None:
        """The cached predictions for `key`, or None (a miss, or Redis unavailable)."""
        if not self._breaker.allow():
            return None
        try:
            value = await self._redis.get(key)
        except asyncio.CancelledError:
            self._breaker.record_failure()  # a cancelled probe must not stall the breaker
            raise
        except Exception as exc:  # any failure of the cache means: no cache
            self._failed("get", exc)
            return None
        self._succeeded()
        if value is None or len(value) != rows * 4:
            self._metrics.cache_misses.inc()
            return None
        self._metrics.cache_hits.inc()
        return np.frombuffer(value, dtype=np.float32)

    def put(self, key: bytes, predictions: np.ndarray) -> None:
        """Store in the background; skipped while Redis is failing or too many are pending."""
        if len(self._pending) >= MAX_PENDING_WRITES or not self._breaker.allow():
            return
        value = predictions.astype(np.float32, copy=False).tobytes()
        task = asyncio.create_task(self._set(key, value))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _set(self, key: bytes, value: bytes) -> None:
        try:
            await self._redis.set(key, value, ex=self._ttl)
        except Exception as exc:
            self._failed("set", exc)
        else:
            self._succeeded()

    def _succeeded(self) -> None:
        if not self._breaker.closed:
            log.info("Cache available again")
            self._breaker.record_success()

    def _failed(self, operation: str, exc: Exception) -> None:
        self._metrics.cache_errors.inc()
        if self._breaker.closed:
            log.warning("Cache unavailable, serving without it: %s %s", operation, exc)
        self._breaker.record_failure()

    async def close(self) -> None:
        if self._pending:
            await asyncio.wait(self._pending, timeout=1.0)
        await self._redis.aclose()
