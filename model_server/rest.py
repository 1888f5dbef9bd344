"""HTTP endpoints. They speak HTTP and JSON only; the data plane does the rest.

`Endpoints` holds every endpoint as a method, and `routes` is the flat route table
(MLServer's shape: ``rest/endpoints.py`` and ``rest/app.py``). Two kinds of route:

- Hot routes (``POST /v2/models/{name}/infer``, ``POST /v1/forecast``) are raw ASGI
  handlers (`hot_endpoint`): credentials checked, body read with a size limit, parsed
  with orjson (`protocol`), predicted, answered, and counted in the request metrics,
  with no pydantic model, dependency injection or middleware on the way. They catch
  their own errors. FastAPI still documents them (`HotRoute`, `openapi`). Each
  inference answer, an error too, names the revision that gave it in the header
  `contract.REVISION_HEADER`.
- Everything else is ordinary FastAPI: health and readiness (open, for probes), server
  and model metadata (credentials required), and ``/metrics`` (open, for scrapers).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from importlib.metadata import PackageNotFoundError, version
from time import perf_counter
from typing import Any

import orjson
from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from model_server import openapi
from model_server.actuals import decode_actuals, write_actuals
from model_server.auth import Authenticator
from model_server.contract import LIVE_PATH, METRICS_PATH, READY_PATH, REVISION_HEADER
from model_server.dataplane import DataPlane
from model_server.errors import InvalidInput, ModelServerError, PayloadTooLarge
from model_server.metrics import Metrics
from model_server.protocol import (
    decode_forecast_request,
    decode_infer_request,
    encode_forecast_response,
    encode_infer_response,
)

log = logging.getLogger(__name__)

SERVER_NAME = "forecastops-model-server"
INTERNAL_ERROR = b'{"error":"internal error"}'
CLIENT_CLOSED = 499  # nginx's code for "the client went away before the answer"
Handle = Callable[[Scope, bytes, float], Awaitable[bytes]]


class ClientDisconnected(Exception):
    pass


class HotRoute(APIRoute):
    """A route served by a raw ASGI app. FastAPI documents it from `responses` and
    ``openapi_extra`` only: the endpoint it sees has no parameters."""

    def __init__(self, path: str, app: ASGIApp, **kwargs: Any) -> None:
        super().__init__(path, _no_parameters, **kwargs)
        self.app = app


async def _no_parameters() -> None:
    """Stands in for a hot route's handler where FastAPI reads a signature."""


def error_body(exc: ModelServerError) -> bytes:
    return orjson.dumps({"error": exc.message})


