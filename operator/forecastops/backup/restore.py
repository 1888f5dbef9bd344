"""`run_restore` and `list_backups`.

A restore, in order:
1. pick the backup (by id, or the newest complete one) and refuse it without a complete
   manifest;
2. download each model file and check its sha256 (kept in ``--artifacts-dir`` if given);
3. stream the dump into ``pg_restore --clean --if-exists --no-owner --single-transaction``,
   hashing it on the way and holding back its last chunk until the checksum has matched:
   a damaged dump is never committed, and the target database stays as it was;
4. count the rows of every table and compare them with the manifest.
``--verify-only`` does 1, 2 and 3 against ``pg_restore --list`` (no database needed).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import SecretStr

from forecastops.backup import database
from forecastops.backup.catalog import CatalogEntry, choose_backup, read_catalog
from forecastops.backup.errors import (
    AccessDenied,
    DatabaseError,
    StorageError,
    VerificationFailed,
)
from forecastops.backup.layout import backup_prefix
from forecastops.backup.manifest import ArtifactEntry, Manifest, row_count_problems
from forecastops.backup.progress import Reporter, human_bytes
from forecastops.backup.settings import RestoreConfig, StoreConfig
from forecastops.backup.storage import ObjectStore


@dataclass(frozen=True)
class RestoreResult:
    backup_id: str
    manifest: Manifest
    seconds: float
    verify_only: bool
    row_counts: dict[str, int | None] = field(default_factory=dict)
    artifacts: tuple[Path | None, ...] = ()


def list_backups(
    store_config: StoreConfig, name: str, *, store: ObjectStore | None = None
) -> list[CatalogEntry]:
    store = store or ObjectStore(store_config)
    store.check_access()
    return read_catalog(store, store_config.prefix, name)


def run_restore(
    config: RestoreConfig,
    *,
    store: ObjectStore | None = None,
    reporter: Reporter | None = None,
) -> RestoreResult:
    reporter = reporter or Reporter()
    store = store or ObjectStore(config.store)
    began = time.monotonic()
    store.check_access()
    entry = choose_backup(read_catalog(store, config.store.prefix, config.name), config.backup_id)
    manifest = entry.manifest
    assert manifest is not None  # choose_backup returns complete backups only
    folder = backup_prefix(config.store.prefix, config.name, entry.backup_id)
    reporter.info(
        f"Backup {entry.backup_id} of {config.name}: complete, {human_bytes(manifest.total_size)}, "
        f"{manifest.total_rows} rows, taken {manifest.database.snapshot_at:%Y-%m-%d %H:%M:%S %Z}"
    )
    paths = tuple(
        _fetch_artifact(store, folder, artifact, config.artifacts_dir, reporter)
        for artifact in manifest.artifacts
    )
    if config.verify_only:
        _verify_dump(store, folder, manifest, config, reporter)
        reporter.info(f"Backup {entry.backup_id} verified: checksums match, the dump is readable")
        return RestoreResult(entry.backup_id, manifest, time.monotonic() - began, True, {}, paths)
    assert config.target_url is not None
    counts = _restore_dump(store, folder, manifest, config, config.target_url, reporter)
    reporter.info(
        f"Restored backup {entry.backup_id}: {manifest.total_rows} rows in "
        f"{len(counts)} tables, row counts match"
    )
    return RestoreResult(entry.backup_id, manifest, time.monotonic() - began, False, counts, paths)


# --- the dump ----------------------------------------------------------------------------


def _restore_dump(
    store: ObjectStore,
    folder: str,
    manifest: Manifest,
    config: RestoreConfig,
    target: SecretStr,
    reporter: Reporter,
) -> dict[str, int | None]:
    expected = manifest.database.row_counts
    binary = _pg_restore_binary(config, manifest, server=database.server_version(target))
    schemas = [database.split_qualified(table)[0] for table in manifest.database.tables]
    database.ensure_schemas(target, schemas)
    before = database.count_rows(target, list(expected))
    present = {table: rows for table, rows in before.items() if rows is not None}
    if present:
        reporter.info(
            f"The target holds {sum(present.values())} rows in {len(present)} of these tables "
            "now; the restore replaces them"
        )
    try:
        _stream_into_pg_restore(store, folder, manifest, binary, target, config, reporter)
    except (DatabaseError, StorageError, AccessDenied) as exc:  # pg_restore was killed
        raise type(exc)(
            f"{exc} (pg_restore ran in one transaction: nothing was restored)"
        ) from None
    after = database.count_rows(target, list(expected))
    problems = row_count_problems(expected, {t: n for t, n in after.items() if n is not None})
    if problems:
        raise VerificationFailed(
            "restored, but the row counts differ from the backup's (is something writing to "
            f"the target?): {'; '.join(problems)}"
        )
    return after


def _stream_into_pg_restore(
    store: ObjectStore,
    folder: str,
    manifest: Manifest,
    binary: str,
    target: SecretStr,
    config: RestoreConfig,
    reporter: Reporter,
) -> None:
    """The dump, checked as it streams; its last chunk is released only if the sha256 matches."""
    object_entry = manifest.object(manifest.database.object)
    with (
        database.pg_restore(binary=binary, url=target, privileges=config.privileges) as sink,
        reporter.transfer(f"restore {object_entry.key}", object_entry.size) as progress,
    ):
        held = b""
        digest, size = hashlib.sha256(), 0
        for chunk in store.download(folder + object_entry.key):
            if held:
                sink.write(held)
            held = chunk
            digest.update(chunk)
            size += len(chunk)
            progress(len(chunk))
        if (digest.hexdigest(), size) != (object_entry.sha256, object_entry.size):
            sink.abort()  # it has not seen the last chunk, so it cannot have committed
            raise VerificationFailed(
                f"{object_entry.key}: {size} bytes with sha256 {digest.hexdigest()}, the manifest "
                f"says {object_entry.size} bytes with {object_entry.sha256}; nothing was restored"
            )
        sink.write(held)
        sink.finish()


def _verify_dump(
    store: ObjectStore, folder: str, manifest: Manifest, config: RestoreConfig, reporter: Reporter
) -> None:
    binary = _pg_restore_binary(config, manifest, server=None)
    object_entry = manifest.object(manifest.database.object)
    with (
        database.pg_restore_list(binary=binary) as sink,
        reporter.transfer(f"verify {object_entry.key}", object_entry.size) as progress,
    ):
        digest, size = _hash_chunks(store.download(folder + object_entry.key), sink.write, progress)
        toc = sink.finish()
    _check_digest(object_entry.key, digest, size, object_entry.sha256, object_entry.size)
    missing = sorted(set(manifest.database.row_counts) - database.data_entries(toc))
    if missing:
        raise VerificationFailed(f"the dump has no data for {', '.join(missing)}")


def _pg_restore_binary(config: RestoreConfig, manifest: Manifest, *, server: str | None) -> str:
    dumped_by = manifest.database.pg_dump_version
    major = database.major_version(server or dumped_by)
    binary = database.find_tool("pg_restore", server_major=major, bindir=config.pg_bindir)
    version = database.tool_version(binary)
    problem = database.tool_version_problem("pg_restore", version, "the dump's pg_dump", dumped_by)
    if problem:
        raise DatabaseError(problem)
    return binary


# --- model files -------------------------------------------------------------------------


def _fetch_artifact(
    store: ObjectStore,
    folder: str,
    artifact: ArtifactEntry,
    directory: Path | None,
    reporter: Reporter,
) -> Path | None:
    """Download and check one model file; kept under `directory` only once it checks out."""
    label = f"{artifact.role} model {artifact.object}"
    chunks = store.download(folder + artifact.object)
    if directory is None:
        with reporter.transfer(label, artifact.size) as progress:
            digest, size = _hash_chunks(chunks, lambda _: None, progress)
        _check_digest(artifact.object, digest, size, artifact.sha256, artifact.size)
        return None
    destination = directory / artifact.object
    partial = destination.with_name(f".{destination.name}.partial")
    partial.parent.mkdir(parents=True, exist_ok=True)
    try:
        with partial.open("wb") as out, reporter.transfer(label, artifact.size) as progress:
            digest, size = _hash_chunks(chunks, out.write, progress)
        _check_digest(artifact.object, digest, size, artifact.sha256, artifact.size)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(destination)
    return destination


def _hash_chunks(
    chunks: Iterator[bytes], sink: Callable[[bytes], object], progress: Callable[[int], None]
) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    for chunk in chunks:
        digest.update(chunk)
        size += len(chunk)
        sink(chunk)
        progress(len(chunk))
    return digest.hexdigest(), size


def _check_digest(key: str, digest: str, size: int, sha256: str, expected_size: int) -> None:
    if (digest, size) != (sha256, expected_size):
        raise VerificationFailed(
            f"{key}: {size} bytes with sha256 {digest}, the manifest says {expected_size} "
            f"bytes with {sha256}"
        )
