"""The one module that talks to the object store (any S3-compatible server), via boto3.

Uploads stream: `upload_stream` reads its source a part at a time into a multipart upload
(at most ``max_parts_in_flight + 1`` parts in memory) and hashes the bytes as they pass.
A failed or interrupted upload is aborted, and one cut short by SIGKILL never completes,
so a half-written object is never visible under its key. Every boto3/botocore failure
leaves this module as one of our errors: AccessDenied (exit 3) or StorageError (exit 5).
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from forecastops.backup.errors import AccessDenied, BackupError, StorageError
from forecastops.backup.settings import MiB, StoreConfig

MAX_PARTS = 10_000
READ_CHUNK = 1 * MiB

_DENIED_CODES = frozenset(
    {
        "403",
        "AccessDenied",
        "AllAccessDisabled",
        "ExpiredToken",
        "Forbidden",
        "InvalidAccessKeyId",
        "InvalidToken",
        "SignatureDoesNotMatch",
        "TokenRefreshRequired",
    }
)
_MISSING_CODES = frozenset({"404", "NoSuchKey", "NotFound"})


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


Progress = Callable[[int], None]


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    sha256: str


def classify_error(code: str, status: int | None) -> type[BackupError]:
    """The error kind for an S3 error code and HTTP status."""
    if code in _DENIED_CODES or status == 403:
        return AccessDenied
    return StorageError


def throttle_delay(sent: int, elapsed: float, rate: int | None) -> float:
    """Seconds to sleep so that `sent` bytes in `elapsed` seconds stay within `rate` per second."""
    if not rate:
        return 0.0
    return max(0.0, sent / rate - elapsed)


class ObjectStore:
    def __init__(self, config: StoreConfig, *, client: Any | None = None) -> None:
        self.config = config
        self.bucket = config.bucket
        self._client = client if client is not None else _make_client(config)

    # --- reading -----------------------------------------------------------------------

    def check_access(self) -> None:
        """Fail early, before any work, if the bucket is missing or the keys are wrong."""
        with self._errors(f"access bucket {self.bucket}"):
            self._client.head_bucket(Bucket=self.bucket)

    def list_sizes(self, prefix: str) -> dict[str, int]:
        """Every object under `prefix` and its size: all pages, or an error (never a part)."""
        found: dict[str, int] = {}
        with self._errors(f"list s3://{self.bucket}/{prefix}"):
            paginator = self._client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    found[item["Key"]] = int(item["Size"])
        return found

    def read_small(self, key: str, limit: int) -> bytes | None:
        """A small object's bytes, at most `limit` + 1 of them (None if it does not exist)."""
        with self._errors(f"read s3://{self.bucket}/{key}"):
            try:
                response = self._client.get_object(Bucket=self.bucket, Key=key)
            except Exception as exc:
                if _error_code(exc) in _MISSING_CODES:
                    return None
                raise
            with contextlib.closing(response["Body"]) as body:
                return bytes(body.read(limit + 1))

    @contextmanager
    def open(self, key: str) -> Iterator[Readable]:
        """The object as a stream; read errors surface as our errors too."""
        action = f"read s3://{self.bucket}/{key}"
        with self._errors(action):
            body = self._client.get_object(Bucket=self.bucket, Key=key)["Body"]
        try:
            yield _GuardedReader(body, lambda: self._errors(action))
        finally:
            body.close()

    def download(self, key: str) -> Iterator[bytes]:
        """The object's bytes in chunks of up to 1 MiB, as they arrive."""
        with self.open(key) as stream:
            while chunk := stream.read(READ_CHUNK):
                yield chunk

    # --- writing -----------------------------------------------------------------------

    def put_small(self, key: str, data: bytes, content_type: str) -> StoredObject:
        with self._errors(f"write s3://{self.bucket}/{key}"):
            self._client.put_object(
                Bucket=self.bucket, Key=key, Body=data, ContentType=content_type
            )
        return self._confirmed(StoredObject(key, len(data), hashlib.sha256(data).hexdigest()))

    def upload_stream(
        self, key: str, source: Readable, *, progress: Progress | None = None
    ) -> StoredObject:
        """Stream `source` to `key` until it ends; the object appears only when complete."""
        reader = _HashingReader(source, self.config.max_bytes_per_second, progress)
        first = reader.read_part(self.config.part_size)
        if len(first) < self.config.part_size:
            with self._errors(f"write s3://{self.bucket}/{key}"):
                self._client.put_object(Bucket=self.bucket, Key=key, Body=first)
        else:
            self._multipart(key, first, reader)
        return self._confirmed(StoredObject(key, reader.size, reader.hexdigest()))

    def delete(self, keys: list[str]) -> None:
        """Delete `keys` in batches, in the order given; any failure raises."""
        for start in range(0, len(keys), 1000):
            batch = keys[start : start + 1000]
            with self._errors(f"delete from s3://{self.bucket}"):
                response = self._client.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True},
                )
            errors = response.get("Errors") or []
            if errors:
                first = errors[0]
                kind = classify_error(str(first.get("Code", "")), None)
                raise kind(
                    f"cannot delete s3://{self.bucket}/{first.get('Key')}: {first.get('Code')}"
                )

    def abort_stale_uploads(self, prefix: str, older_than: datetime) -> int:
        """Abort multipart uploads under `prefix` begun before `older_than` (killed backups)."""
        aborted = 0
        with self._errors(f"list multipart uploads under s3://{self.bucket}/{prefix}"):
            paginator = self._client.get_paginator("list_multipart_uploads")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                for upload in page.get("Uploads", []):
                    initiated = upload.get("Initiated")
                    if isinstance(initiated, datetime) and initiated < older_than:
                        self._client.abort_multipart_upload(
                            Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                        )
                        aborted += 1
        return aborted

    # --- internals ---------------------------------------------------------------------

    def _multipart(self, key: str, first: bytes, reader: _HashingReader) -> None:
        with self._errors(f"start upload to s3://{self.bucket}/{key}"):
            upload_id = self._client.create_multipart_upload(Bucket=self.bucket, Key=key)[
                "UploadId"
            ]
        try:
            parts = self._upload_parts(key, upload_id, first, reader)
            with self._errors(f"complete upload to s3://{self.bucket}/{key}"):
                self._client.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": parts},
                )
        except BaseException:
            self._abort(key, upload_id)
            raise

    def _upload_parts(
        self, key: str, upload_id: str, first: bytes, reader: _HashingReader
    ) -> list[dict[str, Any]]:
        in_flight = max(1, self.config.max_parts_in_flight)
        parts: list[dict[str, Any]] = []
        pending: deque[Future[dict[str, Any]]] = deque()
        with ThreadPoolExecutor(max_workers=in_flight, thread_name_prefix="s3-part") as pool:
            data, number = first, 1
            while data:
                if number > MAX_PARTS:
                    raise StorageError(
                        f"s3://{self.bucket}/{key}: more than {MAX_PARTS} parts; "
                        "raise FORECASTOPS_BACKUP_PART_SIZE_MIB"
                    )
                pending.append(pool.submit(self._upload_part, key, upload_id, number, data))
                while len(pending) >= in_flight:
                    parts.append(pending.popleft().result())
                data, number = reader.read_part(self.config.part_size), number + 1
            parts.extend(future.result() for future in pending)
        return parts

    def _upload_part(self, key: str, upload_id: str, number: int, data: bytes) -> dict[str, Any]:
        with self._errors(f"upload part {number} of s3://{self.bucket}/{key}"):
            response = self._client.upload_part(
                Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data
            )
        return {"PartNumber": number, "ETag": response["ETag"]}

    def _abort(self, key: str, upload_id: str) -> None:
        # If this fails too, the upload never completes; retention aborts it later.
        with contextlib.suppress(Exception):
            self._client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)

    def _confirmed(self, stored: StoredObject) -> StoredObject:
        """Read back the object's size: what the server holds is what we sent."""
        with self._errors(f"check s3://{self.bucket}/{stored.key}"):
            head = self._client.head_object(Bucket=self.bucket, Key=stored.key)
        if int(head["ContentLength"]) != stored.size:
            raise StorageError(
                f"s3://{self.bucket}/{stored.key} holds {head['ContentLength']} bytes "
                f"after {stored.size} were sent"
            )
        return stored

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        try:
            yield
        except BackupError:
            raise
        except Exception as exc:
            error = _translate(exc, action, self.config)
            if error is None:
                raise
            raise error from exc


