"""The streaming upload's logic, against an in-memory stand-in for the S3 client.

(The real S3 server is exercised in tests/integration/backup.)
"""

from __future__ import annotations

import hashlib
import io
import os
from typing import Any

import pytest
from botocore.exceptions import ClientError
from forecastops.backup.errors import AccessDenied, DatabaseError, StorageError
from forecastops.backup.settings import MiB, StoreConfig
from forecastops.backup.storage import ObjectStore, throttle_delay

PART = 5 * MiB


class FakeS3:
    """Just enough of a boto3 S3 client; records every call."""

    def __init__(self, fail_part: int | None = None) -> None:
        self.objects: dict[str, bytes] = {}
        self.uploads: dict[str, dict[int, bytes]] = {}
        self.calls: list[str] = []
        self.fail_part = fail_part

    def put_object(self, *, Bucket: str, Key: str, Body: bytes, **_: Any) -> dict[str, Any]:
        self.calls.append("put_object")
        self.objects[Key] = bytes(Body)
        return {}

    def create_multipart_upload(self, *, Bucket: str, Key: str) -> dict[str, Any]:
        self.calls.append("create_multipart_upload")
        self.uploads["u1"] = {}
        return {"UploadId": "u1"}

    def upload_part(
        self, *, UploadId: str, PartNumber: int, Body: bytes, **_: Any
    ) -> dict[str, Any]:
        self.calls.append(f"upload_part {PartNumber} {len(Body)}")
        if PartNumber == self.fail_part:
            raise ClientError({"Error": {"Code": "InternalError", "Message": "boom"}}, "UploadPart")
        self.uploads[UploadId][PartNumber] = bytes(Body)
        return {"ETag": f'"{PartNumber}"'}

    def complete_multipart_upload(
        self, *, Key: str, UploadId: str, MultipartUpload: dict[str, Any], **_: Any
    ) -> dict[str, Any]:
        self.calls.append("complete_multipart_upload")
        numbers = [part["PartNumber"] for part in MultipartUpload["Parts"]]
        assert numbers == sorted(numbers) == list(range(1, len(numbers) + 1))
        parts = self.uploads.pop(UploadId)
        self.objects[Key] = b"".join(parts[n] for n in numbers)
        return {}

    def abort_multipart_upload(self, *, UploadId: str, **_: Any) -> dict[str, Any]:
        self.calls.append("abort_multipart_upload")
        self.uploads.pop(UploadId, None)
        return {}

    def head_object(self, *, Key: str, **_: Any) -> dict[str, Any]:
        return {"ContentLength": len(self.objects[Key])}

    def head_bucket(self, **_: Any) -> dict[str, Any]:
        raise ClientError(
            {
                "Error": {"Code": "403", "Message": "Forbidden"},
                "ResponseMetadata": {"HTTPStatusCode": 403},
            },
            "HeadBucket",
        )

    def delete_objects(self, *, Delete: dict[str, Any], **_: Any) -> dict[str, Any]:
        keys = [o["Key"] for o in Delete["Objects"]]
        self.calls.append(f"delete {keys}")
        return {"Errors": [{"Key": keys[0], "Code": "AccessDenied"}]} if "locked" in keys[0] else {}


def store(client: FakeS3, **changes: Any) -> ObjectStore:
    config = StoreConfig(bucket="b", part_size=PART, **changes)
    return ObjectStore(config, client=client)


@pytest.mark.parametrize(
    ("size", "calls"),
    [
        (0, ["put_object"]),
        (1000, ["put_object"]),
        (PART - 1, ["put_object"]),
        (PART, ["create_multipart_upload", f"upload_part 1 {PART}", "complete_multipart_upload"]),
        (
            3 * PART + 7,
            [
                "create_multipart_upload",
                f"upload_part 1 {PART}",
                f"upload_part 2 {PART}",
                f"upload_part 3 {PART}",
                "upload_part 4 7",
                "complete_multipart_upload",
            ],
        ),
    ],
)
def test_upload_stream(size: int, calls: list[str]) -> None:
    data = os.urandom(size)
    client = FakeS3()
    seen: list[int] = []

    stored = store(client).upload_stream("k", io.BytesIO(data), progress=seen.append)

    assert sorted(client.calls) == sorted(calls)  # parts upload concurrently
    assert client.objects["k"] == data
    assert (stored.key, stored.size, stored.sha256) == ("k", size, hashlib.sha256(data).hexdigest())
    assert sum(seen) == size


class FailingSource:
    """A stream that fails after `after` bytes, as pg_dump does when the database goes away."""

    def __init__(self, after: int) -> None:
        self._left = after

    def read(self, size: int = -1, /) -> bytes:
        if self._left <= 0:
            raise DatabaseError("pg_dump failed (exit 1)")
        n = min(size, self._left)
        self._left -= n
        return b"x" * n


def test_a_failing_source_aborts_the_upload_and_leaves_no_object() -> None:
    client = FakeS3()
    with pytest.raises(DatabaseError, match="pg_dump failed"):
        store(client).upload_stream("k", FailingSource(2 * PART + 10))
    assert "abort_multipart_upload" in client.calls
    assert "complete_multipart_upload" not in client.calls
    assert client.objects == {} and client.uploads == {}


def test_a_failing_part_aborts_the_upload() -> None:
    client = FakeS3(fail_part=2)
    with pytest.raises(StorageError, match="upload part 2 of s3://b/k: InternalError"):
        store(client).upload_stream("k", io.BytesIO(b"y" * (3 * PART)))
    assert "abort_multipart_upload" in client.calls
    assert client.objects == {}


def test_access_denied_is_its_own_error() -> None:
    with pytest.raises(AccessDenied, match="access denied"):
        store(FakeS3()).check_access()


def test_a_failed_delete_raises() -> None:
    client = FakeS3()
    s = store(client)
    s.delete(["a", "b"])
    with pytest.raises(AccessDenied, match="cannot delete s3://b/locked"):
        s.delete(["locked"])


def test_delete_batches_by_a_thousand() -> None:
    client = FakeS3()
    store(client).delete([f"k{i}" for i in range(2500)])
    assert len([c for c in client.calls if c.startswith("delete")]) == 3


@pytest.mark.parametrize(
    ("sent", "elapsed", "rate", "delay"),
    [
        (1000, 0.0, None, 0.0),
        (1000, 0.0, 0, 0.0),
        (1000, 0.0, 1000, 1.0),
        (1000, 0.4, 1000, 0.6),
        (1000, 1.0, 1000, 0.0),
        (1000, 5.0, 1000, 0.0),  # behind schedule: never negative
        (3 * MiB, 1.0, MiB, 2.0),
    ],
)
def test_throttle_delay(sent: int, elapsed: float, rate: int | None, delay: float) -> None:
    assert throttle_delay(sent, elapsed, rate) == pytest.approx(delay)