async def read_body(receive: Receive, headers: Iterable[tuple[bytes, bytes]], limit: int) -> bytes:
    """The request body; `PayloadTooLarge` as soon as it (or its Content-Length) exceeds
    `limit` bytes."""
    for name, value in headers:
        if name == b"content-length":
            try:
                length = int(value)
            except ValueError:
                raise InvalidInput("invalid Content-Length header") from None
            if length > limit:
                raise PayloadTooLarge(f"request body of {length} bytes exceeds {limit} bytes")
            break
    message = await receive()
    if message["type"] == "http.disconnect":
        raise ClientDisconnected
    body: bytes = message.get("body", b"")
    if len(body) > limit:
        raise PayloadTooLarge(f"request body exceeds {limit} bytes")
    if not message.get("more_body", False):
        return body
    chunks, size = [body], len(body)
    while message.get("more_body", False):
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body exceeds {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def hot_endpoint(
    label: str,
    handle: Handle,
    *,
    auth: Authenticator,
    metrics: Metrics,
    max_body_bytes: int,
    headers: Sequence[tuple[bytes, bytes]] = (),
) -> ASGIApp:
    """The ASGI app of a hot route: `handle(scope, body, started)` returns the JSON
    answer; errors become ``{"error": ...}``; every request is counted under `label`.
    `headers` go on every answer, errors included (encoded once, here)."""
    fixed = tuple(headers)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        started = perf_counter()
        headers = scope["headers"]
        extra: Iterable[tuple[str, str]] = ()
        try:
            auth.check(headers)
            body = await read_body(receive, headers, max_body_bytes)
            status, payload = 200, await handle(scope, body, started)
        except ModelServerError as exc:
            status, payload, extra = exc.status_code, error_body(exc), exc.headers.items()
        except ClientDisconnected:
            metrics.observe_request(label, CLIENT_CLOSED, perf_counter() - started)
            return
        except Exception:
            log.exception("Unhandled error endpoint=%s", label)
            status, payload = 500, INTERNAL_ERROR
        response_headers = [
            (b"content-type", b"application/json"),
            (b"content-length", b"%d" % len(payload)),
            *fixed,
            *((k.encode(), v.encode()) for k, v in extra),
        ]
        await send({"type": "http.response.start", "status": status, "headers": response_headers})
        await send({"type": "http.response.body", "body": payload})
        metrics.observe_request(label, status, perf_counter() - started)

    return app


def json_response(document: Any, status_code: int = 200) -> Response:
    return Response(orjson.dumps(document), status_code, media_type="application/json")


class Endpoints:
    """Every endpoint as a method: HTTP in, HTTP out; the data plane does the rest.

    `infer` and `forecast` are hot: raw ASGI handlers' bodies (`hot_endpoint` wraps them
    with credentials, the body limit, errors and metrics). The others are FastAPI
    endpoints. `routes` lays them out in one flat table.
    """

    def __init__(self, data_plane: DataPlane, auth: Authenticator) -> None:
        self.data_plane = data_plane
        self.auth = auth

    # --- hot ---------------------------------------------------------------------------
    async def infer(self, scope: Scope, body: bytes, started: float) -> bytes:
        plane = self.data_plane
        model = plane.model(scope["path_params"]["name"])
        request = decode_infer_request(body)
        predictions = await plane.infer(model, request, started)
        return encode_infer_response(plane.name, model.version, request.id, predictions)

    async def forecast(self, scope: Scope, body: bytes, started: float) -> bytes:
        plane = self.data_plane
        model = plane.model()
        request = decode_forecast_request(body, model.feature_names)
        predictions = await plane.infer(model, request, started)
        return encode_forecast_response(plane.name, model.version, request.id, predictions)

    async def actuals(self, scope: Scope, body: bytes, started: float) -> bytes:
        rows = decode_actuals(body)
        url = self.data_plane.settings.database_url
        stored = await write_actuals(url.get_secret_value() if url else None, rows)
        return orjson.dumps({"stored": stored})

    # --- health (open, for probes and scrapers) ------------------------------------------
    async def live(self) -> Response:
        return json_response({"live": True})

    async def ready(self) -> Response:
        self.data_plane.model()
        return json_response({"ready": True})

    async def model_ready(self, name: str) -> Response:
        self.data_plane.model(name)
        return json_response({"name": name, "ready": True})

    async def metrics(self) -> Response:
        body, content_type = self.data_plane.metrics.render()
        return Response(body, media_type=content_type)

    # --- metadata (credentials required) ---------------------------------------------
    async def server_metadata(self, request: Request) -> Response:
        self.auth.check(request.scope["headers"])
        return json_response({"name": SERVER_NAME, "version": _version(), "extensions": []})

    async def model_metadata(self, name: str, request: Request) -> Response:
        self.auth.check(request.scope["headers"])
        return json_response(self.data_plane.model_metadata(name))


def routes(endpoints: Endpoints) -> list[APIRoute]:
    """The route table: path, method, endpoint and its documentation, one row each."""
    auth, plane = endpoints.auth, endpoints.data_plane
    secured = (
        {"security": openapi.security(auth.uses_api_keys, auth.uses_jwt)} if auth.enabled else {}
    )
    auth_errors = (401,) if auth.enabled else ()

    # Every inference answer names the revision that gave it (contract.REVISION_HEADER).
    answered_by = ((REVISION_HEADER.encode(), plane.settings.revision.encode()),)

    def post(
        path: str,
        label: str,
        handle: Handle,
        *,
        request: dict[str, Any],
        answer: tuple[dict[str, Any], str],
        errors: tuple[int, ...],
        inference: bool = True,
        **docs: Any,
    ) -> APIRoute:
        """A hot route: JSON `request` in, `answer` (schema, description) out, or `errors`;
        an `inference` route's every answer names the revision that gave it."""
        ok = openapi.json_body(*answer)
        endpoint = hot_endpoint(
            label,
            handle,
            auth=auth,
            metrics=plane.metrics,
            max_body_bytes=plane.settings.max_body_bytes,
            headers=answered_by if inference else (),
        )
        return HotRoute(
            path,
            endpoint,
            methods=["POST"],
            responses={
                200: openapi.answered_by(ok) if inference else ok,
                **openapi.errors(*errors),
            },
            openapi_extra={
                **openapi.request_body(request, path_name="{name}" in path),
                **secured,
            },
            **docs,
        )

    def get(path: str, endpoint: Callable[..., Awaitable[Response]], **docs: Any) -> APIRoute:
        return APIRoute(path, endpoint, methods=["GET"], **docs)

    return [
        post(
            "/v2/models/{name}/infer",
            "infer",
            endpoints.infer,
            request=openapi.INFER_REQUEST,
            answer=(openapi.INFER_RESPONSE, "predictions"),
            errors=(400, *auth_errors, 404, 413, 503),
            summary="Predict (Open Inference Protocol v2, JSON tensors)",
            tags=["inference"],
        ),
        post(
            "/v1/forecast",
            "forecast",
            endpoints.forecast,
            request=openapi.FORECAST_REQUEST,
            answer=(openapi.FORECAST_RESPONSE, "predictions in row order"),
            errors=(400, *auth_errors, 413, 503),
            summary="Forecast from rows of named features",
            tags=["inference"],
        ),
        post(
            "/v1/actuals",
            "actuals",
            endpoints.actuals,
            request=openapi.ACTUALS_REQUEST,
            answer=(openapi.ACTUALS_RESPONSE, "how many were stored"),
            errors=(400, *auth_errors, 404, 413, 503),
            inference=False,
            summary="Store observed demand per series and target period (versioned)",
            tags=["actuals"],
        ),
        get(LIVE_PATH, endpoints.live, tags=["health"], summary="Liveness"),
        get(
            READY_PATH,
            endpoints.ready,
            tags=["health"],
            summary="Readiness: the model passed its golden request",
            responses=openapi.errors(503),
        ),
        get(
            "/v2/models/{name}/ready",
            endpoints.model_ready,
            tags=["health"],
            summary="Model readiness",
            responses=openapi.errors(404, 503),
        ),
        get(
            "/v2",
            endpoints.server_metadata,
            tags=["metadata"],
            summary="Server metadata",
            responses=openapi.errors(*auth_errors),
            openapi_extra=secured or None,
        ),
        get(
            "/v2/models/{name}",
            endpoints.model_metadata,
            tags=["metadata"],
            summary="Model metadata: features, version, backtest metrics",
            responses={
                200: openapi.json_body(openapi.MODEL_METADATA, "model metadata"),
                **openapi.errors(*auth_errors, 404, 503),
            },
            openapi_extra=secured or None,
        ),
        get(
            METRICS_PATH,
            endpoints.metrics,
            tags=["health"],
            summary="Prometheus metrics",
            responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
        ),
    ]


def _version() -> str:
    try:
        return version("forecastops")
    except PackageNotFoundError:
        return "0+unknown"
