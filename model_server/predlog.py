"""The prediction log: every prediction row, written to PostgreSQL in the background.

Serving never waits on the database. `PredictionLog.submit` appends to a bounded
in-memory buffer and returns; one background task copies batches into the table with
``COPY``. When the database is down the buffer holds up to ``predlog_buffer_rows``
rows while the writer reconnects with backoff (0.5 s doubling to 5 s); rows that do not
fit are counted in ``prediction_service_prediction_log_dropped_total{reason="buffer_full"}``,
rows the database refuses twice in ``reason="rejected"``, rows still buffered when the
shutdown flush times out in ``reason="shutdown"``. Nothing is dropped silently.

One row per predicted row: time (of the request), model, revision, request id (the
client's, or a generated one), row index, a 128-bit BLAKE2b hash of the row's float32
features, optionally the features themselves, the prediction, the request latency, and,
when the client named them, the series and the target period the row forecasts (the key
that joins a prediction to the actual demand reported later).

Schema: versioned, idempotent migrations recorded in ``schema_migrations`` and applied
under an advisory lock (several pods start at once). With TimescaleDB, the table is a
hypertable with a retention policy; without, it is range-partitioned by day, with
partitions created a week ahead and those older than the retention dropped by the
writer once a day.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np

from model_server.metrics import Metrics
from model_server.protocol import RowKeys

if TYPE_CHECKING:
    from psycopg import AsyncConnection

log = logging.getLogger(__name__)

TABLE = "prediction_log"
COLUMNS = (
    "time, model, revision, request_id, row_index, features_hash, features, prediction, "
    "latency_ms, series_id, target_ts"
)
MIGRATION_LOCK = 0x666F7265636173  # pg_advisory_xact_lock key: "forecas"
PARTITION_DAYS_BEHIND = 2
PARTITION_DAYS_AHEAD = 7
RECONNECT_BACKOFF = (0.5, 5.0)
MAX_ATTEMPTS_PER_BATCH = 2


@dataclass(frozen=True, slots=True)
class PredictionRecord:
    """One request's predictions, as the data plane hands them over."""

    time: float  # epoch seconds
    request_id: str | None
    latency_seconds: float
    features: np.ndarray  # float32 [rows, features]
    predictions: np.ndarray  # float32 [rows]
    keys: RowKeys | None = None
    """Series and target period per row, when the client gave them."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    apply: Callable[[AsyncConnection], Awaitable[None]]


async def _create_table(conn: AsyncConnection) -> None:
    columns = """
        time          timestamptz NOT NULL,
        model         text        NOT NULL,
        revision      text        NOT NULL,
        request_id    text        NOT NULL,
        row_index     integer     NOT NULL,
        features_hash bytea       NOT NULL,
        features      real[],
        prediction    real        NOT NULL,
        latency_ms    real        NOT NULL
    """
    if await _enable_timescaledb(conn):
        await conn.execute(f"CREATE TABLE {TABLE} ({columns})")
        await conn.execute(
            "SELECT create_hypertable(%s, 'time', chunk_time_interval => INTERVAL '1 day')",
            [TABLE],
        )
    else:
        await conn.execute(f"CREATE TABLE {TABLE} ({columns}) PARTITION BY RANGE (time)")


async def _create_index(conn: AsyncConnection) -> None:
    await conn.execute(f"CREATE INDEX {TABLE}_model_time ON {TABLE} (model, revision, time DESC)")


async def _add_series_keys(conn: AsyncConnection) -> None:
    """Which series and target period a row forecasts (NULL for rows logged without)."""
    await conn.execute(
        f"ALTER TABLE {TABLE} ADD COLUMN series_id text, ADD COLUMN target_ts timestamptz"
    )
    await conn.execute(f"CREATE INDEX {TABLE}_series_target ON {TABLE} (series_id, target_ts)")


async def _create_actuals(conn: AsyncConnection) -> None:
    """Observed demand, versioned per (series, target period); see `model_server.actuals`."""
    await conn.execute(
        "CREATE TABLE actuals ("
        " series_id text NOT NULL, target_ts timestamptz NOT NULL,"
        " value double precision NOT NULL, censored boolean NOT NULL DEFAULT false,"
        " version integer NOT NULL, ingested_at timestamptz NOT NULL DEFAULT now(),"
        " PRIMARY KEY (series_id, target_ts, version))"
    )
    await conn.execute(
        "CREATE VIEW latest_actuals AS"
        " SELECT DISTINCT ON (series_id, target_ts) series_id, target_ts, value, censored,"
        " version, ingested_at FROM actuals ORDER BY series_id, target_ts, version DESC"
    )


MIGRATIONS = (
    Migration(1, "create prediction_log", _create_table),
    Migration(2, "index prediction_log by model, revision and time", _create_index),
    Migration(3, "series and target period of each row", _add_series_keys),
    Migration(4, "actuals, versioned, and their latest version", _create_actuals),
)


async def _enable_timescaledb(conn: AsyncConnection) -> bool:
    """True if TimescaleDB is (or could be made) active in this database."""
    cur = await conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'")
    if await cur.fetchone():
        return True
    cur = await conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'")
    if not await cur.fetchone():
        return False
    try:
        async with conn.transaction():  # a savepoint: failure leaves the migration intact
            await conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    except Exception as exc:  # e.g. not in shared_preload_libraries
        log.warning("TimescaleDB is installed but cannot be enabled (%s); using partitions", exc)
        return False
    return True


async def migrate(conn: AsyncConnection) -> list[int]:
    """Apply the migrations this database lacks; the versions applied now."""
    applied_now = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", [MIGRATION_LOCK])
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        cur = await conn.execute("SELECT version FROM schema_migrations")
        done = {row[0] for row in await cur.fetchall()}
        for migration in MIGRATIONS:
            if migration.version in done:
                continue
            await migration.apply(conn)
            await conn.execute(
                "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                [migration.version, migration.name],
            )
            applied_now.append(migration.version)
    return applied_now


async def apply_retention(conn: AsyncConnection, today: date, retention_days: int) -> None:
    """Keep `retention_days` of rows: a TimescaleDB policy, or daily partitions."""
    cur = await conn.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", [TABLE])
    row = await cur.fetchone()
    if row is None:
        raise RuntimeError(f"{TABLE} does not exist: migrate first")
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", [MIGRATION_LOCK])
        if row[0] == "p":
            await _maintain_partitions(conn, today, retention_days)
        else:
            await conn.execute("SELECT remove_retention_policy(%s, if_exists => true)", [TABLE])
            await conn.execute(
                "SELECT add_retention_policy(%s, make_interval(days => %s))",
                [TABLE, retention_days],
            )


def partition_name(day: date) -> str:
    return f"{TABLE}_p{day:%Y%m%d}"


def partitions_to_drop(names: list[str], today: date, retention_days: int) -> list[str]:
    """Partitions (by `partition_name`) holding only days older than the retention."""
    oldest_kept = today - timedelta(days=retention_days)
    prefix = f"{TABLE}_p"
    doomed = []
    for name in names:
        try:
            day = datetime.strptime(name.removeprefix(prefix), "%Y%m%d").date()
        except ValueError:
            continue  # not ours
        if name.startswith(prefix) and day < oldest_kept:
            doomed.append(name)
    return sorted(doomed)


async def _maintain_partitions(conn: AsyncConnection, today: date, retention_days: int) -> None:
    for offset in range(-PARTITION_DAYS_BEHIND, PARTITION_DAYS_AHEAD + 1):
        day = today + timedelta(days=offset)
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS {partition_name(day)} PARTITION OF {TABLE} "
            f"FOR VALUES FROM ('{day.isoformat()} 00:00+00') "
            f"TO ('{(day + timedelta(days=1)).isoformat()} 00:00+00')"
        )
    cur = await conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = to_regclass(%s)",
        [TABLE],
    )
    names = [row[0] for row in await cur.fetchall()]
    for name in partitions_to_drop(names, today, retention_days):
        await conn.execute(f"DROP TABLE {name}")
        log.info("Dropped partition %s (retention %d days)", name, retention_days)


class PredictionLog:
    def __init__(
        self,
        url: str,
        model: str,
        revision: str,
        metrics: Metrics,
        *,
        buffer_rows: int,
        batch_rows: int,
        flush_seconds: float,
        retention_days: int,
        store_features: bool,
    ) -> None:
        self._url = url
        self._model = model
        self._revision = revision
        self._metrics = metrics
        self._buffer_rows = buffer_rows
        self._batch_rows = batch_rows
        self._flush_seconds = flush_seconds
        self._retention_days = retention_days
        self._store_features = store_features
        self._records: deque[PredictionRecord] = deque()
        self._pending_rows = 0
        self._wakeup = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._conn: AsyncConnection | None = None
        self._maintained: date | None = None
        self._outage = False

    def submit(self, record: PredictionRecord) -> None:
        """Buffer `record` (O(1), never blocks); count it as dropped if it does not fit."""
        rows = len(record.predictions)
        if self._stopping.is_set():
            self._metrics.predlog_dropped("shutdown", rows)
            return
        if self._pending_rows + rows > self._buffer_rows:
            self._metrics.predlog_dropped("buffer_full", rows)
            return
        self._records.append(record)
        self._pending_rows += rows
        self._metrics.predlog_queue_depth.set(self._pending_rows)
        if self._pending_rows >= self._batch_rows:
            self._wakeup.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="prediction-log")

    async def stop(self, timeout: float = 5.0) -> None:
        """Flush what the database takes within `timeout`; count the rest as dropped."""
        self._stopping.set()
        self._wakeup.set()
        if self._task is not None:
            with contextlib.suppress(TimeoutError):  # wait_for cancels the writer
                await asyncio.wait_for(self._task, timeout)
        if self._pending_rows:
            log.warning("Prediction log: %d rows not written at shutdown", self._pending_rows)
            self._metrics.predlog_dropped("shutdown", self._pending_rows)
            self._records.clear()
            self._pending_rows = 0
            self._metrics.predlog_queue_depth.set(0)
        await self._close()

    async def _run(self) -> None:
        delay = RECONNECT_BACKOFF[0]
        rejections = 0  # of the oldest batch, for reasons other than the connection
        while not (self._stopping.is_set() and not self._records):
            try:
                conn = await self._ready_connection()
            except Exception as exc:  # down, or cannot migrate: keep buffering, try again
                await self._unavailable(exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), delay)
                if self._stopping.is_set():
                    return  # no database at shutdown: stop() counts what is left
                delay = min(delay * 2, RECONNECT_BACKOFF[1])
                continue
            delay = RECONNECT_BACKOFF[0]
            await self._wait_for_rows()
            if not self._records:
                continue
            try:
                await self._write_batch(conn)
                rejections = 0
            except Exception as exc:
                if self._is_transient(exc):
                    await self._unavailable(exc)
                    continue
                rejections += 1
                self._maintained = None  # e.g. a missing partition: maintain, then retry
                if rejections >= MAX_ATTEMPTS_PER_BATCH:
                    self._drop_batch(exc)
                    rejections = 0

    @staticmethod
    def _is_transient(exc: Exception) -> bool:
        import psycopg

        return isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError | OSError)

    async def _ready_connection(self) -> AsyncConnection:
        """A connection to a migrated database whose partitions are in place for today."""
        if self._conn is None or self._conn.closed:
            import psycopg

            self._conn = await psycopg.AsyncConnection.connect(
                self._url, autocommit=True, connect_timeout=5, application_name="forecast-server"
            )
            applied = await migrate(self._conn)
            if applied:
                log.info("Prediction log migrated versions=%s", applied)
        today = datetime.now(UTC).date()
        if self._maintained != today:
            await apply_retention(self._conn, today, self._retention_days)
            self._maintained = today
        if self._outage:
            log.info("Prediction log writing again (%d rows buffered)", self._pending_rows)
            self._outage = False
        return self._conn

    async def _unavailable(self, exc: Exception) -> None:
        if not self._outage:
            log.warning("Prediction log unavailable, buffering: %s", exc)
            self._outage = True
        await self._close()

    async def _close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
            self._conn = None

    async def _wait_for_rows(self) -> None:
        if self._pending_rows >= self._batch_rows or self._stopping.is_set():
            return
        self._wakeup.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wakeup.wait(), self._flush_seconds)

    def _batch(self) -> list[PredictionRecord]:
        """The oldest records, up to `batch_rows` rows (at least one record)."""
        batch, rows = [], 0
        for record in self._records:
            if batch and rows + len(record.predictions) > self._batch_rows:
                break
            batch.append(record)
            rows += len(record.predictions)
        return batch

    async def _write_batch(self, conn: AsyncConnection) -> None:
        batch = self._batch()
        statement = f"COPY {TABLE} ({COLUMNS}) FROM STDIN"
        async with conn.transaction(), conn.cursor().copy(statement) as copy:
            for record in batch:
                for row in self._rows(record):
                    await copy.write_row(row)
        self._release(batch)
        self._metrics.predlog_written.inc(sum(len(r.predictions) for r in batch))

    def _rows(self, record: PredictionRecord) -> list[tuple[object, ...]]:
        when = datetime.fromtimestamp(record.time, UTC)
        request_id = record.request_id or uuid.uuid4().hex
        latency_ms = record.latency_seconds * 1000.0
        features = np.ascontiguousarray(record.features, dtype=np.float32)
        keys = record.keys
        return [
            (
                when,
                self._model,
                self._revision,
                request_id,
                i,
                hashlib.blake2b(features[i].tobytes(), digest_size=16).digest(),
                features[i].tolist() if self._store_features else None,
                float(prediction),
                latency_ms,
                keys.series[i] if keys else None,
                keys.targets[i] if keys else None,
            )
            for i, prediction in enumerate(record.predictions)
        ]

    def _release(self, batch: list[PredictionRecord]) -> None:
        for _ in batch:
            self._records.popleft()
        self._pending_rows -= sum(len(r.predictions) for r in batch)
        self._metrics.predlog_queue_depth.set(self._pending_rows)

    def _drop_batch(self, exc: Exception) -> None:
        batch = self._batch()
        rows = sum(len(r.predictions) for r in batch)
        log.error("Prediction log rejected %d rows, dropping them: %s", rows, exc)
        self._release(batch)
        self._metrics.predlog_dropped("rejected", rows)