class _GuardedReader:
    """A response body whose read errors are translated by `guard`."""

    def __init__(self, body: Any, guard: Callable[[], Any]) -> None:
        self._body = body
        self._guard = guard

    def read(self, size: int = -1, /) -> bytes:
        with self._guard():
            return bytes(self._body.read(size))


class _HashingReader:
    """Reads a source in parts, hashing, counting, reporting and (optionally) throttling."""

    def __init__(self, source: Readable, rate: int | None, progress: Progress | None) -> None:
        self._source = source
        self._rate = rate
        self._progress = progress
        self._digest = hashlib.sha256()
        self._started = time.monotonic()
        self.size = 0

    def read_part(self, part_size: int) -> bytes:
        """Up to `part_size` bytes: fewer only at the end of the source."""
        chunks: list[bytes] = []
        wanted = part_size
        while wanted > 0:
            chunk = self._source.read(min(wanted, READ_CHUNK))
            if not chunk:
                break
            chunks.append(chunk)
            wanted -= len(chunk)
            self._count(chunk)
        return b"".join(chunks)

    def hexdigest(self) -> str:
        return self._digest.hexdigest()

    def _count(self, chunk: bytes) -> None:
        self._digest.update(chunk)
        self.size += len(chunk)
        if self._progress is not None:
            self._progress(len(chunk))
        delay = throttle_delay(self.size, time.monotonic() - self._started, self._rate)
        if delay > 0:
            time.sleep(delay)


