"""Fixtures for the model server's unit tests: one tiny model, trained once per session."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from model_server.main import build_app
from model_server.settings import ServerSettings
from model_training.train import TrainResult

API_KEY = "unit-test-key"


@pytest.fixture
def auth() -> dict[str, str]:
    """Headers with the API key that `make_settings` configures."""
    return {"X-API-Key": API_KEY}


@pytest.fixture
def make_settings(tiny_model: TrainResult, tmp_path: Path) -> Callable[..., ServerSettings]:
    """Settings for the tiny model, with an API key; keyword arguments override."""

    def make(**overrides: Any) -> ServerSettings:
        values: dict[str, Any] = {
            "model_uri": tiny_model.model_path.as_uri(),
            "model_dir": tmp_path / "models",
            "api_keys": [API_KEY],
            **overrides,
        }
        return ServerSettings(**values)

    return make


Serve = Callable[..., Awaitable[httpx.AsyncClient]]


@pytest_asyncio.fixture
async def serve(make_settings: Callable[..., ServerSettings]) -> AsyncIterator[Serve]:
    """Start the app (lifespan included) for some settings, once its first model load attempt ended;
    an httpx client talks to it in-process."""
    async with AsyncExitStack() as stack:

        async def start(**overrides: Any) -> httpx.AsyncClient:
            app = build_app(make_settings(**overrides))
            await stack.enter_async_context(app.router.lifespan_context(app))
            await app.state.data_plane.wait_first_attempt()
            transport = httpx.ASGITransport(app=app)
            client = httpx.AsyncClient(transport=transport, base_url="http://server")
            return await stack.enter_async_context(client)

        yield start
