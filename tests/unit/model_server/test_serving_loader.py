"""Fetching the model and checking its sha256 (file:// and http:// on loopback)."""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from model_server.errors import ModelLoadError
from model_server.loader import fetch_model, verify_sha256
from model_server.settings import ServerSettings

DATA = b"model bytes"
SHA = hashlib.sha256(DATA).hexdigest()


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    path = tmp_path / "model.onnx"
    path.write_bytes(DATA)
    return path


@pytest.fixture
def http_server(model_file: Path) -> Iterator[tuple[str, list[str]]]:
    """Serves `model_file` at /model.onnx on 127.0.0.1; records the paths asked for."""
    requests: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            requests.append(self.path)
            if self.path.split("?")[0] != "/model.onnx":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(DATA)))
            self.end_headers()
            self.wfile.write(model_file.read_bytes())

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", requests
    server.shutdown()
    thread.join(5)


def settings(uri: str, tmp_path: Path, sha: str | None = SHA) -> ServerSettings:
    return ServerSettings(model_uri=uri, model_sha256=sha, model_dir=tmp_path / "cache")


async def load_error(config: ServerSettings) -> ModelLoadError:
    """The ModelLoadError that fetching the model of `config` raises."""
    with pytest.raises(ModelLoadError) as caught:
        await fetch_model(config)
    return caught.value


@pytest.mark.asyncio
async def test_file_uri_and_plain_path(model_file: Path, tmp_path: Path) -> None:
    for uri in (model_file.as_uri(), str(model_file)):
        assert await fetch_model(settings(uri, tmp_path)) == (DATA, SHA)


@pytest.mark.asyncio
async def test_file_without_a_sha256_is_hashed_anyway(model_file: Path, tmp_path: Path) -> None:
    assert await fetch_model(settings(model_file.as_uri(), tmp_path, sha=None)) == (DATA, SHA)


@pytest.mark.asyncio
async def test_file_with_a_wrong_sha256(model_file: Path, tmp_path: Path) -> None:
    error = await load_error(settings(model_file.as_uri(), tmp_path, sha="0" * 64))
    assert error.reason == "checksum"
    assert f"expected {'0' * 64}, got {SHA}" in error.message


@pytest.mark.asyncio
async def test_missing_file(tmp_path: Path) -> None:
    error = await load_error(settings(str(tmp_path / "nope.onnx"), tmp_path))
    assert error.reason == "fetch"


@pytest.mark.asyncio
async def test_http_download_is_verified_then_kept_by_sha256(
    http_server: tuple[str, list[str]], tmp_path: Path
) -> None:
    base, requests = http_server
    config = settings(f"{base}/model.onnx?token=s3cr3t", tmp_path)
    assert await fetch_model(config) == (DATA, SHA)
    assert (tmp_path / "cache" / f"{SHA}.onnx").read_bytes() == DATA
    assert await fetch_model(config) == (DATA, SHA)
    assert len(requests) == 1  # the second time came from model_dir


@pytest.mark.asyncio
async def test_http_wrong_sha256_is_not_kept(
    http_server: tuple[str, list[str]], tmp_path: Path
) -> None:
    base, _ = http_server
    error = await load_error(settings(f"{base}/model.onnx", tmp_path, sha="1" * 64))
    assert error.reason == "checksum"
    assert not (tmp_path / "cache" / f"{'1' * 64}.onnx").exists()


@pytest.mark.asyncio
async def test_http_errors_do_not_leak_the_query(
    http_server: tuple[str, list[str]], tmp_path: Path
) -> None:
    base, _ = http_server
    error = await load_error(settings(f"{base}/missing.onnx?token=s3cr3t", tmp_path))
    assert error.reason == "fetch"
    assert "HTTP 404" in error.message and "s3cr3t" not in error.message


@pytest.mark.asyncio
async def test_unreachable_server(tmp_path: Path) -> None:
    error = await load_error(settings("http://127.0.0.1:1/model.onnx", tmp_path))
    assert error.reason == "fetch" and "ConnectError" in error.message


def test_verify_sha256() -> None:
    assert verify_sha256(DATA, None, "x") == SHA
    assert verify_sha256(DATA, SHA, "x") == SHA
