"""The prediction log against a real PostgreSQL: rows arrive, outages are ridden out,
what cannot be kept is counted, migrations and retention are idempotent."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import psycopg
import pytest

from devenv.services import Postgres
from model_server.predlog import MIGRATIONS, TABLE, apply_retention, migrate, partition_name

pytestmark = [pytest.mark.services, pytest.mark.asyncio, pytest.mark.timeout(120)]
INFER = "/v2/models/forecast/infer"
Start = Callable[..., Awaitable[Any]]  # conftest.in_process: returns an InProcess


def body(rows: int, request_id: str, seed: int = 0) -> dict[str, object]:
    data = np.random.default_rng(seed).random((rows, 26)).round(3).tolist()
    tensor = {"name": "input", "shape": [rows, 26], "datatype": "FP32", "data": data}
    return {"id": request_id, "inputs": [tensor]}


def count_rows(url: str) -> int:
    try:
        with psycopg.connect(url, connect_timeout=2) as conn:
            return conn.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0]  # type: ignore[index]
    except (psycopg.OperationalError, psycopg.errors.UndefinedTable):
        return -1


async def wait_rows(url: str, expected: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while (found := await asyncio.to_thread(count_rows, url)) != expected:
        assert time.monotonic() < deadline, f"{found} rows in {TABLE}, expected {expected}"
        await asyncio.sleep(0.2)


async def test_prediction_rows_arrive(in_process: Start, pg_database: str) -> None:
    server = await in_process(database_url=pg_database, revision="rev-9", predlog_flush_seconds=0.1)
    answers = {}
    for i in range(5):
        response = await server.client.post(INFER, json=body(3, f"req-{i}", seed=i))
        assert response.status_code == 200
        answers[f"req-{i}"] = response.json()["outputs"][0]["data"]
    await wait_rows(pg_database, 15)
    with psycopg.connect(pg_database) as conn:
        rows = conn.execute(
            f"SELECT time, model, revision, request_id, row_index, features_hash, features, "
            f"prediction, latency_ms FROM {TABLE} ORDER BY request_id, row_index"
        ).fetchall()
    for when, model, revision, request_id, index, digest, features, prediction, latency in rows:
        assert abs((datetime.now(UTC) - when).total_seconds()) < 60
        assert (model, revision) == ("forecast", "rev-9")
        assert prediction == pytest.approx(answers[request_id][index], rel=1e-6)
        assert len(digest) == 16 and features is None and latency > 0
    assert await server.metric("prediction_service_prediction_log_written_total") == 15


async def test_features_are_kept_when_asked(in_process: Start, pg_database: str) -> None:
    server = await in_process(
        database_url=pg_database, predlog_store_features=True, predlog_flush_seconds=0.1
    )
    request = body(2, "with-features")
    assert (await server.client.post(INFER, json=request)).status_code == 200
    await wait_rows(pg_database, 2)
    with psycopg.connect(pg_database) as conn:
        stored = conn.execute(f"SELECT features FROM {TABLE} ORDER BY row_index").fetchall()
    sent = request["inputs"][0]["data"]  # type: ignore[index]
    for (features,), row in zip(stored, sent, strict=True):
        assert features == pytest.approx(row, rel=1e-6)


async def test_buffered_rows_are_flushed_at_shutdown(in_process: Start, pg_database: str) -> None:
    server = await in_process(database_url=pg_database, predlog_flush_seconds=60)
    await wait_rows(pg_database, 0)  # migrated; the next flush would be a minute away
    for i in range(4):
        assert (await server.client.post(INFER, json=body(2, f"r{i}"))).status_code == 200
    await server.stop()
    assert count_rows(pg_database) == 8


async def test_postgres_outage_under_load(
    in_process: Start, pg_database: str, postgres: Postgres
) -> None:
    """PostgreSQL stops under load: no request fails; the buffered rows arrive when it is
    back; the rows beyond the buffer are counted as dropped."""
    server = await in_process(
        database_url=pg_database,
        predlog_buffer_rows=200,
        predlog_batch_rows=50,
        predlog_flush_seconds=0.1,
    )
    for i in range(20):
        assert (await server.client.post(INFER, json=body(1, f"before-{i}", i))).status_code == 200
    await wait_rows(pg_database, 20)

    await asyncio.to_thread(postgres.stop)
    statuses = []
    for i in range(300):
        response = await server.client.post(INFER, json=body(1, f"during-{i}", i))
        statuses.append(response.status_code)
    assert statuses == [200] * 300
    assert await server.metric("prediction_service_prediction_log_queue_depth") == 200
    dropped = await server.metric(
        "prediction_service_prediction_log_dropped_total", reason="buffer_full"
    )
    assert dropped == 100

    await asyncio.to_thread(postgres.start)
    await wait_rows(pg_database, 20 + 200)
    assert await server.metric("prediction_service_prediction_log_queue_depth") == 0
    assert await server.metric("prediction_service_prediction_log_written_total") == 220


async def test_migrations_are_versioned_and_idempotent(
    postgres: Postgres, pg_database: str
) -> None:
    async with await psycopg.AsyncConnection.connect(pg_database, autocommit=True) as conn:
        assert await migrate(conn) == [m.version for m in MIGRATIONS]
        assert await migrate(conn) == []
        cur = await conn.execute("SELECT version, name FROM schema_migrations ORDER BY version")
        assert [row[0] for row in await cur.fetchall()] == [m.version for m in MIGRATIONS]
        cur = await conn.execute("SELECT relkind FROM pg_class WHERE relname = %s", [TABLE])
        relkind = (await cur.fetchone())[0]  # type: ignore[index]
        # a TimescaleDB hypertable is an ordinary table to pg_class; without it: partitioned
        assert relkind == ("r" if postgres.has_timescaledb else "p")


async def test_retention(postgres: Postgres, pg_database: str) -> None:
    today = date(2030, 6, 15)
    async with await psycopg.AsyncConnection.connect(pg_database, autocommit=True) as conn:
        await migrate(conn)
        if postgres.has_timescaledb:
            await apply_retention(conn, today, retention_days=30)
            await apply_retention(conn, today, retention_days=30)
            cur = await conn.execute(
                "SELECT config->>'drop_after' FROM timescaledb_information.jobs "
                "WHERE proc_name = 'policy_retention' AND hypertable_name = %s",
                [TABLE],
            )
            assert [row[0] for row in await cur.fetchall()] == ["30 days"]
            return
        old, kept = today - timedelta(days=31), today - timedelta(days=30)
        for day in (old, kept):
            await conn.execute(
                f"CREATE TABLE {partition_name(day)} PARTITION OF {TABLE} FOR VALUES "
                f"FROM ('{day} 00:00+00') TO ('{day + timedelta(days=1)} 00:00+00')"
            )
        await apply_retention(conn, today, retention_days=30)
        await apply_retention(conn, today, retention_days=30)  # idempotent
        cur = await conn.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = %s::regclass ORDER BY 1",
            [TABLE],
        )
        names = [row[0] for row in await cur.fetchall()]
    expected = [kept] + [today + timedelta(days=d) for d in range(-2, 8)]
    assert names == [partition_name(day) for day in expected]


async def test_series_and_target_are_logged(
    in_process: Start, pg_database: str, tiny_model
) -> None:
    """The keys that join a prediction to the actual demand reported later, from both APIs."""
    server = await in_process(database_url=pg_database, predlog_flush_seconds=0.1)
    names = tiny_model.feature_names
    instances = [
        {**{name: float(i + j) for j, name in enumerate(names)}, "series_id": f"s-{i}",
         "target": f"2026-12-0{i + 1}"}
        for i in range(2)
    ]  # fmt: skip
    forecast = {"id": "by-series", "instances": instances}
    assert (await server.client.post("/v1/forecast", json=forecast)).status_code == 200
    v2 = body(2, "v2-keys")
    v2["parameters"] = {"series_ids": ["a", "b"], "targets": ["2026-12-24T06:00:00+01:00"] * 2}
    assert (await server.client.post(INFER, json=v2)).status_code == 200
    unkeyed = body(1, "no-keys")
    assert (await server.client.post(INFER, json=unkeyed)).status_code == 200
    await wait_rows(pg_database, 5)
    with psycopg.connect(pg_database) as conn:
        rows = conn.execute(
            f"SELECT request_id, row_index, series_id, target_ts FROM {TABLE} "
            "ORDER BY request_id, row_index"
        ).fetchall()
    assert rows == [
        ("by-series", 0, "s-0", datetime(2026, 12, 1, tzinfo=UTC)),
        ("by-series", 1, "s-1", datetime(2026, 12, 2, tzinfo=UTC)),
        ("no-keys", 0, None, None),
        ("v2-keys", 0, "a", datetime(2026, 12, 24, 5, tzinfo=UTC)),
        ("v2-keys", 1, "b", datetime(2026, 12, 24, 5, tzinfo=UTC)),
    ]


async def test_an_existing_log_is_upgraded_without_losing_a_row(pg_database: str) -> None:
    """A database a previous server version migrated (1 and 2) gains the keys' columns."""
    async with await psycopg.AsyncConnection.connect(pg_database, autocommit=True) as conn:
        await conn.execute(
            "CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        for migration in MIGRATIONS[:2]:
            await migration.apply(conn)
            await conn.execute(
                "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                [migration.version, migration.name],
            )
        await apply_retention(conn, datetime.now(UTC).date(), 30)
        await conn.execute(
            f"INSERT INTO {TABLE} (time, model, revision, request_id, row_index, features_hash,"
            " prediction, latency_ms) VALUES (now(), 'm', 'r', 'old', 0, '\\x00', 1.5, 2)"
        )
        assert await migrate(conn) == [m.version for m in MIGRATIONS[2:]]
        cur = await conn.execute(f"SELECT request_id, prediction, series_id FROM {TABLE}")
        assert await cur.fetchall() == [("old", 1.5, None)]


async def test_actuals_are_stored_versioned_and_join_the_log(
    in_process: Start, pg_database: str, tiny_model
) -> None:
    """Actuals keyed like the log's rows: a correction is a new version, the latest wins in
    the join, a censored period is marked, and credentials are required."""
    server = await in_process(database_url=pg_database, predlog_flush_seconds=0.1)
    names = tiny_model.feature_names
    row = {name: float(j) for j, name in enumerate(names)}
    forecast = {"instances": [{**row, "series_id": "s-1", "target": "2026-12-05"}]}
    answer = await server.client.post("/v1/forecast", json=forecast)
    predicted = answer.json()["predictions"][0]
    await wait_rows(pg_database, 1)

    sent = {"actuals": [{"series_id": "s-1", "target": "2026-12-05", "value": 10}]}
    assert (await server.client.post("/v1/actuals", json=sent)).json() == {"stored": 1}
    correction = {
        "actuals": [
            {"series_id": "s-1", "target": "2026-12-05T00:00:00Z", "value": 12.5},
            {"series_id": "s-2", "target": "2026-12-05", "value": 0, "censored": True},
        ]
    }
    assert (await server.client.post("/v1/actuals", json=correction)).json() == {"stored": 2}
    anonymous = await server.client.post("/v1/actuals", json=sent, headers={"X-API-Key": ""})
    assert anonymous.status_code == 401

    with psycopg.connect(pg_database) as conn:
        versions = conn.execute(
            "SELECT series_id, value, censored, version FROM actuals ORDER BY series_id, version"
        ).fetchall()
        joined = conn.execute(
            f"SELECT p.prediction, a.value, a.version FROM {TABLE} p"
            " JOIN latest_actuals a USING (series_id, target_ts)"
        ).fetchall()
    assert versions == [("s-1", 10.0, False, 1), ("s-1", 12.5, False, 2), ("s-2", 0.0, True, 1)]
    assert joined == [(pytest.approx(predicted, rel=1e-6), 12.5, 2)]


async def test_actuals_without_a_database_or_with_bad_rows_are_refused(
    in_process: Start,
) -> None:
    server = await in_process()
    sent = {"actuals": [{"series_id": "s", "target": "2026-12-05", "value": 1}]}
    refused = await server.client.post("/v1/actuals", json=sent)
    assert refused.status_code == 404
    assert "set spec.server.predictionLog" in refused.json()["error"]
    bad = {"actuals": [{"series_id": "s", "target": "2026-12-05", "value": "x"}]}
    answer = await server.client.post("/v1/actuals", json=bad)
    assert answer.status_code == 400
    assert answer.json()["error"] == 'actuals[0].value must be a finite number, got "x"'


async def test_actuals_are_refused_while_the_database_is_down(
    in_process: Start, postgres: Postgres, pg_database: str
) -> None:
    """Nothing is lost: the client is told, and sends again once it is back."""
    server = await in_process(database_url=pg_database)
    sent = {"actuals": [{"series_id": "s", "target": "2026-12-05", "value": 1}]}
    postgres.stop()
    try:
        down = await server.client.post("/v1/actuals", json=sent)
    finally:
        postgres.ensure_running()
    assert down.status_code == 503
    assert "nothing was stored" in down.json()["error"]
    assert (await server.client.post("/v1/actuals", json=sent)).json() == {"stored": 1}
