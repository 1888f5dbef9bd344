"""pytest fixtures for the real services: PostgreSQL, Redis, Prometheus, S3 (SeaweedFS).

Each server starts once per session, on demand, in its own tmp_path_factory directory and
bound to 127.0.0.1. Tests may stop or kill a server to simulate an outage; before every
test, any server started this session that is down is brought back on the same port with
its data, so one test's outage never leaks into the next.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from devenv.require import unavailable
from devenv.services import S3, BinaryNotFound, Postgres, Prometheus, Redis, Server

# Servers started in this session, in start order: the autouse fixture revives them.
_STARTED: list[Server] = []

S = TypeVar("S", bound=Server)


def serve(factory: Callable[[Path], S], what: str, workdir: Path) -> Iterator[S]:
    """Start a server for the session; a missing binary skips locally and fails in CI."""
    try:
        server = factory(workdir)
    except BinaryNotFound as exc:
        unavailable(what, f"{exc.binary!r} is not installed; {exc.hint}")
        raise  # unreachable: unavailable() skips or fails
    server.start()
    _STARTED.append(server)
    try:
        yield server
    finally:
        _STARTED.remove(server)
        server.close()


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Postgres]:
    """PostgreSQL 15: `.url`, `.create_database(name)`, `.has_timescaledb`."""
    yield from serve(Postgres, "PostgreSQL 15", tmp_path_factory.mktemp("postgres"))


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Redis]:
    """Redis 7: `.url` (redis://127.0.0.1:N/0)."""
    yield from serve(Redis, "Redis", tmp_path_factory.mktemp("redis"))


@pytest.fixture(scope="session")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    """Prometheus: `.set_targets(job, targets, labels)`, `.query(promql)`, `.wait_for(...)`."""
    yield from serve(Prometheus, "Prometheus", tmp_path_factory.mktemp("prometheus"))


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3]:
    """S3 (SeaweedFS): `.endpoint_url`, `.access_key`, `.secret_key`, `.client()`."""
    yield from serve(S3, "S3 (SeaweedFS)", tmp_path_factory.mktemp("s3"))


@pytest.fixture(autouse=True)
def _revive_stopped_services() -> None:
    """Restart any session server a previous test stopped (same port, same data)."""
    for server in list(_STARTED):
        server.ensure_running()


def _unique_name(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:12]}"


@pytest.fixture
def pg_database(postgres: Postgres) -> Iterator[str]:
    """A fresh, empty database per test; its URL. Dropped afterwards, even with open clients."""
    name = _unique_name("test_")
    url = postgres.ensure_running().create_database(name)
    yield url
    postgres.ensure_running().drop_database(name)


@pytest.fixture
def s3_bucket(s3: S3) -> Iterator[str]:
    """A fresh, empty bucket per test; its name. Deleted afterwards with its objects."""
    name = s3.ensure_running().create_bucket(_unique_name("test-"))
    yield name
    s3.ensure_running()
    _delete_bucket(s3, name)


def _delete_bucket(s3: S3, name: str) -> None:
    """Best effort: a test may already have deleted the bucket or its objects."""
    client = s3.client()
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
            for obj in page.get("Contents", []):
                client.delete_object(Bucket=name, Key=obj["Key"])
        client.delete_bucket(Bucket=name)
    except client.exceptions.NoSuchBucket:
        pass
