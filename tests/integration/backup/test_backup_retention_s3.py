"""Retention on the real S3 server: only expired backups go, the newest complete one stays."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from backup_support import NAME, PREFIX, Destination, run_cli, write_predictions
from forecastops.backup.backup import prune, run_backup
from forecastops.backup.catalog import read_catalog
from forecastops.backup.layout import format_backup_id
from forecastops.backup.progress import Reporter
from forecastops.backup.storage import ObjectStore

pytestmark = pytest.mark.services

DAY = timedelta(days=1)


@pytest.fixture
def predictions(predlog_db: str) -> str:
    """The prediction-log database, with 500 predictions to back up."""
    write_predictions(predlog_db, 500)
    return predlog_db


def _backup_at(destination: Destination, url: str, when: datetime) -> str:
    config = destination.backup_config(url, prune=False)
    return run_backup(config, clock=lambda: when).manifest.backup_id


def _incomplete_at(destination: Destination, when: datetime) -> str:
    """What a backup killed at `when` leaves: a model file, no dump, no manifest."""
    backup_id = format_backup_id(when)
    key = f"{PREFIX}{NAME}/{backup_id}/artifacts/stable/model.onnx"
    destination.s3.client().put_object(Bucket=destination.bucket, Key=key, Body=b"onnx")
    return backup_id


def _prune_week(store: ObjectStore, now: datetime) -> tuple[str, ...]:
    """Apply a 7-day retention to the model's backups as of `now`; the ids deleted."""
    return prune(store, prefix=PREFIX, name=NAME, retention_days=7, now=now, reporter=Reporter())


def _backup_ids(destination: Destination) -> set[str]:
    return {entry.backup_id for entry in read_catalog(destination.store(), PREFIX, NAME)}


def test_retention_deletes_only_expired_backups(destination: Destination, predictions: str) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    expired = {
        _backup_at(destination, predictions, now - 10 * DAY),
        _backup_at(destination, predictions, now - 7 * DAY - timedelta(minutes=1)),
        _incomplete_at(destination, now - 9 * DAY),
    }
    kept = {
        _backup_at(destination, predictions, now - 6 * DAY),
        _backup_at(destination, predictions, now - timedelta(hours=1)),
        _incomplete_at(destination, now - timedelta(hours=2)),  # maybe still running: kept
    }
    # Objects of another model, and unrelated keys, under the same prefix: never touched
    client = destination.s3.client()
    others = [f"{PREFIX}{NAME}-eu/{format_backup_id(now - 30 * DAY)}/manifest.json",
              f"{PREFIX}{NAME}/README.txt", f"{PREFIX}{NAME}/not-a-backup/x"]  # fmt: skip
    for key in others:
        client.put_object(Bucket=destination.bucket, Key=key, Body=b"x")

    deleted = _prune_week(destination.store(), now)

    assert set(deleted) == expired
    assert _backup_ids(destination) == kept
    assert set(others) <= set(destination.objects())


def test_the_newest_complete_backup_survives_any_retention(
    destination: Destination, predictions: str
) -> None:
    now = datetime.now(UTC)
    older = _backup_at(destination, predictions, now - 40 * DAY)
    newest = _backup_at(destination, predictions, now - 30 * DAY)
    stale = _incomplete_at(destination, now - 20 * DAY)  # newer, but incomplete

    deleted = _prune_week(destination.store(), now)

    assert set(deleted) == {older, stale}
    assert _backup_ids(destination) == {newest}


def test_a_backup_applies_retention_after_it_completes(
    destination: Destination, predictions: str
) -> None:
    now = datetime.now(UTC)
    old = _backup_at(destination, predictions, now - 9 * DAY)
    recent = _backup_at(destination, predictions, now - 2 * DAY)
    env = destination.env(
        FORECASTOPS_BACKUP_DATABASE_URL=predictions, FORECASTOPS_BACKUP_RETENTION_DAYS="7"
    )

    dry = run_cli("prune", "--dry-run", env=env)
    assert dry.returncode == 0 and f"Would delete backup {old}" in dry.stderr
    assert old in _backup_ids(destination)

    result = run_cli("backup", env=env)

    assert result.returncode == 0, result.stderr
    ids = _backup_ids(destination)
    assert old not in ids and recent in ids and len(ids) == 2


def test_unfinished_uploads_older_than_retention_are_aborted(destination: Destination) -> None:
    client = destination.s3.client()
    key = f"{PREFIX}{NAME}/{format_backup_id(datetime.now(UTC))}/database.dump"
    client.create_multipart_upload(Bucket=destination.bucket, Key=key)
    store = destination.store()

    _prune_week(store, datetime.now(UTC))
    assert client.list_multipart_uploads(Bucket=destination.bucket).get("Uploads")

    later = datetime.now(UTC) + 8 * DAY  # the upload's backup is now past retention
    _prune_week(store, later)
    assert not client.list_multipart_uploads(Bucket=destination.bucket).get("Uploads")