def _make_client(config: StoreConfig) -> Any:
    import boto3
    from botocore.config import Config

    boto_config = Config(
        s3={"addressing_style": config.addressing_style},
        retries={"max_attempts": config.max_attempts, "mode": "standard"},
        connect_timeout=config.connect_timeout,
        read_timeout=config.read_timeout,
    )
    return boto3.client(
        "s3",
        endpoint_url=config.endpoint,
        region_name=config.region,
        aws_access_key_id=_reveal(config.access_key_id),
        aws_secret_access_key=_reveal(config.secret_access_key),
        aws_session_token=_reveal(config.session_token),
        config=boto_config,
    )


def _reveal(secret: Any) -> str | None:
    return secret.get_secret_value() if secret is not None else None


def _error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def _translate(exc: Exception, action: str, config: StoreConfig) -> BackupError | None:
    """Our error for a boto3/botocore exception, or None if it is not one of theirs."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
    )

    where = config.endpoint or "AWS S3"
    if isinstance(exc, NoCredentialsError):
        return AccessDenied(
            f"cannot {action}: no credentials (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
        )
    if isinstance(exc, ClientError):
        code = _error_code(exc)
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        kind = classify_error(code, status)
        if kind is AccessDenied:
            return AccessDenied(
                f"cannot {action}: access denied ({code or status}); check the credentials "
                "(AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY) and the bucket policy"
            )
        if code in {"NoSuchBucket", "404"} and action.startswith("access bucket"):
            return StorageError(f"cannot {action}: the bucket does not exist at {where}")
        return StorageError(f"cannot {action}: {code or status}: {_message(exc)}")
    if isinstance(exc, EndpointConnectionError):
        return StorageError(f"cannot {action}: cannot reach {where}")
    if isinstance(exc, BotoCoreError):
        return StorageError(f"cannot {action}: {exc}")
    if isinstance(exc, OSError):
        return StorageError(f"cannot {action}: {exc}")
    return None


def _message(exc: Any) -> str:
    return str(exc.response.get("Error", {}).get("Message", "")) or type(exc).__name__
