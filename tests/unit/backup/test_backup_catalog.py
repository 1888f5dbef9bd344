"""Which backups are complete, and which one a restore picks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from forecastops.backup.catalog import CatalogEntry, assess, choose_backup
from forecastops.backup.errors import BackupIncomplete, BackupNotFound, ExitCode, UsageError
from forecastops.backup.layout import ListedBackup, parse_backup_id
from forecastops.backup.manifest import DatabaseEntry, ObjectEntry, build_manifest

NAME = "store-demand"
SHA = "c" * 64


def manifest_bytes(backup_id: str, *, dump_size: int = 100, name: str = NAME) -> bytes:
    started = parse_backup_id(backup_id)
    assert started is not None
    return build_manifest(
        name=name,
        backup_id=backup_id,
        started_at=started,
        completed_at=started + timedelta(seconds=5),
        database=DatabaseEntry(
            object="database.dump",
            compress_level=6,
            snapshot_at=started,
            server_version="15.18",
            pg_dump_version="15.18",
            tables=("public.t",),
            row_counts={"public.t": 3},
        ),
        artifacts=(),
        objects=(ObjectEntry(key="database.dump", size=dump_size, sha256=SHA),),
    ).to_json()


def listed(backup_id: str, objects: dict[str, int]) -> ListedBackup:
    started = parse_backup_id(backup_id)
    assert started is not None
    return ListedBackup(backup_id, started, objects)


def entry(backup_id: str, *, complete: bool) -> CatalogEntry:
    raw = manifest_bytes(backup_id)
    objects = {"database.dump": 100, "manifest.json": len(raw)}
    if not complete:
        objects.pop("manifest.json")
    return assess(listed(backup_id, objects), raw if complete else None, NAME)


ID1, ID2, ID3 = "20250101T020000Z", "20250102T020000Z", "20250103T020000Z"


def test_a_backup_with_a_fitting_manifest_is_complete() -> None:
    e = entry(ID1, complete=True)
    assert (e.complete, e.status, e.problems) == (True, "complete", ())
    age = e.age()
    assert age.completed_at == datetime(2025, 1, 1, 2, 0, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "objects", "status", "problem"),
    [
        (None, {"database.dump": 100}, "incomplete", "no manifest.json"),
        (b"{oops", {"database.dump": 100, "manifest.json": 5}, "damaged", "not JSON"),
        (manifest_bytes(ID1), {"manifest.json": 500}, "damaged", "database.dump is missing"),
        (
            manifest_bytes(ID1),
            {"database.dump": 99, "manifest.json": 500},
            "damaged",
            "database.dump has 99 bytes",
        ),
        (
            manifest_bytes(ID2),  # copied from another backup
            {"database.dump": 100, "manifest.json": 500},
            "damaged",
            "manifest names backup '20250102T020000Z'",
        ),
        (
            manifest_bytes(ID1, name="other"),
            {"database.dump": 100, "manifest.json": 500},
            "damaged",
            "manifest is for 'other'",
        ),
    ],
)
def test_unfit_backups(
    raw: bytes | None, objects: dict[str, int], status: str, problem: str
) -> None:
    e = assess(listed(ID1, objects), raw, NAME)
    assert not e.complete
    assert e.status == status
    assert any(problem in p for p in e.problems), e.problems
    assert e.age().completed_at is None  # judged by its key time


@pytest.mark.parametrize(
    ("entries", "wanted", "expected"),
    [
        ([entry(ID1, complete=True), entry(ID2, complete=True)], None, ID2),
        ([entry(ID1, complete=True), entry(ID2, complete=True)], "latest", ID2),
        ([entry(ID1, complete=True), entry(ID2, complete=False)], "latest", ID1),
        ([entry(ID1, complete=True), entry(ID2, complete=True)], ID1, ID1),
    ],
)
def test_choose_backup(entries: list[CatalogEntry], wanted: str | None, expected: str) -> None:
    assert choose_backup(entries, wanted).backup_id == expected


@pytest.mark.parametrize(
    ("entries", "wanted", "error", "message"),
    [
        ([], None, BackupNotFound, "no backup found"),
        ([entry(ID1, complete=False)], "latest", BackupNotFound, "no complete backup found (1 "),
        ([entry(ID1, complete=True)], ID3, BackupNotFound, f"backup {ID3} not found"),
        (
            [entry(ID1, complete=True), entry(ID2, complete=False)],
            ID2,
            BackupIncomplete,
            f"refusing backup {ID2}: it is incomplete (no manifest.json",
        ),
        ([entry(ID1, complete=True)], "yesterday", UsageError, "not a backup id"),
    ],
)
def test_choose_backup_refuses(
    entries: list[CatalogEntry], wanted: str, error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as caught:
        choose_backup(entries, wanted)
    assert message in str(caught.value)


def test_refusals_exit_7() -> None:
    assert BackupIncomplete.exit_code == BackupNotFound.exit_code == ExitCode.INCOMPLETE == 7
