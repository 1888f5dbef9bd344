"""The Redis cache against a real Redis: hits are counted; Redis down means no cache,
never an error, and no added latency once the breaker is open."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import redis

from devenv.services import Redis

pytestmark = [pytest.mark.services, pytest.mark.asyncio, pytest.mark.timeout(120)]
INFER = "/v2/models/forecast/infer"
Start = Callable[..., Awaitable[Any]]  # conftest.in_process: returns an InProcess


def body(value: float) -> dict[str, object]:
    tensor = {"name": "input", "shape": [2, 26], "datatype": "FP32", "data": [value] * 52}
    return {"inputs": [tensor]}


async def test_hits_and_misses_are_counted(in_process: Start, redis_server: Redis) -> None:
    server = await in_process(redis_url=redis_server.url, revision="rev-r", cache_ttl_seconds=120)
    first = await server.client.post(INFER, json=body(1.0))
    await asyncio.sleep(0.05)  # the write is in the background
    second = await server.client.post(INFER, json=body(1.0))
    assert first.status_code == second.status_code == 200
    assert first.json()["outputs"] == second.json()["outputs"]
    assert await server.metric("prediction_service_cache_misses_total", revision="rev-r") == 1
    assert await server.metric("prediction_service_cache_hits_total", revision="rev-r") == 1
    client = redis.Redis.from_url(redis_server.url)
    keys = client.keys("forecastops:pred:rev-r:*")
    assert len(keys) == 1 and 0 < client.ttl(keys[0]) <= 120
    client.close()


async def test_redis_outage_means_no_cache(in_process: Start, redis_server: Redis) -> None:
    server = await in_process(redis_url=redis_server.url)
    assert (await server.client.post(INFER, json=body(2.0))).status_code == 200
    await asyncio.to_thread(redis_server.stop)

    started = time.perf_counter()
    statuses = [(await server.client.post(INFER, json=body(2.0))).status_code for _ in range(50)]
    elapsed = time.perf_counter() - started
    assert statuses == [200] * 50
    assert await server.metric("prediction_service_cache_errors_total") >= 1
    # the breaker keeps the dead Redis off the path: 50 requests in well under a second
    assert elapsed < 1.0, elapsed

    await asyncio.to_thread(redis_server.start)
    deadline = time.monotonic() + 15
    while await server.metric("prediction_service_cache_hits_total") < 1:
        assert time.monotonic() < deadline, "the cache never came back"
        await server.client.post(INFER, json=body(3.0))
        await asyncio.sleep(0.1)
