"""The manifest: what a complete backup holds, written last. Pure: build, parse, check.

A backup is complete exactly when ``manifest.json`` exists, parses, and every object it
lists is in the bucket with the size it records. Restore trusts nothing else.

Format (``formatVersion`` 1; times are RFC 3339 in UTC)::

    {
      "format": "forecastops-backup", "formatVersion": 1,
      "name": "store-demand", "backupId": "20250131T020000Z",
      "startedAt": "...", "completedAt": "...",
      "database": {
        "object": "database.dump", "dumpFormat": "custom", "compressLevel": 6,
        "snapshotAt": "...", "serverVersion": "15.18", "pgDumpVersion": "15.18",
        "tables": ["public.prediction_log", "public.prediction_log_p20250130", ...],
        "rowCounts": {"public.prediction_log_p20250130": 120000, ...}
      },
      "artifacts": [{"role": "stable", "source": "s3://models/v7/model.onnx",
                     "object": "artifacts/stable/model.onnx", "sha256": "...", "size": 123}],
      "objects": [{"key": "database.dump", "size": 1234, "sha256": "..."}, ...]
    }
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.alias_generators import to_camel

from forecastops.backup.layout import MANIFEST, parse_backup_id

FORMAT = "forecastops-backup"
FORMAT_VERSION = 1
MAX_MANIFEST_BYTES = 4 * 1024 * 1024

Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
RelativeKey = Annotated[str, Field(min_length=1, max_length=900, pattern=r"^[^/].*[^/]$|^[^/]$")]


class _Model(BaseModel):
    model_config = ConfigDict(
        frozen=True, alias_generator=to_camel, populate_by_name=True, extra="ignore"
    )


class ObjectEntry(_Model):
    key: RelativeKey
    size: int = Field(ge=0)
    sha256: Sha256

    @field_validator("key")
    @classmethod
    def _no_parent(cls, key: str) -> str:
        if ".." in key.split("/") or key == MANIFEST:
            raise ValueError(f"{key!r} may not be listed")
        return key


class DatabaseEntry(_Model):
    object: RelativeKey
    dump_format: Literal["custom"] = "custom"
    compress_level: int = Field(ge=0, le=9)
    snapshot_at: datetime
    server_version: str
    pg_dump_version: str
    tables: tuple[str, ...]
    row_counts: dict[str, Annotated[int, Field(ge=0)]]


class ArtifactEntry(_Model):
    role: str
    source: str
    object: RelativeKey
    sha256: Sha256
    size: int = Field(ge=0)


class Manifest(_Model):
    format: Literal["forecastops-backup"] = FORMAT
    format_version: int
    name: str
    backup_id: str
    started_at: datetime
    completed_at: datetime
    database: DatabaseEntry
    artifacts: tuple[ArtifactEntry, ...] = ()
    objects: tuple[ObjectEntry, ...]

    def object(self, key: str) -> ObjectEntry:
        return next(entry for entry in self.objects if entry.key == key)

    @property
    def total_size(self) -> int:
        return sum(entry.size for entry in self.objects)

    @property
    def total_rows(self) -> int:
        return sum(self.database.row_counts.values())

    def to_json(self) -> bytes:
        return self.model_dump_json(by_alias=True, indent=2).encode() + b"\n"


def build_manifest(
    *,
    name: str,
    backup_id: str,
    started_at: datetime,
    completed_at: datetime,
    database: DatabaseEntry,
    artifacts: tuple[ArtifactEntry, ...],
    objects: tuple[ObjectEntry, ...],
) -> Manifest:
    """The manifest of a finished backup; `ValueError` if it would not pass `check_manifest`."""
    manifest = Manifest(
        format_version=FORMAT_VERSION,
        name=name,
        backup_id=backup_id,
        started_at=started_at,
        completed_at=completed_at,
        database=database,
        artifacts=artifacts,
        objects=objects,
    )
    problems = manifest_problems(manifest, name=name, backup_id=backup_id)
    if problems:
        raise ValueError("; ".join(problems))
    return manifest


def parse_manifest(raw: bytes) -> tuple[Manifest | None, list[str]]:
    """The manifest in `raw`, or None and what is wrong with it."""
    if len(raw) > MAX_MANIFEST_BYTES:
        return None, [f"manifest is larger than {MAX_MANIFEST_BYTES} bytes"]
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, [f"manifest is not JSON: {exc}"]
    if not isinstance(document, dict):
        return None, ["manifest is not a JSON object"]
    if document.get("format") != FORMAT:
        return None, [f"not a {FORMAT} manifest (format={document.get('format')!r})"]
    version = document.get("formatVersion")
    if version != FORMAT_VERSION:
        return None, [
            f"manifest formatVersion {version!r} is not supported (this tool reads "
            f"{FORMAT_VERSION}); use a matching forecastctl"
        ]
    try:
        return Manifest.model_validate(document), []
    except ValidationError as exc:
        return None, [_describe(error) for error in exc.errors()]


def manifest_problems(manifest: Manifest, *, name: str, backup_id: str) -> list[str]:
    """What makes `manifest` unfit to describe backup `backup_id` of `name` (empty: fit)."""
    problems = []
    if manifest.name != name:
        problems.append(f"manifest is for {manifest.name!r}, not {name!r}")
    if manifest.backup_id != backup_id or parse_backup_id(backup_id) is None:
        problems.append(f"manifest names backup {manifest.backup_id!r}, found at {backup_id!r}")
    if manifest.started_at.tzinfo is None or manifest.completed_at.tzinfo is None:
        problems.append("manifest times carry no time zone")
    keys = [entry.key for entry in manifest.objects]
    duplicates = sorted({key for key in keys if keys.count(key) > 1})
    if duplicates:
        problems.append(f"objects listed twice: {', '.join(duplicates)}")
    referenced = [manifest.database.object, *(a.object for a in manifest.artifacts)]
    problems += [
        f"{key} is referenced but not listed in objects" for key in referenced if key not in keys
    ]
    for artifact in manifest.artifacts:
        if artifact.object in keys:
            entry = manifest.object(artifact.object)
            if (entry.sha256, entry.size) != (artifact.sha256, artifact.size):
                problems.append(f"artifact {artifact.role}: sha256/size differ from its object")
    return problems


def listing_problems(manifest: Manifest, listed: Mapping[str, int]) -> list[str]:
    """Objects the manifest lists that are missing from the bucket or have another size."""
    problems = []
    for entry in manifest.objects:
        size = listed.get(entry.key)
        if size is None:
            problems.append(f"{entry.key} is missing")
        elif size != entry.size:
            problems.append(f"{entry.key} has {size} bytes, the manifest says {entry.size}")
    return problems


def row_count_problems(expected: Mapping[str, int], actual: Mapping[str, int]) -> list[str]:
    """Tables whose row count differs from the manifest's (or that do not exist)."""
    problems = []
    for table, rows in sorted(expected.items()):
        found = actual.get(table)
        if found is None:
            problems.append(f"table {table} is missing")
        elif found != rows:
            problems.append(f"table {table} has {found} rows, the backup has {rows}")
    return problems


def _describe(error: Mapping[str, object]) -> str:
    location = ".".join(str(part) for part in error.get("loc", ())) or "manifest"  # type: ignore[union-attr]
    return f"{location}: {error.get('msg')}"
