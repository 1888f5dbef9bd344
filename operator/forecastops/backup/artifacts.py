"""The one module that reads model files at their source: file://, s3:// and http(s)://.

Each source is opened as a stream (`read(n)`), so a large model is never held whole in
memory; the caller hashes what passes. s3:// goes through `storage.ObjectStore` with the
model store's own endpoint and keys.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from forecastops.backup.errors import StorageError, UsageError
from forecastops.backup.settings import ArtifactRef, StoreConfig
from forecastops.backup.storage import ObjectStore, Readable

HTTP_TIMEOUT_SECONDS = 60.0


def redact(uri: str) -> str:
    """`uri` without user info or query string (they may carry credentials)."""
    parts = urlsplit(uri)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def s3_location(uri: str) -> tuple[str, str]:
    """``s3://bucket/path/model.onnx`` -> (bucket, path/model.onnx)."""
    parts = urlsplit(uri)
    key = unquote(parts.path).lstrip("/")
    if parts.scheme != "s3" or not parts.netloc or not key:
        raise UsageError(f"{redact(uri)} is not s3://<bucket>/<key>")
    return parts.netloc, key


@contextmanager
def open_artifact(ref: ArtifactRef, model_store: StoreConfig | None) -> Iterator[Readable]:
    """The model file's bytes as a stream."""
    if ref.scheme == "file":
        with _open_file(ref.uri) as stream:
            yield stream
    elif ref.scheme == "s3":
        with _open_s3(ref.uri, model_store) as stream:
            yield stream
    elif ref.scheme in ("http", "https"):
        with _open_http(ref.uri) as stream:
            yield stream
    else:
        raise UsageError(f"{ref.role} model: cannot back up {redact(ref.uri)} (unsupported scheme)")


@contextmanager
def _open_file(uri: str) -> Iterator[Readable]:
    path = Path(unquote(urlsplit(uri).path))
    try:
        stream = path.open("rb")
    except OSError as exc:
        raise StorageError(f"cannot read model file {path}: {exc.strerror or exc}") from None
    with stream:
        yield stream


@contextmanager
def _open_s3(uri: str, model_store: StoreConfig | None) -> Iterator[Readable]:
    bucket, key = s3_location(uri)
    store = ObjectStore(replace(model_store or StoreConfig(bucket=""), bucket=bucket))
    with store.open(key) as stream:
        yield stream


@contextmanager
def _open_http(uri: str) -> Iterator[Readable]:
    import httpx

    try:
        with (
            httpx.Client(timeout=HTTP_TIMEOUT_SECONDS, follow_redirects=True) as client,
            client.stream("GET", uri) as response,
        ):
            if response.status_code != 200:
                raise StorageError(f"GET {redact(uri)} answered HTTP {response.status_code}")
            yield _IteratorReader(response.iter_bytes())
    except httpx.HTTPError as exc:  # its message may quote the URL with a token: not shown
        raise StorageError(f"GET {redact(uri)} failed: {type(exc).__name__}") from None


class _IteratorReader:
    """`read(n)` over an iterator of byte chunks."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks: Iterator[Any] = iter(chunks)
        self._buffer = b""

    def read(self, size: int = -1, /) -> bytes:
        while size < 0 or len(self._buffer) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer += chunk
        if size < 0:
            data, self._buffer = self._buffer, b""
        else:
            data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data
