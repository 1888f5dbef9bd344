"""The command line: parsing, exit codes for usage errors, output helpers."""

from __future__ import annotations

import io
import os

import pytest
from forecastops.backup import cli
from forecastops.backup.catalog import assess
from forecastops.backup.layout import ListedBackup, parse_backup_id
from forecastops.backup.progress import Reporter, human_bytes
from rich.console import Console


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith(("FORECASTOPS_", "AWS_", "PREDICTION_")):
            monkeypatch.delenv(key)


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (["--help"], 0),
        (["backup", "--help"], 0),
        ([], 2),
        (["nonsense"], 2),
        (["backup", "--retention-days", "seven"], 2),
        (["backup"], 2),  # no name, bucket, database: a usage error, before any I/O
        (["list", "--name", "m"], 2),
        (["restore", "--name", "m", "--bucket", "b"], 2),  # no --target-url
        (["restore", "--name", "m", "--bucket", "b", "--target-url", "x", "--backup", "monday"], 2),
        (
            [
                "backup",
                "--name",
                "m",
                "--bucket",
                "b",
                "--database-url",
                "x",
                "--compress-level",
                "11",
            ],
            2,
        ),
    ],
)
def test_exit_codes_without_io(
    argv: list[str], code: int, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(argv) == code
    if code == 2 and "--help" not in argv:
        assert "error" in capsys.readouterr().err


def test_usage_errors_say_what_is_missing(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["backup", "--bucket", "b"]) == 2
    assert "missing name: set --name or FORECASTOPS_BACKUP_NAME" in capsys.readouterr().err


def test_every_flag_maps_to_a_setting() -> None:
    parser = cli.build_parser()
    fields = set(cli.BackupSettings.model_fields)
    for flag in cli._SETTING_FLAGS:
        assert flag in fields, flag
    actions = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    dests = {a.dest for sub in actions.values() for a in sub._actions}
    assert set(cli._SETTING_FLAGS) <= dests


def test_catalog_row() -> None:
    started = parse_backup_id("20250131T020000Z")
    assert started is not None
    entry = assess(ListedBackup("20250131T020000Z", started, {"database.dump": 10}), None, "m")
    assert cli.catalog_row(entry) == {
        "backupId": "20250131T020000Z",
        "status": "incomplete",
        "startedAt": "2025-01-31T02:00:00+00:00",
        "completedAt": None,
        "size": 10,
        "rows": None,
        "artifacts": [],
        "problems": ["no manifest.json: the backup did not finish"],
    }


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-5, "in the future"),
        (0, "0s"),
        (59, "59s"),
        (90, "1.5m"),
        (7200, "2.0h"),
        (3 * 86400, "3.0d"),
    ],
)
def test_age(seconds: float, text: str) -> None:
    assert cli._age(seconds) == text


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (1536, "1.5 KiB"),
        (5 * 1024**2, "5.0 MiB"),
        (3 * 1024**4, "3.0 TiB"),
    ],
)
def test_human_bytes(size: int, text: str) -> None:
    assert human_bytes(size) == text


def test_transfers_in_a_log_end_with_a_summary_line() -> None:
    out = io.StringIO()
    reporter = Reporter(Console(file=out, force_terminal=False, width=200))
    with reporter.transfer("database.dump") as progress:
        progress(1024)
        progress(1024)
    assert "database.dump: 2.0 KiB in" in out.getvalue()


def test_quiet_keeps_warnings_and_errors() -> None:
    out = io.StringIO()
    reporter = Reporter(Console(file=out, force_terminal=False, width=200), quiet=True)
    reporter.info("chatter")
    reporter.warn("careful")
    reporter.error("broken [not markup]")
    text = out.getvalue()
    assert "chatter" not in text and "careful" in text and "broken [not markup]" in text
