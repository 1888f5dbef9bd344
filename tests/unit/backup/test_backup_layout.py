"""Key layout: prefixes, backup ids, artifact names, grouping a listing by backup."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from forecastops.backup.layout import (
    artifact_object,
    backup_prefix,
    format_backup_id,
    group_backups,
    model_prefix,
    normalise_prefix,
    parse_backup_id,
)


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ("", ""),
        ("/", ""),
        ("backups", "backups/"),
        ("backups/", "backups/"),
        ("/backups/", "backups/"),
        ("team/store-demand/", "team/store-demand/"),
        ("a//", "a/"),
    ],
)
def test_normalise_prefix(prefix: str, expected: str) -> None:
    assert normalise_prefix(prefix) == expected


@pytest.mark.parametrize(
    ("prefix", "name", "expected"),
    [
        ("", "store-demand", "store-demand/"),
        ("store-demand/", "store-demand", "store-demand/store-demand/"),
        ("backups", "m1", "backups/m1/"),
    ],
)
def test_model_prefix(prefix: str, name: str, expected: str) -> None:
    assert model_prefix(prefix, name) == expected


@pytest.mark.parametrize("name", ["", "Store", "a/b", "-a", "a-", "a_b", "../x"])
def test_model_prefix_refuses_names_that_are_not_dns_labels(name: str) -> None:
    with pytest.raises(ValueError, match="ForecastModel name"):
        model_prefix("", name)


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        (datetime(2025, 1, 31, 2, 0, 0, tzinfo=UTC), "20250131T020000Z"),
        (datetime(2025, 1, 31, 2, 0, 0, 999_999, tzinfo=UTC), "20250131T020000Z"),
        # other zones are converted to UTC, across a day boundary too
        (datetime(2025, 1, 31, 1, 30, tzinfo=timezone(timedelta(hours=2))), "20250130T233000Z"),
        (datetime(2024, 2, 29, 23, 59, 59, tzinfo=UTC), "20240229T235959Z"),
    ],
)
def test_format_backup_id(when: datetime, expected: str) -> None:
    assert format_backup_id(when) == expected
    assert parse_backup_id(expected) == when.astimezone(UTC).replace(microsecond=0)


def test_format_backup_id_refuses_naive_times() -> None:
    with pytest.raises(ValueError, match="time zone"):
        format_backup_id(datetime(2025, 1, 1))


@pytest.mark.parametrize(
    "text",
    [
        "",
        "latest",
        "20250131T020000",  # no Z
        "20250131T020000z",
        "2025-01-31T02:00:00Z",
        "20251331T020000Z",  # month 13
        "20250230T020000Z",  # 30 February
        "20250229T020000Z",  # not a leap year
        "20250131T240000Z",
        " 20250131T020000Z",
        "120250131T020000Z",
    ],
)
def test_parse_backup_id_rejects(text: str) -> None:
    assert parse_backup_id(text) is None


def test_backup_prefix() -> None:
    assert backup_prefix("b/", "m", "20250131T020000Z") == "b/m/20250131T020000Z/"
    with pytest.raises(ValueError, match="backup id"):
        backup_prefix("b/", "m", "../20250131T020000Z")


@pytest.mark.parametrize(
    ("role", "uri", "expected"),
    [
        ("stable", "s3://models/store/v7/model.onnx", "artifacts/stable/model.onnx"),
        (
            "canary",
            "https://h/x/model-v8.onnx?X-Amz-Signature=abc",
            "artifacts/canary/model-v8.onnx",
        ),
        ("stable", "file:///models/my%20model.onnx", "artifacts/stable/my_model.onnx"),
        ("stable", "https://host/", "artifacts/stable/model"),
        ("stable", "https://host/..", "artifacts/stable/model"),
        ("stable", "https://host/.hidden", "artifacts/stable/hidden"),
        ("stable", "https://host/a%2F..%2Fb", "artifacts/stable/b"),
    ],
)
def test_artifact_object(role: str, uri: str, expected: str) -> None:
    assert artifact_object(role, uri) == expected


def test_group_backups_keeps_only_this_models_backups() -> None:
    folder = "backups/store-demand/"
    listing = [
        (f"{folder}20250131T020000Z/manifest.json", 900),
        (f"{folder}20250131T020000Z/database.dump", 5000),
        (f"{folder}20250131T020000Z/artifacts/stable/model.onnx", 300),
        (f"{folder}20250130T020000Z/database.dump", 10),
        (f"{folder}README", 1),  # not in a backup folder
        (f"{folder}not-an-id/database.dump", 1),
        (f"{folder}20250132T020000Z/database.dump", 1),  # no such date
        (f"{folder}20250129T020000Z/", 0),  # a "folder" object
        ("backups/store-demand-eu/20250131T020000Z/manifest.json", 1),  # another model
        ("elsewhere/x", 1),
    ]
    backups = group_backups(listing, folder)
    assert [b.backup_id for b in backups] == ["20250130T020000Z", "20250131T020000Z"]
    older, newer = backups
    assert not older.has_manifest and older.total_size == 10
    assert newer.has_manifest and newer.total_size == 6200
    assert newer.started_at == datetime(2025, 1, 31, 2, tzinfo=UTC)
    assert set(newer.objects) == {"manifest.json", "database.dump", "artifacts/stable/model.onnx"}
