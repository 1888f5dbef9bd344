"""Fetch the model's bytes from file://, http(s):// or s3:// and verify their sha256.

One attempt per call, bounded by ``download_timeout_seconds``; the data plane retries
failed fetches with backoff. The bytes that are hashed are the bytes that are loaded,
so nothing can change between the check and the load. Remote models are kept in
``model_dir`` under their sha256 (written only after the check), so a restart or a
second worker finds them there instead of downloading again.

boto3 and httpx are imported only for the scheme that needs them: boto3 alone takes
about 0.3 s to import, and the server should be ready within a second of having the file.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlsplit

from model_server.errors import ModelLoadError
from model_server.settings import ServerSettings, redact_uri

log = logging.getLogger(__name__)


async def fetch_model(settings: ServerSettings) -> tuple[bytes, str]:
    """The verified model bytes and their sha256 (`ModelLoadError` on any failure)."""
    expected = settings.model_sha256
    if settings.model_scheme == "file":
        data = await asyncio.to_thread(_read_local, settings.model_uri)
        return data, verify_sha256(data, expected, settings.model_uri)
    assert expected is not None  # settings require it for remote models
    cached = model_dir(settings) / f"{expected}.onnx"
    if cached.is_file():
        data = await asyncio.to_thread(cached.read_bytes)
        if hashlib.sha256(data).hexdigest() == expected:
            return data, expected
    if settings.model_scheme == "s3":
        data = await asyncio.to_thread(_fetch_s3, settings)
    else:
        data = await _fetch_http(settings)
    verify_sha256(data, expected, settings.model_uri)
    try:
        await asyncio.to_thread(_write_atomic, cached, data)
    except OSError as exc:  # a read-only or full disk costs a download next time, no more
        log.warning("Cannot keep the model in %s: %s", cached.parent, exc)
    return data, expected


def verify_sha256(data: bytes, expected: str | None, uri: str) -> str:
    """The sha256 of `data`; `ModelLoadError("checksum")` if it is not `expected`."""
    actual = hashlib.sha256(data).hexdigest()
    if expected is not None and actual != expected:
        raise ModelLoadError(
            "checksum",
            f"sha256 mismatch for {redact_uri(uri)}: expected {expected}, got {actual}; "
            "refusing to load it",
        )
    return actual


def model_dir(settings: ServerSettings) -> Path:
    return settings.model_dir or Path(tempfile.gettempdir()) / "forecast-server-models"


def _read_local(uri: str) -> bytes:
    parts = urlsplit(uri)
    path = Path(unquote(parts.path)) if parts.scheme == "file" else Path(uri)
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ModelLoadError("fetch", f"cannot read {path}: {exc.strerror or exc}") from exc


async def _fetch_http(settings: ServerSettings) -> bytes:
    import httpx

    uri = settings.model_uri
    timeout = httpx.Timeout(settings.download_timeout_seconds)
    headers = {}
    if settings.model_authorization is not None:
        headers["Authorization"] = settings.model_authorization.get_secret_value()
    try:
        # httpx drops Authorization on a redirect to another host, so the credential
        # never leaves the model store's origin.
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=True) as client:
            response = await client.get(uri, headers=headers)
    except httpx.HTTPError as exc:  # messages may quote the URL with its query: not logged
        raise ModelLoadError(
            "fetch", f"GET {redact_uri(uri)} failed: {type(exc).__name__}"
        ) from exc
    if response.status_code != 200:
        raise ModelLoadError("fetch", f"GET {redact_uri(uri)} answered HTTP {response.status_code}")
    return response.content


def _fetch_s3(settings: ServerSettings) -> bytes:
    """Credentials from the settings when given, else boto3's own chain (AWS_*, a role)."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    parts = urlsplit(settings.model_uri)
    bucket, key = parts.netloc, parts.path.lstrip("/")
    timeout = settings.download_timeout_seconds
    config = Config(
        connect_timeout=timeout,
        read_timeout=timeout,
        retries={"max_attempts": 1},
        # S3-compatible servers (MinIO, SeaweedFS, Ceph) rarely do virtual-host buckets
        s3={"addressing_style": "path"} if settings.s3_endpoint_url else None,
    )
    keys = {}
    if settings.s3_access_key_id and settings.s3_secret_access_key:
        keys = {
            "aws_access_key_id": settings.s3_access_key_id.get_secret_value(),
            "aws_secret_access_key": settings.s3_secret_access_key.get_secret_value(),
        }
    client = boto3.client(
        "s3",
        endpoint_url=settings.s3_endpoint_url,
        region_name=settings.s3_region,
        config=config,
        **keys,
    )
    try:
        return client.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "error")
        raise ModelLoadError("fetch", f"s3://{bucket}/{key}: {code}") from exc
    except BotoCoreError as exc:
        raise ModelLoadError("fetch", f"s3://{bucket}/{key}: {exc}") from exc


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
