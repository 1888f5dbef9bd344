"""What backups a ForecastModel has, and which are complete.

`read_catalog` gathers (one listing, then each manifest); everything else here is pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from forecastops.backup.errors import BackupIncomplete, BackupNotFound, UsageError
from forecastops.backup.layout import (
    MANIFEST,
    ListedBackup,
    group_backups,
    model_prefix,
    parse_backup_id,
)
from forecastops.backup.manifest import (
    MAX_MANIFEST_BYTES,
    Manifest,
    listing_problems,
    manifest_problems,
    parse_manifest,
)
from forecastops.backup.retention import BackupAge
from forecastops.backup.storage import ObjectStore

LATEST = "latest"


@dataclass(frozen=True)
class CatalogEntry:
    listed: ListedBackup
    manifest: Manifest | None
    problems: tuple[str, ...]

    @property
    def backup_id(self) -> str:
        return self.listed.backup_id

    @property
    def complete(self) -> bool:
        return self.manifest is not None and not self.problems

    @property
    def status(self) -> str:
        if self.complete:
            return "complete"
        return "damaged" if self.listed.has_manifest else "incomplete"

    def age(self) -> BackupAge:
        completed = self.manifest.completed_at if self.complete and self.manifest else None
        return BackupAge(self.backup_id, self.listed.started_at, completed)


def assess(listed: ListedBackup, raw_manifest: bytes | None, name: str) -> CatalogEntry:
    """Whether a listed backup is complete: its manifest parses, fits, and its objects exist."""
    if raw_manifest is None:
        return CatalogEntry(listed, None, ("no manifest.json: the backup did not finish",))
    manifest, problems = parse_manifest(raw_manifest)
    if manifest is None:
        return CatalogEntry(listed, None, tuple(problems))
    problems = manifest_problems(manifest, name=name, backup_id=listed.backup_id)
    problems += listing_problems(manifest, listed.objects)
    return CatalogEntry(listed, manifest, tuple(problems))


def choose_backup(entries: Sequence[CatalogEntry], wanted: str | None) -> CatalogEntry:
    """The backup to restore: `wanted` by id, or the newest complete one (None or 'latest').

    Raises BackupNotFound or BackupIncomplete (exit 7) with the reason.
    """
    if wanted in (None, LATEST):
        complete = [entry for entry in entries if entry.complete]
        if not complete:
            raise BackupNotFound(
                f"no complete backup found ({len(entries)} incomplete or damaged)"
                if entries
                else "no backup found"
            )
        return max(complete, key=lambda entry: entry.backup_id)
    if parse_backup_id(wanted) is None:
        raise UsageError(f"{wanted!r} is not a backup id such as 20250131T020000Z, or 'latest'")
    entry = next((e for e in entries if e.backup_id == wanted), None)
    if entry is None:
        raise BackupNotFound(f"backup {wanted} not found")
    if not entry.complete:
        raise BackupIncomplete(
            f"refusing backup {wanted}: it is {entry.status} ({'; '.join(entry.problems)})"
        )
    return entry


def read_catalog(store: ObjectStore, prefix: str, name: str) -> list[CatalogEntry]:
    """Every backup of `name`, oldest first. Any listing or read failure raises."""
    folder = model_prefix(prefix, name)
    listed = group_backups(store.list_sizes(folder).items(), folder)
    entries = []
    for backup in listed:
        raw = None
        if backup.has_manifest:
            key = f"{folder}{backup.backup_id}/{MANIFEST}"
            raw = store.read_small(key, MAX_MANIFEST_BYTES)
        entries.append(assess(backup, raw, name))
    return entries
