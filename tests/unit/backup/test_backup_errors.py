"""Exit codes, and how S3 and PostgreSQL failures are classified."""

from __future__ import annotations

import pytest
from forecastops.backup.database import classify_failure
from forecastops.backup.errors import (
    AccessDenied,
    BackupError,
    BackupIncomplete,
    BackupNotFound,
    DatabaseError,
    ExitCode,
    StorageError,
    UsageError,
    VerificationFailed,
    exit_code_for,
)
from forecastops.backup.storage import classify_error


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (UsageError("x"), 2),
        (AccessDenied("x"), 3),
        (DatabaseError("x"), 4),
        (StorageError("x"), 5),
        (VerificationFailed("x"), 6),
        (BackupIncomplete("x"), 7),
        (BackupNotFound("x"), 7),
        (BackupError("x"), 1),
        (KeyboardInterrupt(), 130),
        (RuntimeError("bug"), 1),
        (ValueError("bug"), 1),
    ],
)
def test_exit_code_for(exc: BaseException, code: int) -> None:
    assert exit_code_for(exc) == code


def test_exit_codes_are_distinct() -> None:
    values = [code.value for code in ExitCode]
    assert len(values) == len(set(values))


@pytest.mark.parametrize(
    ("code", "status", "kind"),
    [
        ("AccessDenied", 403, AccessDenied),
        ("InvalidAccessKeyId", 403, AccessDenied),
        ("SignatureDoesNotMatch", 403, AccessDenied),
        ("ExpiredToken", 400, AccessDenied),
        ("403", None, AccessDenied),  # HEAD answers carry only the status as the code
        ("", 403, AccessDenied),
        ("NoSuchBucket", 404, StorageError),
        ("404", 404, StorageError),
        ("SlowDown", 503, StorageError),
        ("InternalError", 500, StorageError),
        ("EntityTooSmall", 400, StorageError),
    ],
)
def test_classify_s3_errors(code: str, status: int | None, kind: type[BackupError]) -> None:
    assert classify_error(code, status) is kind


@pytest.mark.parametrize(
    ("sqlstate", "message", "kind"),
    [
        ("28P01", "", AccessDenied),
        ("28000", "", AccessDenied),
        ("42501", "permission denied for table prediction_log", AccessDenied),
        (None, 'FATAL:  password authentication failed for user "x"', AccessDenied),
        (None, 'FATAL:  role "nobody" does not exist', AccessDenied),
        (None, "fe_sendauth: no password supplied", AccessDenied),
        (None, "FATAL:  no pg_hba.conf entry for host", AccessDenied),
        (None, "connection refused", DatabaseError),
        ("57P01", "terminating connection due to administrator command", DatabaseError),
        (None, 'pg_dump: error: query failed: ERROR:  relation "x" does not exist', DatabaseError),
    ],
)
def test_classify_database_failures(sqlstate: str | None, message: str, kind: type) -> None:
    assert classify_failure(sqlstate, message) is kind
