"""Where a backup's objects live in the bucket. Pure: names in, names out.

    <prefix><name>/<backup id>/database.dump              pg_dump --format=custom
    <prefix><name>/<backup id>/artifacts/<role>/<file>    model files (stable, canary)
    <prefix><name>/<backup id>/manifest.json              written last: the backup is complete

The backup id is the UTC start time, ``20250131T020000Z``: it sorts by time as text and
names the backup in `restore --backup`. A non-empty prefix always ends with one ``/``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import PurePosixPath
from urllib.parse import unquote, urlsplit

BACKUP_ID_FORMAT = "%Y%m%dT%H%M%SZ"
MANIFEST = "manifest.json"
DUMP = "database.dump"
ARTIFACTS = "artifacts"

_BACKUP_ID = re.compile(r"^\d{8}T\d{6}Z$")
_SAFE_FILE = re.compile(r"[^A-Za-z0-9._-]+")
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def normalise_prefix(prefix: str) -> str:
    """``"backups"`` and ``"/backups/"`` -> ``"backups/"``; ``""`` stays ``""``."""
    stripped = prefix.strip("/")
    return f"{stripped}/" if stripped else ""


def model_prefix(prefix: str, name: str) -> str:
    """The folder that holds every backup of one ForecastModel."""
    if not _NAME.match(name):
        raise ValueError(f"{name!r} is not a ForecastModel name (a DNS label)")
    return f"{normalise_prefix(prefix)}{name}/"


def format_backup_id(when: datetime) -> str:
    """The id of a backup started at `when` (an aware datetime), in UTC to the second."""
    if when.tzinfo is None:
        raise ValueError("a backup time must carry a time zone")
    return when.astimezone(UTC).strftime(BACKUP_ID_FORMAT)


def parse_backup_id(text: str) -> datetime | None:
    """The UTC start time a backup id names, or None if `text` is not a backup id."""
    if not _BACKUP_ID.match(text):
        return None
    try:
        return datetime.strptime(text, BACKUP_ID_FORMAT).replace(tzinfo=UTC)
    except ValueError:  # 20251399T...: the right shape, but no such date
        return None


def backup_prefix(prefix: str, name: str, backup_id: str) -> str:
    if parse_backup_id(backup_id) is None:
        raise ValueError(f"{backup_id!r} is not a backup id such as 20250131T020000Z")
    return f"{model_prefix(prefix, name)}{backup_id}/"


def artifact_object(role: str, uri: str) -> str:
    """The object (relative to the backup) that holds a model file: its URI's file name."""
    filename = PurePosixPath(unquote(urlsplit(uri).path)).name
    safe = _SAFE_FILE.sub("_", filename).lstrip(".") or "model"
    return f"{ARTIFACTS}/{role}/{safe}"


@dataclass(frozen=True)
class ListedBackup:
    """The objects found under one backup id: relative key -> size in bytes."""

    backup_id: str
    started_at: datetime
    objects: Mapping[str, int] = field(default_factory=dict)

    @property
    def has_manifest(self) -> bool:
        return MANIFEST in self.objects

    @property
    def total_size(self) -> int:
        return sum(self.objects.values())


def group_backups(listing: Iterable[tuple[str, int]], folder: str) -> list[ListedBackup]:
    """Group (key, size) pairs listed under `folder` (a model prefix) by backup, oldest first.

    Keys that are not ``<folder><backup id>/<something>`` are not backups of ours and are
    left out, so nothing decided from this list can touch them.
    """
    grouped: dict[str, dict[str, int]] = {}
    for key, size in listing:
        if not key.startswith(folder):
            continue
        backup_id, sep, relative = key[len(folder) :].partition("/")
        if not sep or not relative or parse_backup_id(backup_id) is None:
            continue
        grouped.setdefault(backup_id, {})[relative] = size
    return [
        ListedBackup(backup_id, started, objects)
        for backup_id, objects in sorted(grouped.items())
        if (started := parse_backup_id(backup_id)) is not None
    ]
