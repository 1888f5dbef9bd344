"""The whole app in-process: endpoints, errors, auth, limits, readiness, faults, OpenAPI."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import httpx
import jwt
import numpy as np
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from model_server.app import create_app
from model_server.contract import REVISION_HEADER
from model_server.dataplane import DataPlane
from model_server.metrics import Metrics
from model_server.settings import ServerSettings
from model_training.train import TrainResult

pytestmark = pytest.mark.asyncio
INFER = "/v2/models/forecast/infer"
Serve = Callable[..., Awaitable[httpx.AsyncClient]]


def rows(n: int, width: int = 26) -> list[list[float]]:
    return [[float(i + j) for j in range(width)] for i in range(n)]


def infer_body(data: list[list[float]], **extra: object) -> dict[str, object]:
    shape = [len(data), len(data[0]) if data else 26]
    tensor = {"name": "input", "shape": shape, "datatype": "FP32", "data": data}
    return {"inputs": [tensor], **extra}


async def metric(client: httpx.AsyncClient, name: str, **labels: str) -> float:
    text = (await client.get("/metrics")).text
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and labels.items() <= sample.labels.items():
                total += sample.value
    return total


async def test_health_and_metadata(
    auth: dict[str, str], serve: Serve, tiny_model: TrainResult
) -> None:
    client = await serve(revision="rev-1")
    assert (await client.get("/v2/health/live")).json() == {"live": True}
    assert (await client.get("/v2/health/ready")).json() == {"ready": True}
    assert (await client.get("/v2/models/forecast/ready")).json() == {
        "name": "forecast",
        "ready": True,
    }
    server = await client.get("/v2", headers=auth)
    assert server.json()["name"] == "forecastops-model-server"
    meta = (await client.get("/v2/models/forecast", headers=auth)).json()
    assert meta["versions"] == ["1"] and meta["platform"] == "onnxruntime_onnx"
    assert meta["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 26]}]
    assert meta["parameters"]["feature_names"] == list(tiny_model.feature_names)
    assert meta["parameters"]["sha256"] == tiny_model.sha256
    assert meta["parameters"]["revision"] == "rev-1"
    assert meta["parameters"]["metrics"]["wape"] == tiny_model.metrics["wape"]
    assert await metric(client, "prediction_service_model_info", version="1", revision="rev-1") == 1


async def test_infer_and_forecast_agree(
    auth: dict[str, str], serve: Serve, tiny_model: TrainResult
) -> None:
    client = await serve()
    data = rows(3)
    response = await client.post(INFER, json=infer_body(data, id="req-9"), headers=auth)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == "req-9" and body["model_name"] == "forecast"
    (output,) = body["outputs"]
    assert (
        output["name"] == "predictions" and output["shape"] == [3] and output["datatype"] == "FP32"
    )
    instances = [dict(zip(tiny_model.feature_names, row, strict=True)) for row in data]
    response = await client.post("/v1/forecast", json={"instances": instances[::-1]}, headers=auth)
    assert response.status_code == 200, response.text
    assert response.json()["predictions"] == output["data"][::-1]
    assert "id" not in response.json()
    assert (
        await metric(client, "prediction_service_requests_total", endpoint="infer", code="200") == 1
    )
    assert (
        await metric(client, "prediction_service_requests_total", endpoint="forecast", code="200")
        == 1
    )


BAD_INPUTS = [
    pytest.param(infer_body(rows(2, width=25)), 400, "wrong feature count", id="feature-count"),
    pytest.param(
        {"inputs": [{"name": "input", "shape": [1, 26], "datatype": "BYTES", "data": ["a"] * 26}]},
        400,
        "unsupported datatype 'BYTES'",
        id="dtype",
    ),
    pytest.param(
        {"inputs": [{"name": "input", "shape": [1, 26], "datatype": "FP32", "data": ["1"] * 26}]},
        400,
        "data must be numbers, got strings",
        id="strings",
    ),
    pytest.param(infer_body([[1e39] + [0.0] * 25]), 400, "not a finite number", id="infinity"),
    pytest.param(
        b'{"inputs": [{"name": "input", "shape": [1, 1], "datatype": "FP32", "data": [NaN]}]}',
        400,
        "NaN and Infinity are not JSON",
        id="nan",
    ),
    pytest.param(infer_body([]), 400, "empty batch", id="empty"),
    pytest.param(
        infer_body(rows(6)), 413, "batch of 6 rows exceeds the limit of 5 rows", id="oversized"
    ),
    pytest.param(b'{"inputs": [', 400, "malformed JSON", id="malformed"),
    pytest.param(b"", 400, "body is empty", id="no-body"),
]


@pytest.mark.parametrize(("body", "status", "message"), BAD_INPUTS)
async def test_bad_input_is_a_4xx_naming_the_problem(
    auth: dict[str, str], serve: Serve, body: object, status: int, message: str
) -> None:
    client = await serve(max_batch_rows=5)
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    response = await client.post(INFER, content=content, headers=auth)
    assert response.status_code == status
    assert message in response.json()["error"]
    assert await metric(client, "prediction_service_requests_total", code=str(status)) == 1


async def test_unknown_model(auth: dict[str, str], serve: Serve) -> None:
    client = await serve()
    response = await client.post("/v2/models/other/infer", json=infer_body(rows(1)), headers=auth)
    assert response.status_code == 404
    assert response.json() == {"error": "model 'other' not found; this server serves 'forecast'"}
    assert (await client.get("/v2/models/other", headers=auth)).status_code == 404
    assert (await client.get("/v2/models/other/ready")).status_code == 404
    # the unknown name does not become a metric label
    text = (await client.get("/metrics")).text
    assert 'model="other"' not in text


async def test_forecast_rows_name_the_missing_feature(
    auth: dict[str, str], serve: Serve, tiny_model: TrainResult
) -> None:
    client = await serve()
    instance = dict.fromkeys(tiny_model.feature_names[1:], 1.0)
    response = await client.post("/v1/forecast", json={"instances": [instance]}, headers=auth)
    assert response.status_code == 400
    assert response.json()["error"] == "instances[0] is missing feature(s) ['lag_1']"


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "missing credentials"),
        ({"X-API-Key": "wrong"}, "invalid API key"),
        ({"Authorization": "Bearer x.y.z"}, "missing credentials"),  # no JWT configured
    ],
)
async def test_credentials(serve: Serve, headers: dict[str, str], message: str) -> None:
    client = await serve()
    for method, path, body in [
        ("POST", INFER, infer_body(rows(1))),
        ("POST", "/v1/forecast", {"instances": []}),
        ("GET", "/v2", None),
        ("GET", "/v2/models/forecast", None),
    ]:
        response = await client.request(method, path, json=body, headers=headers)
        assert response.status_code == 401, path
        assert message in response.json()["error"]
        assert response.headers["www-authenticate"] == "ApiKey"
    for open_path in (
        "/v2/health/live",
        "/v2/health/ready",
        "/v2/models/forecast/ready",
        "/metrics",
    ):
        assert (await client.get(open_path)).status_code == 200, open_path


async def test_jwt(serve: Serve) -> None:
    secret = "s" * 64
    client = await serve(
        api_keys=[], jwt_key=secret, jwt_audience="forecast", jwt_algorithms="HS256"
    )
    claims = {"aud": "forecast", "exp": int(time.time()) + 60}
    good = {"Authorization": f"Bearer {jwt.encode(claims, secret, algorithm='HS256')}"}
    assert (await client.post(INFER, json=infer_body(rows(1)), headers=good)).status_code == 200
    expired = jwt.encode({**claims, "exp": int(time.time()) - 1}, secret, algorithm="HS256")
    response = await client.post(
        INFER, json=infer_body(rows(1)), headers={"Authorization": f"Bearer {expired}"}
    )
    assert response.status_code == 401 and "expired" in response.json()["error"]
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_body_limit_by_content_length(auth: dict[str, str], serve: Serve) -> None:
    client = await serve(max_body_bytes=2048)
    response = await client.post(INFER, content=b" " * 4096, headers=auth)
    assert response.status_code == 413
    assert "request body of 4096 bytes exceeds 2048 bytes" in response.json()["error"]


async def test_body_limit_without_content_length(
    auth: dict[str, str], make_settings: Callable[..., ServerSettings]
) -> None:
    """A chunked body has no Content-Length: the limit is enforced on the bytes read."""
    settings = make_settings(max_body_bytes=2048)
    app = create_app(settings, DataPlane(settings, Metrics("forecast", "r")))
    chunks = [b"x" * 1024] * 3
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        chunk = chunks.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": INFER,
        "raw_path": INFER.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"x-api-key", auth["X-API-Key"].encode())],
    }
    await app(scope, receive, send)
    assert sent[0]["status"] == 413
    assert orjson.loads(sent[1]["body"]) == {"error": "request body exceeds 2048 bytes"}  # type: ignore[arg-type]


async def test_wrong_method_and_unknown_path(auth: dict[str, str], serve: Serve) -> None:
    client = await serve()
    response = await client.get(INFER, headers=auth)
    assert response.status_code == 405 and response.headers["allow"] == "POST"
    assert response.json() == {"error": "Method Not Allowed"}
    assert (await client.get("/nowhere")).json() == {"error": "Not Found"}


async def test_wrong_sha256_is_never_ready(auth: dict[str, str], serve: Serve) -> None:
    client = await serve(model_sha256="0" * 64)
    ready = await client.get("/v2/health/ready")
    assert ready.status_code == 503
    assert "sha256 mismatch" in ready.json()["error"]
    assert (await client.get("/v2/models/forecast/ready")).status_code == 503
    response = await client.post(INFER, json=infer_body(rows(1)), headers=auth)
    assert response.status_code == 503 and "not ready" in response.json()["error"]
    assert (
        await metric(client, "prediction_service_model_load_failures_total", reason="checksum") == 1
    )
    assert await metric(client, "prediction_service_model_info") == 0


async def test_corrupt_model_is_never_ready(serve: Serve, tmp_path) -> None:
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"\x08\x07garbage")
    client = await serve(model_uri=corrupt.as_uri())
    assert (await client.get("/v2/health/ready")).status_code == 503
    assert (
        await metric(client, "prediction_service_model_load_failures_total", reason="invalid_model")
        == 1
    )


async def test_a_missing_file_is_retried_until_it_appears(
    make_settings: Callable[..., ServerSettings], tiny_model: TrainResult, tmp_path
) -> None:
    later = tmp_path / "later.onnx"
    settings = make_settings(model_uri=later.as_uri())
    data_plane = DataPlane(settings, Metrics("forecast", "r"))
    await data_plane.start()
    try:
        await _until(lambda: data_plane.metrics.render()[0].count(b'reason="fetch"') > 0)
        assert not data_plane.ready
        later.write_bytes(tiny_model.model_path.read_bytes())
        await _until(lambda: data_plane.ready)
    finally:
        await data_plane.stop()


async def test_injected_faults(auth: dict[str, str], serve: Serve) -> None:
    client = await serve(fault_error_rate=1.0, fault_latency_ms=30)
    started = time.perf_counter()
    response = await client.post(INFER, json=infer_body(rows(1)), headers=auth)
    assert time.perf_counter() - started >= 0.03
    assert response.status_code == 500
    assert response.json() == {"error": "injected fault (PREDICTION_FAULT_ERROR_RATE=1.0)"}
    assert (await client.get("/v2/health/ready")).status_code == 200


async def test_openapi_describes_the_hot_routes(serve: Serve) -> None:
    client = await serve()
    document = (await client.get("/openapi.json")).json()
    infer = document["paths"]["/v2/models/{name}/infer"]["post"]
    schema = infer["requestBody"]["content"]["application/json"]["schema"]
    assert schema["required"] == ["inputs"]
    assert infer["parameters"] == [
        {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
    ]
    assert {"200", "400", "401", "404", "413", "503"} <= set(infer["responses"])
    assert infer["security"] == [{"ApiKey": []}]
    assert document["components"]["securitySchemes"] == {
        "ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    }
    forecast = document["paths"]["/v1/forecast"]["post"]
    assert (
        "instances"
        in forecast["requestBody"]["content"]["application/json"]["schema"]["properties"]
    )
    for path in ("/v2/health/live", "/v2/health/ready", "/v2", "/v2/models/{name}", "/metrics"):
        assert path in document["paths"]
    assert "422" not in document["paths"]["/v2/models/{name}"]["get"]["responses"]
    assert "security" not in document["paths"]["/v2/health/ready"]["get"]


class FakeCache:
    def __init__(self) -> None:
        self.store: dict[bytes, np.ndarray] = {}
        self.hits = 0

    async def get(self, key: bytes, rows: int) -> np.ndarray | None:
        if key in self.store:
            self.hits += 1
        return self.store.get(key)

    def put(self, key: bytes, predictions: np.ndarray) -> None:
        self.store[key] = predictions

    async def close(self) -> None:
        pass


class FakeLog:
    def __init__(self) -> None:
        self.records: list[object] = []

    def submit(self, record: object) -> None:
        self.records.append(record)

    def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass


async def test_cache_and_prediction_log_hooks(
    auth: dict[str, str], make_settings: Callable[..., ServerSettings]
) -> None:
    settings = make_settings(revision="rev-c")
    cache, log = FakeCache(), FakeLog()
    data_plane = DataPlane(settings, Metrics("forecast", "rev-c"), cache=cache, predlog=log)  # type: ignore[arg-type]
    app = create_app(settings, data_plane)
    async with app.router.lifespan_context(app):
        await data_plane.wait_first_attempt()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://server") as client:
            first = await client.post(INFER, json=infer_body(rows(2), id="a"), headers=auth)
            # the same values written differently: the same canonical input
            data = [[int(v) for v in row] for row in rows(2)]
            second = await client.post(INFER, json=infer_body(data, id="b"), headers=auth)
    assert first.json()["outputs"] == second.json()["outputs"]
    assert cache.hits == 1 and len(cache.store) == 1
    assert [r.request_id for r in log.records] == ["a", "b"]  # type: ignore[attr-defined]
    assert all(r.latency_seconds > 0 and len(r.predictions) == 2 for r in log.records)  # type: ignore[attr-defined]


async def _until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


# --- which revision answered -------------------------------------------------------------
def _forecast_body(tiny_model: TrainResult) -> dict[str, object]:
    return {"instances": [dict(zip(tiny_model.feature_names, rows(1)[0], strict=True))]}


async def test_an_infer_answer_names_its_revision(auth: dict[str, str], serve: Serve) -> None:
    client = await serve(revision="5d8f7c2a1b")
    response = await client.post(INFER, json=infer_body(rows(2)), headers=auth)
    assert response.status_code == 200, response.text
    assert response.headers[REVISION_HEADER] == "5d8f7c2a1b"


async def test_a_forecast_answer_names_its_revision(
    auth: dict[str, str], serve: Serve, tiny_model: TrainResult
) -> None:
    client = await serve(revision="a41e02c3d4")
    response = await client.post("/v1/forecast", json=_forecast_body(tiny_model), headers=auth)
    assert response.status_code == 200, response.text
    assert response.headers[REVISION_HEADER] == "a41e02c3d4"


@pytest.mark.parametrize(
    ("path", "settings", "headers", "status"),
    [
        (INFER, {"fault_error_rate": 1.0}, True, 500),  # a canary made bad
        ("/v1/forecast", {"fault_error_rate": 1.0}, True, 500),
        (INFER, {}, False, 401),
        ("/v1/forecast", {}, False, 401),
        ("/v2/models/other/infer", {}, True, 404),
    ],
    ids=["infer-fault", "forecast-fault", "infer-401", "forecast-401", "infer-404"],
)
async def test_an_inference_error_names_its_revision_too(
    auth: dict[str, str],
    serve: Serve,
    tiny_model: TrainResult,
    path: str,
    settings: dict[str, object],
    headers: bool,
    status: int,
) -> None:
    client = await serve(revision="bad0000000", **settings)
    body = infer_body(rows(1)) if "infer" in path else _forecast_body(tiny_model)
    response = await client.post(path, json=body, headers=auth if headers else {})
    assert response.status_code == status, response.text
    assert response.headers[REVISION_HEADER] == "bad0000000"


async def test_other_routes_carry_no_revision_header(auth: dict[str, str], serve: Serve) -> None:
    client = await serve(revision="r1")
    for path in ("/v2/health/ready", "/v2", "/v2/models/forecast", "/metrics"):
        response = await client.get(path, headers=auth)
        assert response.status_code == 200 and REVISION_HEADER not in response.headers, path


async def test_openapi_documents_the_revision_header(serve: Serve) -> None:
    document = (await (await serve()).get("/openapi.json")).json()
    for path in ("/v2/models/{name}/infer", "/v1/forecast"):
        ok = document["paths"][path]["post"]["responses"]["200"]
        assert REVISION_HEADER in ok["headers"], path
