"""Failures: a killed backup, wrong keys, a damaged dump, an unreachable database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from backup_support import (
    NAME,
    PREFIX,
    Destination,
    row_count,
    run_cli,
    table_checksum,
    write_predictions,
)
from forecastops.backup.backup import run_backup
from forecastops.backup.errors import ExitCode, VerificationFailed
from forecastops.backup.layout import DUMP, MANIFEST
from forecastops.backup.restore import run_restore

pytestmark = pytest.mark.services


def test_a_backup_killed_midway_leaves_no_manifest_and_restore_refuses_it(
    destination: Destination, predlog_db: str, model_file: Path
) -> None:
    # Given a prediction log whose dump is several upload parts long, uploaded slowly
    write_predictions(predlog_db, 100_000)
    env = destination.env(FORECASTOPS_BACKUP_DATABASE_URL=predlog_db)
    backup = subprocess.Popen(
        [sys.executable, "-m", "forecastops.backup", "backup", "--part-size-mib", "5",
         "--max-upload-rate", str(2 * 1024 * 1024),
         "--stable-model-uri", model_file.as_uri()],
        env={**os.environ, **env},
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    # When it is killed (SIGKILL: no cleanup at all) while the dump is being uploaded
    assert backup.stderr is not None
    for line in backup.stderr:
        if line.startswith("Snapshot "):
            break
    uploads = _wait_for_multipart_upload(destination)
    backup.send_signal(signal.SIGKILL)
    backup.wait(timeout=30)
    assert backup.returncode == -signal.SIGKILL
    assert uploads, "the kill should land while the dump is being uploaded"

    # Then the backup has its model file but no dump and no manifest: it is incomplete
    objects = destination.objects()
    [backup_id] = {key.removeprefix(f"{PREFIX}{NAME}/").split("/")[0] for key in objects}
    assert any(key.endswith("artifacts/stable/model.onnx") for key in objects)
    assert not any(key.endswith((MANIFEST, DUMP)) for key in objects)
    listing = run_cli("list", "--json", env=env)
    assert listing.returncode == 0, listing.stderr
    assert '"status": "incomplete"' in listing.stdout

    # and restore refuses it, by id and as "latest", with a clear message and exit 7
    for wanted in (backup_id, "latest"):
        refused = run_cli("restore", "--backup", wanted, "--target-url", predlog_db, env=env)
        assert refused.returncode == ExitCode.INCOMPLETE, refused.stderr
        assert "no complete backup" in refused.stderr or "refusing backup" in refused.stderr
    assert (
        "did not finish"
        in run_cli("restore", "--backup", backup_id, "--verify-only", env=env).stderr
    )
    assert row_count(predlog_db) == 100_000


def _wait_for_multipart_upload(destination: Destination, timeout: float = 30) -> list[str]:
    """Keys with an upload in progress, once there is one."""
    client = destination.s3.client()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        uploads = client.list_multipart_uploads(Bucket=destination.bucket).get("Uploads") or []
        if uploads:
            return [upload["Key"] for upload in uploads]
        time.sleep(0.1)
    return []


def test_wrong_credentials_give_a_clear_error_and_delete_nothing(
    destination: Destination, predlog_db: str
) -> None:
    # Given two backups, one of them long expired
    write_predictions(predlog_db, 1_000)
    now = datetime.now(UTC)
    for when in (now - timedelta(days=30), now - timedelta(days=1)):
        run_backup(destination.backup_config(predlog_db, prune=False), clock=lambda w=when: w)
    before = destination.objects()
    env = destination.env(
        FORECASTOPS_BACKUP_DATABASE_URL=predlog_db,
        AWS_SECRET_ACCESS_KEY="not-the-secret",
        FORECASTOPS_BACKUP_RETENTION_DAYS="1",
    )

    # When every command runs with a wrong secret key
    results = {
        "backup": run_cli("backup", env=env),
        "prune": run_cli("prune", env=env),
        "list": run_cli("list", env=env),
        "restore": run_cli("restore", "--target-url", predlog_db, env=env),
        "verify": run_cli("restore", "--verify-only", env=env),
    }

    # Then each exits 3 and says so plainly, and every object is still there
    for command, result in results.items():
        assert result.returncode == ExitCode.ACCESS_DENIED, (command, result.stderr)
        assert "access denied" in result.stderr, (command, result.stderr)
        assert "Traceback" not in result.stderr
    assert destination.objects() == before

    # Unknown access key: the same
    unknown = run_cli("prune", env={**env, "AWS_ACCESS_KEY_ID": "AKNOBODY"})
    assert unknown.returncode == ExitCode.ACCESS_DENIED
    assert destination.objects() == before


def test_a_damaged_dump_is_refused_and_the_target_left_as_it_was(
    destination: Destination, predlog_db: str
) -> None:
    write_predictions(predlog_db, 20_000)
    manifest = run_backup(destination.backup_config(predlog_db)).manifest
    dump_key = f"{PREFIX}{NAME}/{manifest.backup_id}/{DUMP}"
    client = destination.s3.client()
    dump = bytearray(client.get_object(Bucket=destination.bucket, Key=dump_key)["Body"].read())
    dump[len(dump) // 2] ^= 0xFF  # one flipped byte, same size
    client.put_object(Bucket=destination.bucket, Key=dump_key, Body=bytes(dump))
    write_predictions(predlog_db, 500, start=20_000)  # the target differs from the backup
    checksum = table_checksum(predlog_db)

    with pytest.raises(VerificationFailed, match="nothing was restored"):
        run_restore(destination.restore_config(predlog_db))
    assert row_count(predlog_db) == 20_500
    assert table_checksum(predlog_db) == checksum

    verify = run_cli("restore", "--verify-only", env=destination.env())
    assert verify.returncode == ExitCode.VERIFICATION
    assert "sha256" in verify.stderr


def test_verify_only_checks_without_a_database(destination: Destination, predlog_db: str) -> None:
    write_predictions(predlog_db, 2_000)
    run_backup(destination.backup_config(predlog_db))
    result = run_cli("restore", "--verify-only", env=destination.env())
    assert result.returncode == 0, result.stderr
    assert "verified" in result.stderr


def test_a_missing_manifest_object_makes_the_backup_damaged(
    destination: Destination, predlog_db: str
) -> None:
    write_predictions(predlog_db, 2_000)
    manifest = run_backup(destination.backup_config(predlog_db)).manifest
    destination.s3.client().delete_object(
        Bucket=destination.bucket, Key=f"{PREFIX}{NAME}/{manifest.backup_id}/{DUMP}"
    )
    result = run_cli(
        "restore", "--backup", manifest.backup_id, "--verify-only", env=destination.env()
    )
    assert result.returncode == ExitCode.INCOMPLETE
    assert "damaged" in result.stderr and "database.dump is missing" in result.stderr


def test_an_unreachable_database_fails_before_anything_is_written(
    destination: Destination, model_file: Path
) -> None:
    env = destination.env(FORECASTOPS_BACKUP_DATABASE_URL="postgresql://nobody@127.0.0.1:1/none")
    result = run_cli("backup", "--stable-model-uri", model_file.as_uri(), env=env)
    assert result.returncode == ExitCode.DATABASE, result.stderr
    assert "cannot connect to the database" in result.stderr
    assert destination.objects() == {}


def test_usage_errors_exit_2(destination: Destination) -> None:
    env = {
        key: value for key, value in destination.env().items() if key != "FORECASTOPS_BACKUP_BUCKET"
    }
    missing_bucket = run_cli("list", env={**env, "FORECASTOPS_BACKUP_BUCKET": ""})
    assert missing_bucket.returncode == ExitCode.USAGE
    no_target = run_cli("restore", env=destination.env())
    assert no_target.returncode == ExitCode.USAGE
    assert "--target-url" in no_target.stderr


def test_sigterm_stops_a_backup_cleanly(destination: Destination, predlog_db: str) -> None:
    """Kubernetes stops a Job with SIGTERM: the upload is aborted, pg_dump ends, exit 130."""
    write_predictions(predlog_db, 100_000)
    env = destination.env(FORECASTOPS_BACKUP_DATABASE_URL=predlog_db)
    backup = subprocess.Popen(
        [sys.executable, "-m", "forecastops.backup", "backup", "--part-size-mib", "5",
         "--max-upload-rate", str(2 * 1024 * 1024)],
        env={**os.environ, **env},
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert _wait_for_multipart_upload(destination)
    backup.send_signal(signal.SIGTERM)
    _, stderr = backup.communicate(timeout=60)

    assert backup.returncode == ExitCode.INTERRUPTED, stderr
    assert "stopped by signal SIGTERM" in stderr
    client = destination.s3.client()
    assert not client.list_multipart_uploads(Bucket=destination.bucket).get("Uploads")
    assert destination.objects() == {}
