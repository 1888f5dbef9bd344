"""``backup``, ``restore``, ``list`` and ``prune``: the command line of backups.

    python -m forecastops.backup backup  [--name N --bucket B ...]   # what the CronJob runs
    python -m forecastops.backup restore --target-url URL [--backup ID|latest] [--verify-only]
    python -m forecastops.backup list    [--json]
    python -m forecastops.backup prune   [--retention-days 7] [--dry-run]

Every flag has an environment variable (see `forecastops.backup.settings`); flags win.
Messages and progress go to stderr; `list` writes its table (or JSON) to stdout.
Exit codes: see `forecastops.backup.errors` (0 ok, 2 usage, 3 access denied, 4 database,
5 storage, 6 verification failed, 7 backup incomplete or not found).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from rich.console import Console
from rich.table import Table

from forecastops.backup.backup import prune, run_backup, utc_now
from forecastops.backup.catalog import LATEST, CatalogEntry
from forecastops.backup.errors import BackupError, ExitCode
from forecastops.backup.progress import Reporter, human_bytes
from forecastops.backup.restore import list_backups, run_restore
from forecastops.backup.settings import BackupSettings, load_settings
from forecastops.backup.storage import ObjectStore

Handler = Callable[[argparse.Namespace, Reporter], int]


class Terminated(BackupError):
    exit_code = ExitCode.INTERRUPTED


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; the process exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else ExitCode.USAGE
    reporter = Reporter(quiet=args.quiet)
    try:
        with _sigterm_interrupts():
            return int(args.handler(args, reporter))
    except BackupError as exc:
        reporter.error(str(exc))
        return int(exc.exit_code)
    except KeyboardInterrupt:
        reporter.error("interrupted; no manifest was written for an unfinished backup")
        return int(ExitCode.INTERRUPTED)


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    where = common.add_argument_group("destination (env FORECASTOPS_BACKUP_*, AWS_*)")
    where.add_argument("--name", help="the ForecastModel's name [FORECASTOPS_BACKUP_NAME]")
    where.add_argument("--bucket", help="[FORECASTOPS_BACKUP_BUCKET]")
    where.add_argument("--prefix", help="key prefix [FORECASTOPS_BACKUP_PREFIX]")
    where.add_argument(
        "--endpoint", help="S3-compatible endpoint URL [FORECASTOPS_BACKUP_ENDPOINT]"
    )
    where.add_argument("--region", help="[FORECASTOPS_BACKUP_REGION]")
    common.add_argument("--pg-bindir", type=Path, help="directory of pg_dump/pg_restore")
    common.add_argument("-q", "--quiet", action="store_true", help="errors and warnings only")

    parser = argparse.ArgumentParser(
        prog="forecastctl backup",
        description="Back up and restore a ForecastModel's prediction log and model files.",
        epilog="exit codes: 0 ok, 2 usage, 3 access denied, 4 database, 5 storage, "
        "6 verification failed, 7 backup incomplete or not found",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_backup(commands, common)
    _add_restore(commands, common)
    _add_list(commands, common)
    _add_prune(commands, common)
    return parser


def _add_backup(commands: Any, common: argparse.ArgumentParser) -> None:
    cmd = commands.add_parser(
        "backup", parents=[common], help="take a backup, then apply retention"
    )
    cmd.add_argument("--database-url", help="[FORECASTOPS_BACKUP_DATABASE_URL]; prefer the env var")
    cmd.add_argument("--tables", help="comma-separated root tables [FORECASTOPS_BACKUP_TABLES]")
    cmd.add_argument("--retention-days", type=int, help="[FORECASTOPS_BACKUP_RETENTION_DAYS]")
    cmd.add_argument("--no-prune", action="store_true", help="skip retention")
    for role in ("stable", "canary"):
        cmd.add_argument(
            f"--{role}-model-uri", help=f"file://, s3:// or https:// of the {role} model"
        )
        cmd.add_argument(f"--{role}-model-sha256", help=f"expected sha256 of the {role} model")
    cmd.add_argument("--model-s3-endpoint", help="endpoint for s3:// models")
    cmd.add_argument("--compress-level", type=int, help="pg_dump --compress (0-9, default 6)")
    cmd.add_argument("--part-size-mib", type=int, help="multipart part size (default 16)")
    cmd.add_argument(
        "--max-upload-rate",
        type=int,
        dest="max_upload_bytes_per_second",
        metavar="BYTES_PER_SECOND",
        help="throttle uploads",
    )
    cmd.set_defaults(handler=_backup)


def _add_restore(commands: Any, common: argparse.ArgumentParser) -> None:
    cmd = commands.add_parser("restore", parents=[common], help="restore (or verify) a backup")
    cmd.add_argument("--backup", default=LATEST, help="backup id, or 'latest' complete (default)")
    cmd.add_argument(
        "--target-url", help="database to restore into [FORECASTOPS_RESTORE_TARGET_URL]"
    )
    cmd.add_argument(
        "--verify-only", action="store_true", help="check checksums and the dump; write nothing"
    )
    cmd.add_argument("--artifacts-dir", type=Path, help="keep the verified model files here")
    cmd.add_argument(
        "--no-privileges", action="store_true", help="skip GRANTs (roles missing in the target)"
    )
    cmd.set_defaults(handler=_restore)


def _add_list(commands: Any, common: argparse.ArgumentParser) -> None:
    cmd = commands.add_parser(
        "list", parents=[common], help="list backups and whether each is complete"
    )
    cmd.add_argument("--json", action="store_true", help="machine-readable output")
    cmd.set_defaults(handler=_list)


def _add_prune(commands: Any, common: argparse.ArgumentParser) -> None:
    cmd = commands.add_parser("prune", parents=[common], help="apply retention only")
    cmd.add_argument("--retention-days", type=int, help="[FORECASTOPS_BACKUP_RETENTION_DAYS]")
    cmd.add_argument("--dry-run", action="store_true", help="show what would be deleted")
    cmd.set_defaults(handler=_prune)


# --- handlers ------------------------------------------------------------------------------

_SETTING_FLAGS = (
    "name", "bucket", "prefix", "endpoint", "region", "pg_bindir", "database_url", "tables",
    "retention_days", "stable_model_uri", "stable_model_sha256", "canary_model_uri",
    "canary_model_sha256", "model_s3_endpoint", "compress_level", "part_size_mib",
    "max_upload_bytes_per_second", "target_url",
)  # fmt: skip


def _settings(args: argparse.Namespace) -> BackupSettings:
    return load_settings(**{flag: getattr(args, flag, None) for flag in _SETTING_FLAGS})


def _backup(args: argparse.Namespace, reporter: Reporter) -> int:
    config = _settings(args).backup_config(prune=not args.no_prune)
    run_backup(config, reporter=reporter)
    return ExitCode.OK


def _restore(args: argparse.Namespace, reporter: Reporter) -> int:
    config = _settings(args).restore_config(
        backup_id=args.backup,
        verify_only=args.verify_only,
        artifacts_dir=args.artifacts_dir,
        privileges=not args.no_privileges,
    )
    run_restore(config, reporter=reporter)
    return ExitCode.OK


def _list(args: argparse.Namespace, reporter: Reporter) -> int:
    settings = _settings(args)
    entries = list_backups(settings.store(), settings.model_name())
    out = Console(highlight=False, soft_wrap=True)
    if args.json:
        out.print_json(json.dumps([catalog_row(e) for e in entries]))
    else:
        out.print(_table(entries, utc_now()))
    return ExitCode.OK


def _prune(args: argparse.Namespace, reporter: Reporter) -> int:
    settings = _settings(args)
    store_config = settings.store()
    store = ObjectStore(store_config)
    store.check_access()
    prune(
        store,
        prefix=store_config.prefix,
        name=settings.model_name(),
        retention_days=settings.retention_days,
        now=utc_now(),
        reporter=reporter,
        dry_run=args.dry_run,
    )
    return ExitCode.OK


def catalog_row(entry: CatalogEntry) -> dict[str, Any]:
    """One backup as `list --json` prints it."""
    manifest = entry.manifest if entry.complete else None
    return {
        "backupId": entry.backup_id,
        "status": entry.status,
        "startedAt": entry.listed.started_at.isoformat(),
        "completedAt": manifest.completed_at.isoformat() if manifest else None,
        "size": manifest.total_size if manifest else entry.listed.total_size,
        "rows": manifest.total_rows if manifest else None,
        "artifacts": [a.role for a in manifest.artifacts] if manifest else [],
        "problems": list(entry.problems),
    }


def _table(entries: Sequence[CatalogEntry], now: datetime) -> Table:
    table = Table("backup", "status", "age", "size", "rows", "models", "problems")
    styles = {"complete": "green", "incomplete": "yellow", "damaged": "red"}
    for entry in reversed(entries):  # newest first
        row = catalog_row(entry)
        age = now - entry.listed.started_at.astimezone(UTC)
        table.add_row(
            entry.backup_id,
            f"[{styles[entry.status]}]{entry.status}[/]",
            _age(age.total_seconds()),
            human_bytes(row["size"]),
            "" if row["rows"] is None else str(row["rows"]),
            ",".join(row["artifacts"]),
            "; ".join(entry.problems),
        )
    return table


def _age(seconds: float) -> str:
    if seconds < 0:
        return "in the future"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


@contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM (a Job deleted or timed out) stops like Ctrl-C: uploads abort, children die."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise Terminated(f"stopped by signal {signal.Signals(signum).name}")

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
