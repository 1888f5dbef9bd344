"""The manifest: build, serialise, parse, and every way it can be unfit."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from forecastops.backup.manifest import (
    FORMAT_VERSION,
    MAX_MANIFEST_BYTES,
    ArtifactEntry,
    DatabaseEntry,
    Manifest,
    ObjectEntry,
    build_manifest,
    listing_problems,
    manifest_problems,
    parse_manifest,
    row_count_problems,
)

STARTED = datetime(2025, 1, 31, 2, 0, 0, 123456, tzinfo=UTC)
SHA_DUMP = "a" * 64
SHA_MODEL = "b" * 64


def database_entry(**changes: Any) -> DatabaseEntry:
    values: dict[str, Any] = {
        "object": "database.dump",
        "compress_level": 6,
        "snapshot_at": STARTED + timedelta(seconds=1),
        "server_version": "15.18",
        "pg_dump_version": "15.18",
        "tables": ("public.prediction_log", "public.prediction_log_p20250131"),
        "row_counts": {"public.prediction_log_p20250131": 1200},
        **changes,
    }
    return DatabaseEntry(**values)


def manifest(**changes: Any) -> Manifest:
    values: dict[str, Any] = {
        "name": "store-demand",
        "backup_id": "20250131T020000Z",
        "started_at": STARTED,
        "completed_at": STARTED + timedelta(seconds=30),
        "database": database_entry(),
        "artifacts": (
            ArtifactEntry(
                role="stable",
                source="s3://models/v7/model.onnx",
                object="artifacts/stable/model.onnx",
                sha256=SHA_MODEL,
                size=300,
            ),
        ),
        "objects": (
            ObjectEntry(key="database.dump", size=5000, sha256=SHA_DUMP),
            ObjectEntry(key="artifacts/stable/model.onnx", size=300, sha256=SHA_MODEL),
        ),
        **changes,
    }
    return build_manifest(**values)


def document(**changes: Any) -> dict[str, Any]:
    doc = json.loads(manifest().to_json())
    doc.update(changes)
    return doc


def test_round_trip() -> None:
    original = manifest()
    raw = original.to_json()
    parsed, problems = parse_manifest(raw)
    assert problems == []
    assert parsed == original
    doc = json.loads(raw)
    assert doc["format"] == "forecastops-backup"
    assert doc["formatVersion"] == FORMAT_VERSION
    assert doc["backupId"] == "20250131T020000Z"
    assert doc["database"]["rowCounts"] == {"public.prediction_log_p20250131": 1200}
    assert doc["objects"][0] == {"key": "database.dump", "size": 5000, "sha256": SHA_DUMP}
    assert doc["startedAt"].endswith("Z")


def test_totals() -> None:
    m = manifest()
    assert (m.total_size, m.total_rows) == (5300, 1200)
    assert m.object("database.dump").sha256 == SHA_DUMP


def test_unknown_fields_are_ignored_for_forward_compatibility() -> None:
    parsed, problems = parse_manifest(json.dumps(document(addedLater={"x": 1})).encode())
    assert parsed is not None and problems == []


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (b"", "not JSON"),
        (b"{", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[]", "not a JSON object"),
        (json.dumps({"format": "other"}).encode(), "not a forecastops-backup manifest"),
        (json.dumps(document(formatVersion=2)).encode(), "formatVersion 2 is not supported"),
        (json.dumps(document(formatVersion="1")).encode(), "formatVersion '1' is not supported"),
        (json.dumps({k: v for k, v in document().items() if k != "database"}).encode(), "database"),
        (json.dumps(document(completedAt="yesterday")).encode(), "completedAt"),
        (b" " * (MAX_MANIFEST_BYTES + 1), "larger than"),
    ],
)
def test_parse_rejects(raw: bytes, problem: str) -> None:
    parsed, problems = parse_manifest(raw)
    assert parsed is None
    assert any(problem in p for p in problems), problems


@pytest.mark.parametrize(
    ("objects", "problem"),
    [
        ([{"key": "database.dump", "size": -1, "sha256": SHA_DUMP}], "size"),
        ([{"key": "database.dump", "size": 1, "sha256": "A" * 64}], "sha256"),
        ([{"key": "database.dump", "size": 1, "sha256": "a" * 63}], "sha256"),
        ([{"key": "/abs", "size": 1, "sha256": SHA_DUMP}], "key"),
        ([{"key": "dir/", "size": 1, "sha256": SHA_DUMP}], "key"),
        ([{"key": "../other/database.dump", "size": 1, "sha256": SHA_DUMP}], "may not be listed"),
        ([{"key": "manifest.json", "size": 1, "sha256": SHA_DUMP}], "may not be listed"),
    ],
)
def test_parse_rejects_bad_objects(objects: list[dict[str, Any]], problem: str) -> None:
    parsed, problems = parse_manifest(json.dumps(document(objects=objects)).encode())
    assert parsed is None
    assert any(problem in p for p in problems), problems


def test_negative_row_counts_are_rejected() -> None:
    doc = document()
    doc["database"]["rowCounts"] = {"public.t": -1}
    parsed, problems = parse_manifest(json.dumps(doc).encode())
    assert parsed is None and problems


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"name": "other"}, "manifest is for 'other'"),
        ({"backup_id": "20250131T020001Z"}, "found at '20250131T020000Z'"),
        (
            {"objects": (ObjectEntry(key="database.dump", size=5000, sha256=SHA_DUMP),) * 2},
            "listed twice",
        ),
        (
            {"objects": (ObjectEntry(key="database.dump", size=5000, sha256=SHA_DUMP),)},
            "artifacts/stable/model.onnx is referenced but not listed",
        ),
        (
            {
                "objects": (
                    ObjectEntry(key="database.dump", size=5000, sha256=SHA_DUMP),
                    ObjectEntry(key="artifacts/stable/model.onnx", size=301, sha256=SHA_MODEL),
                )
            },
            "artifact stable: sha256/size differ",
        ),
        ({"database": database_entry(object="other.dump")}, "other.dump is referenced"),
        ({"started_at": datetime(2025, 1, 31, 2)}, "no time zone"),
    ],
)
def test_manifest_problems(changes: dict[str, Any], problem: str) -> None:
    unfit = Manifest.model_validate({**manifest().model_dump(), **changes, "format_version": 1})
    problems = manifest_problems(unfit, name="store-demand", backup_id="20250131T020000Z")
    assert any(problem in p for p in problems), problems


def test_build_manifest_refuses_to_make_an_unfit_manifest() -> None:
    twice = (ObjectEntry(key="database.dump", size=5000, sha256=SHA_DUMP),) * 2
    with pytest.raises(ValueError, match="listed twice"):
        manifest(objects=twice)
    with pytest.raises(ValueError, match="no time zone"):
        manifest(started_at=datetime(2025, 1, 31, 2))


def test_a_fit_manifest_has_no_problems() -> None:
    assert manifest_problems(manifest(), name="store-demand", backup_id="20250131T020000Z") == []


@pytest.mark.parametrize(
    ("listed", "expected"),
    [
        ({"database.dump": 5000, "artifacts/stable/model.onnx": 300}, []),
        (
            {"database.dump": 5000, "artifacts/stable/model.onnx": 300, "extra": 1},
            [],  # objects the manifest does not list are not its business
        ),
        ({"artifacts/stable/model.onnx": 300}, ["database.dump is missing"]),
        (
            {"database.dump": 4999, "artifacts/stable/model.onnx": 300},
            ["database.dump has 4999 bytes, the manifest says 5000"],
        ),
        ({}, ["database.dump is missing", "artifacts/stable/model.onnx is missing"]),
    ],
)
def test_listing_problems(listed: dict[str, int], expected: list[str]) -> None:
    assert listing_problems(manifest(), listed) == expected


@pytest.mark.parametrize(
    ("actual", "expected"),
    [
        ({"a": 1, "b": 0}, []),
        ({"a": 1, "b": 0, "c": 5}, []),
        ({"a": 2, "b": 0}, ["table a has 2 rows, the backup has 1"]),
        ({"b": 0}, ["table a is missing"]),
        ({}, ["table a is missing", "table b is missing"]),
    ],
)
def test_row_count_problems(actual: dict[str, int], expected: list[str]) -> None:
    assert row_count_problems({"a": 1, "b": 0}, actual) == expected
