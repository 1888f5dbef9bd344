"""Backup -> damage -> restore on the real PostgreSQL and the real S3 server (SeaweedFS)."""

from __future__ import annotations

import asyncio
import hashlib
import http.server
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from functools import partial
from pathlib import Path

import psycopg
import pytest
from backup_support import (
    NAME,
    Destination,
    row_count,
    table_checksum,
    write_predictions,
)
from forecastops.backup.backup import run_backup
from forecastops.backup.catalog import read_catalog
from forecastops.backup.errors import VerificationFailed
from forecastops.backup.layout import MANIFEST
from forecastops.backup.restore import run_restore
from forecastops.backup.settings import PREDICTION_LOG_TABLES, ArtifactRef

from model_server import predlog

pytestmark = pytest.mark.services

ROWS = 20_000

DAMAGE = {
    "delete rows": f"DELETE FROM {predlog.TABLE} WHERE row_index < 2",
    "drop table": f"DROP TABLE {predlog.TABLE}",
    "truncate": f"TRUNCATE {predlog.TABLE}",
    "change values": f"UPDATE {predlog.TABLE} SET prediction = -1 WHERE row_index = 3",
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_restore_undoes_damage(destination: Destination, predlog_db: str, damage: str) -> None:
    # Given N predictions, backed up
    write_predictions(predlog_db, ROWS)
    checksum = table_checksum(predlog_db)
    result = run_backup(destination.backup_config(predlog_db))
    assert (
        sum(v for k, v in result.manifest.database.row_counts.items() if "prediction_log" in k)
        == ROWS
    )

    # When the data is damaged, then restored
    with psycopg.connect(predlog_db, autocommit=True) as conn:
        conn.execute(DAMAGE[damage])
    restored = run_restore(destination.restore_config(predlog_db))

    # Then every row is back, with the same content
    assert restored.backup_id == result.manifest.backup_id
    assert row_count(predlog_db) == ROWS
    assert table_checksum(predlog_db) == checksum


def test_restore_into_a_fresh_database(
    destination: Destination, predlog_db: str, fresh_database: Callable[[], str]
) -> None:
    write_predictions(predlog_db, ROWS)
    run_backup(destination.backup_config(predlog_db))
    target = fresh_database()

    run_restore(destination.restore_config(target))

    assert row_count(target) == ROWS
    assert table_checksum(target) == table_checksum(predlog_db)
    # The migrations table came along: a model server pointed at the restored database
    # migrates nothing and writes into the restored partitions.
    assert asyncio.run(_migrate(target)) == []
    write_predictions(target, 10, start=ROWS)
    assert row_count(target) == ROWS + 10


async def _migrate(url: str) -> list[int]:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        return await predlog.migrate(conn)


def test_row_counts_are_those_of_the_dump_while_the_server_writes(
    destination: Destination, predlog_db: str, fresh_database: Callable[[], str]
) -> None:
    """Counts and dump come from one snapshot, however many rows arrive during the backup."""
    write_predictions(predlog_db, ROWS)
    stop = threading.Event()
    writer = threading.Thread(target=_keep_writing, args=(predlog_db, stop), daemon=True)
    writer.start()
    try:
        # throttled, so that the dump takes a while and rows arrive meanwhile
        config = destination.backup_config(predlog_db)
        slow = replace(config, store=replace(config.store, max_bytes_per_second=400_000))
        manifest = run_backup(slow).manifest
    finally:
        stop.set()
        writer.join(timeout=30)
    backed_up = manifest.total_rows - manifest.database.row_counts["public.schema_migrations"]
    assert row_count(predlog_db) > backed_up > ROWS  # rows arrived before and after the snapshot

    target = fresh_database()
    run_restore(destination.restore_config(target))  # checks every table's count itself
    assert row_count(target) == backed_up


def _keep_writing(url: str, stop: threading.Event) -> None:
    start = 1_000_000
    while not stop.is_set():
        write_predictions(url, 200, start=start)
        start += 200


def test_default_tables_are_the_model_servers_prediction_log() -> None:
    assert predlog.TABLE in PREDICTION_LOG_TABLES
    assert "schema_migrations" in PREDICTION_LOG_TABLES


# --- model files ----------------------------------------------------------------------------


@pytest.fixture
def http_models(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A plain HTTP server on 127.0.0.1 serving `tmp_path/http`."""
    root = tmp_path / "http"
    root.mkdir()
    handler = partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root
    server.shutdown()
    server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def test_model_files_from_s3_and_http_are_copied_and_verified(
    destination: Destination,
    predlog_db: str,
    model_file: Path,
    http_models: tuple[str, Path],
    tmp_path: Path,
) -> None:
    # Given a stable model in an S3 bucket and a canary model on an HTTP server
    stable = model_file.read_bytes()
    models_bucket = destination.s3.create_bucket(f"{destination.bucket}-models")
    destination.s3.client().put_object(Bucket=models_bucket, Key="v7/model.onnx", Body=stable)
    base, root = http_models
    canary = stable[::-1] + b"canary"
    (root / "model-v8.onnx").write_bytes(canary)
    artifacts = (
        ArtifactRef("stable", f"s3://{models_bucket}/v7/model.onnx", _sha256(stable)),
        ArtifactRef("canary", f"{base}/model-v8.onnx", _sha256(canary)),
    )

    # When backed up and restored with --artifacts-dir
    manifest = run_backup(destination.backup_config(predlog_db, artifacts=artifacts)).manifest
    restored = run_restore(
        destination.restore_config(None, verify_only=True, artifacts_dir=tmp_path / "restored")
    )

    # Then the manifest records both, and the restored files are the originals
    assert [(a.role, a.sha256, a.size) for a in manifest.artifacts] == [
        ("stable", _sha256(stable), len(stable)),
        ("canary", _sha256(canary), len(canary)),
    ]
    assert [p.read_bytes() for p in restored.artifacts if p] == [stable, canary]
    assert {p.name for p in restored.artifacts if p} == {"model.onnx", "model-v8.onnx"}


def test_a_model_with_the_wrong_sha256_leaves_the_backup_incomplete(
    destination: Destination, predlog_db: str, model_file: Path
) -> None:
    wrong = ArtifactRef("stable", model_file.as_uri(), "0" * 64)
    with pytest.raises(VerificationFailed, match="sha256"):
        run_backup(destination.backup_config(predlog_db, artifacts=(wrong,)))
    assert not any(key.endswith(MANIFEST) for key in destination.objects())
    [entry] = read_catalog(destination.store(), "backups/", NAME)
    assert entry.status == "incomplete"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
