"""`run_backup` and `prune`: gather, decide, act.

A backup, in order:
1. check the bucket can be reached with the keys given, and the database answers, holds
   the prediction log and suits the local pg_dump (nothing is written otherwise);
2. copy each model file, hashing it and checking its sha256 when one is expected;
3. export a snapshot, count its rows, stream pg_dump of that snapshot into the bucket;
4. write manifest.json, which makes the backup complete;
5. delete expired backups (retention).
Any failure before 4 leaves no manifest: the backup stays incomplete and restore refuses it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from forecastops.backup import database
from forecastops.backup.artifacts import open_artifact, redact
from forecastops.backup.catalog import CatalogEntry, read_catalog
from forecastops.backup.errors import (
    AccessDenied,
    BackupError,
    DatabaseError,
    StorageError,
    VerificationFailed,
)
from forecastops.backup.layout import (
    DUMP,
    MANIFEST,
    artifact_object,
    backup_prefix,
    format_backup_id,
    model_prefix,
)
from forecastops.backup.manifest import (
    ArtifactEntry,
    DatabaseEntry,
    Manifest,
    ObjectEntry,
    build_manifest,
)
from forecastops.backup.progress import Reporter, human_bytes
from forecastops.backup.retention import Verdict, plan_retention
from forecastops.backup.settings import ArtifactRef, BackupConfig, SourceConfig, StoreConfig
from forecastops.backup.storage import ObjectStore, StoredObject

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class BackupResult:
    location: str
    manifest: Manifest
    seconds: float
    pruned: tuple[str, ...] = ()


def run_backup(
    config: BackupConfig,
    *,
    store: ObjectStore | None = None,
    clock: Clock = utc_now,
    reporter: Reporter | None = None,
) -> BackupResult:
    reporter = reporter or Reporter()
    store = store or ObjectStore(config.store)
    began = time.monotonic()
    manifest, location = _take_backup(config, store, clock, reporter)
    pruned: tuple[str, ...] = ()
    if config.prune:
        try:
            pruned = prune(
                store,
                prefix=config.store.prefix,
                name=config.name,
                retention_days=config.retention_days,
                now=clock(),
                reporter=reporter,
            )
        except BackupError as exc:
            raise type(exc)(f"the backup is complete, but retention failed: {exc}") from None
    return BackupResult(location, manifest, time.monotonic() - began, pruned)


def _take_backup(
    config: BackupConfig, store: ObjectStore, clock: Clock, reporter: Reporter
) -> tuple[Manifest, str]:
    started = clock()
    backup_id = format_backup_id(started)
    folder = backup_prefix(config.store.prefix, config.name, backup_id)
    location = f"s3://{store.bucket}/{folder}"
    reporter.info(f"Backing up {config.name} to {location}")

    store.check_access()
    if store.list_sizes(folder):
        raise StorageError(f"{location} already holds objects: another backup this second?")
    pg_dump = _pg_dump_tool(config.source)
    artifacts = tuple(
        _copy_artifact(store, folder, ref, config.model_store, reporter) for ref in config.artifacts
    )
    database_entry, dump = _dump_database(store, folder, config.source, pg_dump, reporter)

    manifest = build_manifest(
        name=config.name,
        backup_id=backup_id,
        started_at=started,
        completed_at=clock(),
        database=database_entry,
        artifacts=tuple(entry for entry, _ in artifacts),
        objects=tuple(_object_entry(folder, o) for o in (dump, *(o for _, o in artifacts))),
    )
    store.put_small(f"{folder}{MANIFEST}", manifest.to_json(), "application/json")
    reporter.info(
        f"Backup complete: {location} ({human_bytes(manifest.total_size)}, "
        f"{manifest.total_rows} rows, {len(artifacts)} model files)"
    )
    return manifest, location


def _copy_artifact(
    store: ObjectStore,
    folder: str,
    ref: ArtifactRef,
    model_store: StoreConfig | None,
    reporter: Reporter,
) -> tuple[ArtifactEntry, StoredObject]:
    relative = artifact_object(ref.role, ref.uri)
    with (
        open_artifact(ref, model_store) as source,
        reporter.transfer(f"{ref.role} model {relative}") as progress,
    ):
        stored = store.upload_stream(f"{folder}{relative}", source, progress=progress)
    if ref.sha256 is not None and stored.sha256 != ref.sha256:
        raise VerificationFailed(
            f"{ref.role} model {redact(ref.uri)}: sha256 is {stored.sha256}, expected "
            f"{ref.sha256}; the backup is left incomplete"
        )
    if ref.sha256 is None:
        reporter.warn(f"{ref.role} model has no expected sha256; recording {stored.sha256}")
    entry = ArtifactEntry(
        role=ref.role,
        source=redact(ref.uri),
        object=relative,
        sha256=stored.sha256,
        size=stored.size,
    )
    return entry, stored


@dataclass(frozen=True)
class _Tool:
    binary: str
    version: str


def _pg_dump_tool(source: SourceConfig) -> _Tool:
    """The pg_dump to use, once the database answers, has the tables and suits the tool."""
    server = database.preflight(source.database_url, source.tables)
    major = database.major_version(server)
    binary = database.find_tool("pg_dump", server_major=major, bindir=source.pg_bindir)
    version = database.tool_version(binary)
    problem = database.tool_version_problem("pg_dump", version, "the server", server)
    if problem:
        raise DatabaseError(problem)
    return _Tool(binary, version)


def _dump_database(
    store: ObjectStore, folder: str, source: SourceConfig, tool: _Tool, reporter: Reporter
) -> tuple[DatabaseEntry, StoredObject]:
    with database.exported_snapshot(source.database_url, source.tables) as snapshot:
        reporter.info(
            f"Snapshot {snapshot.snapshot_id} of PostgreSQL {snapshot.server_version}: "
            f"{len(snapshot.tables)} tables, {sum(snapshot.row_counts.values())} rows"
        )
        with (
            database.pg_dump(
                binary=tool.binary,
                url=source.database_url,
                snapshot=snapshot,
                compress_level=source.compress_level,
            ) as stream,
            reporter.transfer(DUMP) as progress,
        ):
            stored = store.upload_stream(f"{folder}{DUMP}", stream, progress=progress)
    entry = DatabaseEntry(
        object=DUMP,
        compress_level=source.compress_level,
        snapshot_at=snapshot.taken_at,
        server_version=snapshot.server_version,
        pg_dump_version=tool.version,
        tables=tuple(table.qualified for table in snapshot.tables),
        row_counts=dict(snapshot.row_counts),
    )
    return entry, stored


def _object_entry(folder: str, stored: StoredObject) -> ObjectEntry:
    return ObjectEntry(key=stored.key.removeprefix(folder), size=stored.size, sha256=stored.sha256)


# --- retention --------------------------------------------------------------------------


def prune(
    store: ObjectStore,
    *,
    prefix: str,
    name: str,
    retention_days: int,
    now: datetime,
    reporter: Reporter,
    dry_run: bool = False,
) -> tuple[str, ...]:
    """Delete the backups retention selects; the ids deleted (or, dry run, to delete).

    Reading the catalog fails as a whole (wrong keys, unreachable store) before anything is
    deleted. Each backup loses its manifest first, so a half-deleted backup is incomplete,
    never mistaken for a complete one.
    """
    entries = read_catalog(store, prefix, name)
    verdicts = plan_retention([e.age() for e in entries], now=now, retention_days=retention_days)
    doomed = _doomed(entries, verdicts)
    for verdict in verdicts:
        if verdict.delete:
            reporter.info(
                f"{'Would delete' if dry_run else 'Deleting'} backup {verdict.backup_id}: {verdict.reason}"
            )
    if dry_run:
        return tuple(entry.backup_id for entry in doomed)
    folder = model_prefix(prefix, name)
    for entry in doomed:
        _delete_backup(store, folder, entry)
    _abort_stale_uploads(store, folder, now - timedelta(days=retention_days), reporter)
    kept = len(entries) - len(doomed)
    reporter.info(f"Retention {retention_days} days: deleted {len(doomed)}, kept {kept}")
    return tuple(entry.backup_id for entry in doomed)


def _doomed(entries: Sequence[CatalogEntry], verdicts: Sequence[Verdict]) -> list[CatalogEntry]:
    return [entry for entry, verdict in zip(entries, verdicts, strict=True) if verdict.delete]


def _delete_backup(store: ObjectStore, folder: str, entry: CatalogEntry) -> None:
    base = f"{folder}{entry.backup_id}/"
    keys = sorted(entry.listed.objects, key=lambda key: key != MANIFEST)  # manifest first
    if keys and keys[0] == MANIFEST:
        store.delete([base + MANIFEST])
        keys = keys[1:]
    store.delete([base + key for key in keys])


def _abort_stale_uploads(
    store: ObjectStore, folder: str, older_than: datetime, reporter: Reporter
) -> None:
    """Uploads of killed backups never complete; their parts take space until aborted."""
    try:
        aborted = store.abort_stale_uploads(folder, older_than)
    except (
        StorageError,
        AccessDenied,
    ) as exc:  # housekeeping only: the backups themselves are settled
        reporter.warn(f"cannot clean up unfinished uploads: {exc}")
        return
    if aborted:
        reporter.info(f"Aborted {aborted} unfinished uploads older than the retention period")
