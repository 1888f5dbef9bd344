"""A prediction-log database made the way a starting model server makes it."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime

import psycopg

from model_server import predlog


def migrate_prediction_log(url: str, *, old_partitions: tuple[date, ...] = ()) -> None:
    """The model server's migrations and its partitions around today, as a starting pod
    applies them; plus a partition for each of `old_partitions` (days a previous
    revision's pods wrote, before a retention drops them)."""

    async def run() -> None:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            await predlog.migrate(conn)
            await predlog.apply_retention(conn, datetime.now(UTC).date(), 30)
            for day in old_partitions:
                await conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {predlog.partition_name(day)} "
                    f"PARTITION OF {predlog.TABLE} FOR VALUES FROM ('{day} 00:00+00') "
                    f"TO ('{date.fromordinal(day.toordinal() + 1)} 00:00+00')"
                )

    asyncio.run(run())
