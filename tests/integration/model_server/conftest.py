"""Fixtures for the model server's integration tests: a tiny model, the app in-process,
and real `forecast-server` processes on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from prometheus_client.parser import text_string_to_metric_families

from devenv.harness import wait_for
from devenv.paths import free_port
from model_server.app import ModelServerApp
from model_server.main import build_app
from model_server.settings import ServerSettings
from model_training.train import TrainResult

API_KEY = "integration-test-key"


@pytest.fixture
def auth() -> dict[str, str]:
    return {"X-API-Key": API_KEY}


@dataclass
class InProcess:
    app: ModelServerApp
    client: httpx.AsyncClient  # sends the API key
    stop: Callable[[], Awaitable[None]]  # ends the lifespan (flushes the prediction log)

    async def metric(self, name: str, **labels: str) -> float:
        """The sum of the samples of `name` whose labels include `labels`."""
        text = self.app.state.data_plane.metrics.render()[0].decode()
        return sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == name and labels.items() <= sample.labels.items()
        )


@pytest_asyncio.fixture
async def in_process(
    tiny_model: TrainResult, tmp_path: Path
) -> AsyncIterator[Callable[..., Awaitable[InProcess]]]:
    """`await start(**settings)`: the app with its lifespan running, the first load attempt
    over, and an httpx client on it. Stopped (flushing the prediction log) at the end
    of the test, or earlier with `await stop()`."""
    async with AsyncExitStack() as stack:

        async def start(**overrides: Any) -> InProcess:
            values: dict[str, Any] = {
                "model_uri": tiny_model.model_path.as_uri(),
                "model_dir": tmp_path / "models",
                "api_keys": [API_KEY],
                **overrides,
            }
            app = build_app(ServerSettings(**values))
            inner = AsyncExitStack()
            stack.push_async_callback(inner.aclose)
            await inner.enter_async_context(app.router.lifespan_context(app))
            await app.state.data_plane.wait_first_attempt()
            client = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app),
                base_url="http://server",
                headers={"X-API-Key": API_KEY},
            )
            await inner.enter_async_context(client)
            return InProcess(app, client, inner.aclose)

        yield start


@dataclass
class ServerProcess:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 20.0) -> None:
        def ready() -> bool:
            return httpx.get(f"{self.url}/v2/health/ready", timeout=1).status_code == 200

        wait_for(ready, timeout, f"the model to be ready; log:\n{self.log()}", every=0.1)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


@pytest.fixture
def server_process(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """`start(env, *args)`: a `forecast-server` process on 127.0.0.1 and a free port, once
    it answers /v2/health/live. Stopped by its pid at the end of the test."""
    started: list[ServerProcess] = []

    def start(env: dict[str, str], *args: str) -> ServerProcess:
        port = free_port()
        log_path = tmp_path / f"server-{port}.log"
        clean = {k: v for k, v in os.environ.items() if not k.startswith("PREDICTION_")}
        command = [str(Path(sys.executable).with_name("forecast-server"))]
        command += ["--host", "127.0.0.1", "--port", str(port), *args]
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                command, env={**clean, **env}, stdout=log, stderr=subprocess.STDOUT
            )
        server = ServerProcess(f"http://127.0.0.1:{port}", process, log_path)
        started.append(server)

        def live() -> bool:
            assert process.poll() is None, f"forecast-server exited:\n{server.log()}"
            try:
                return httpx.get(f"{server.url}/v2/health/live", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(live, 20, "forecast-server to answer /v2/health/live", every=0.1)
        return server

    yield start
    for server in started:
        server.stop()
