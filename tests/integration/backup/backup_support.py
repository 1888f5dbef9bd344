"""Helpers for backup tests: a migrated prediction log, rows in it, a destination bucket.

The prediction log is created by the model server's own migrations
(`model_server.predlog.migrate` and its daily partitions), so the backups are tested on
exactly the schema production has.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass

import psycopg
from forecastops.backup.settings import (
    ArtifactRef,
    BackupConfig,
    RestoreConfig,
    SourceConfig,
    StoreConfig,
)
from forecastops.backup.storage import ObjectStore
from pydantic import SecretStr

from devenv.services import S3
from model_server import predlog

NAME = "store-demand"
PREFIX = "backups/"


def write_predictions(url: str, rows: int, *, features: bool = True, start: int = 0) -> None:
    """`rows` prediction rows over the last day (random features compress like real ones)."""
    features_sql = "array[random(),random(),random(),random(),random(),random()]::real[]"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            f"""
            INSERT INTO {predlog.TABLE} ({predlog.COLUMNS})
            SELECT now() - random() * interval '20 hours', %(model)s, 'rev-' || (i %% 2),
                   'req-' || i, i %% 4, decode(md5(i::text), 'hex'),
                   {features_sql if features else "NULL"}, random() * 100, random() * 20,
                   'series-' || (i %% 50), date_trunc('day', now()) + (i %% 28) * interval '1 day'
            FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS i
            """,
            {"model": NAME, "first": start + 1, "last": start + rows},
        )


def row_count(url: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute(f"SELECT count(*) FROM {predlog.TABLE}").fetchone()[0]


def table_checksum(url: str) -> str:
    """md5 over every row's text, in a total order: equal checksums, equal content."""
    with psycopg.connect(url) as conn:
        return conn.execute(
            f"SELECT md5(coalesce(string_agg(t::text, E'\\n' ORDER BY request_id, row_index), ''))"
            f" FROM {predlog.TABLE} AS t"
        ).fetchone()[0]


def run_cli(
    *args: str, env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`python -m forecastops.backup ARGS` in a child process with exactly `env` added."""
    return subprocess.run(
        [sys.executable, "-m", "forecastops.backup", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@dataclass
class Destination:
    """A fresh bucket on the real S3 server, and configs for it."""

    s3: S3
    bucket: str

    def store_config(self, **changes: object) -> StoreConfig:
        config = StoreConfig(
            bucket=self.bucket,
            prefix=PREFIX,
            endpoint=self.s3.endpoint_url,
            region=self.s3.region,
            access_key_id=SecretStr(self.s3.access_key),
            secret_access_key=SecretStr(self.s3.secret_key),
            max_attempts=2,
        )
        return StoreConfig(**{**config.__dict__, **changes})

    def store(self) -> ObjectStore:
        return ObjectStore(self.store_config())

    def objects(self) -> dict[str, int]:
        return self.store().list_sizes("")

    def env(self, **extra: str) -> dict[str, str]:
        """What the backup CronJob sets, for the CLI."""
        return {
            "FORECASTOPS_BACKUP_NAME": NAME,
            "FORECASTOPS_BACKUP_BUCKET": self.bucket,
            "FORECASTOPS_BACKUP_PREFIX": PREFIX,
            "FORECASTOPS_BACKUP_ENDPOINT": self.s3.endpoint_url,
            "FORECASTOPS_BACKUP_REGION": self.s3.region,
            "AWS_ACCESS_KEY_ID": self.s3.access_key,
            "AWS_SECRET_ACCESS_KEY": self.s3.secret_key,
            **extra,
        }

    def backup_config(
        self, database_url: str, *, artifacts: tuple[ArtifactRef, ...] = (), **changes: object
    ) -> BackupConfig:
        return BackupConfig(
            name=NAME,
            store=self.store_config(),
            source=SourceConfig(database_url=SecretStr(database_url)),
            artifacts=artifacts,
            model_store=self.store_config(bucket=""),
            **changes,  # type: ignore[arg-type]
        )

    def restore_config(self, target_url: str | None, **changes: object) -> RestoreConfig:
        return RestoreConfig(
            name=NAME,
            store=self.store_config(),
            target_url=SecretStr(target_url) if target_url else None,
            **changes,  # type: ignore[arg-type]
        )
