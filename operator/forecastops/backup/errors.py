"""One error hierarchy for backups and restores; each kind of failure has its own exit code.

| code | meaning                                                                  |
|------|--------------------------------------------------------------------------|
| 0    | success                                                                  |
| 1    | an unexpected error (a bug): the traceback is printed                    |
| 2    | usage: a bad flag, a missing setting, a malformed URI                    |
| 3    | credentials or access denied (object store or database)                  |
| 4    | database error: the source or target database, pg_dump or pg_restore     |
| 5    | storage error: the object store cannot be reached, or a read/write failed|
| 6    | verification failed: a checksum, a size or a row count does not match    |
| 7    | refused: the backup is incomplete (no valid manifest) or does not exist  |
| 130  | interrupted (Ctrl-C / SIGINT)                                            |
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    INTERNAL = 1
    USAGE = 2
    ACCESS_DENIED = 3
    DATABASE = 4
    STORAGE = 5
    VERIFICATION = 6
    INCOMPLETE = 7
    INTERRUPTED = 130


class BackupError(Exception):
    """A failure we understand: its message is for a person, its `exit_code` for a script."""

    exit_code = ExitCode.INTERNAL


class UsageError(BackupError):
    exit_code = ExitCode.USAGE


class AccessDenied(BackupError):
    exit_code = ExitCode.ACCESS_DENIED


class DatabaseError(BackupError):
    exit_code = ExitCode.DATABASE


class StorageError(BackupError):
    exit_code = ExitCode.STORAGE


class VerificationFailed(BackupError):
    exit_code = ExitCode.VERIFICATION


class BackupIncomplete(BackupError):
    """The backup has no valid manifest (killed midway, still running, or damaged)."""

    exit_code = ExitCode.INCOMPLETE


class BackupNotFound(BackupError):
    exit_code = ExitCode.INCOMPLETE


def exit_code_for(exc: BaseException) -> ExitCode:
    """The process exit code for an exception that ended a command."""
    if isinstance(exc, BackupError):
        return exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        return ExitCode.INTERRUPTED
    return ExitCode.INTERNAL
