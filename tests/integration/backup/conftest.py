"""Fixtures for backup tests; the helpers they use are in backup_support."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from backup_support import Destination

from devenv.predlog import migrate_prediction_log
from devenv.services import S3, Postgres


@pytest.fixture
def destination(s3: S3, s3_bucket: str) -> Destination:
    return Destination(s3, s3_bucket)


@pytest.fixture
def predlog_db(pg_database: str) -> str:
    """A fresh database holding the model server's (empty) prediction log."""
    migrate_prediction_log(pg_database)
    return pg_database


@pytest.fixture
def fresh_database(postgres: Postgres) -> Iterator[Callable[[], str]]:
    """Make more empty databases in one test; all are dropped afterwards."""
    made: list[str] = []

    def make() -> str:
        name = f"fresh_{uuid.uuid4().hex[:12]}"
        made.append(name)
        return postgres.ensure_running().create_database(name)

    yield make
    for name in made:
        postgres.ensure_running().drop_database(name)


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    path = tmp_path / "model.onnx"
    path.write_bytes(os.urandom(300_000))
    return path
