"""A real `forecast-server` process on 127.0.0.1: bad input over real HTTP, schemathesis
against its own OpenAPI document, and two worker processes sharing one set of metrics."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import orjson
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from model_server.runtime import default_threads
from model_training.train import TrainResult

pytestmark = pytest.mark.timeout(180)
API_KEY = "live-test-key"
INFER = "/v2/models/forecast/infer"


@pytest.fixture
def live_server(server_process: Callable[..., Any], tiny_model: TrainResult) -> Iterator[str]:
    env = {
        "PREDICTION_MODEL_SHA256": tiny_model.sha256,
        "PREDICTION_API_KEYS": API_KEY,
        "PREDICTION_MAX_BATCH_ROWS": "50",
        "PREDICTION_MAX_BODY_BYTES": "65536",
    }
    server = server_process(env, "--model-uri", tiny_model.model_path.as_uri())
    server.wait_ready()
    yield server.url


def tensor(data: Any, shape: list[int], datatype: str = "FP32") -> dict[str, Any]:
    return {"inputs": [{"name": "input", "shape": shape, "datatype": datatype, "data": data}]}


BAD = [
    ("wrong feature count", tensor([1.0] * 25, [1, 25]), 400, "wrong feature count"),
    ("wrong dtype", tensor(["x"] * 26, [1, 26], "BYTES"), 400, "unsupported datatype 'BYTES'"),
    ("strings as numbers", tensor(["1"] * 26, [1, 26]), 400, "got strings"),
    ("infinity", tensor([1e39] * 26, [1, 26]), 400, "not a finite number"),
    ("empty batch", tensor([], [0, 26]), 400, "empty batch"),
    ("oversized batch", tensor([1.0] * 26 * 51, [51, 26]), 413, "exceeds the limit of 50 rows"),
    ("body too large", tensor([1.0] * 26 * 2000, [2000, 26]), 413, "exceeds 65536 bytes"),
]


def test_bad_input_over_http(live_server: str) -> None:
    with httpx.Client(base_url=live_server, headers={"X-API-Key": API_KEY}) as client:
        for what, body, status, message in BAD:
            response = client.post(INFER, content=orjson.dumps(body))
            assert response.status_code == status, what
            assert message in response.json()["error"], what
        nan = b'{"inputs": [{"name": "input", "shape": [1, 1], "datatype": "FP32", "data": [NaN]}]}'
        for what, content, status, message in [
            ("NaN", nan, 400, "NaN and Infinity are not JSON"),
            ("malformed JSON", b'{"inputs": ', 400, "malformed JSON"),
        ]:
            response = client.post(INFER, content=content)
            assert (response.status_code, response.json()["error"].count(message)) == (status, 1), (
                what
            )
        unknown = client.post(
            "/v2/models/nope/infer", content=orjson.dumps(tensor([1.0] * 26, [1, 26]))
        )
        assert unknown.status_code == 404 and "'nope' not found" in unknown.json()["error"]
    for headers, message in [
        ({}, "missing credentials"),
        ({"X-API-Key": "wrong"}, "invalid API key"),
    ]:
        response = httpx.post(
            f"{live_server}{INFER}", json=tensor([1.0] * 26, [1, 26]), headers=headers
        )
        assert response.status_code == 401 and message in response.json()["error"]
    metrics = httpx.get(f"{live_server}/metrics").text
    assert 'code="500"' not in metrics


def test_openapi_fuzz_finds_no_server_error(live_server: str) -> None:
    """Every operation of the server's own OpenAPI document, fuzzed with 30 valid requests
    each, and 30 invalid bodies for each POST: never a 5xx, only documented status codes, responses that
    match their schemas."""
    schema = schemathesis.openapi.from_url(f"{live_server}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 9
    checks = [not_a_server_error, status_code_conformance, response_schema_conformance]
    for operation, mode in itertools.product(operations, GenerationMode):
        if mode is GenerationMode.NEGATIVE and not operation.body:
            continue  # any string is a valid path segment: only bodies can be invalid

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
        def fuzz(case: Any) -> None:
            case.call_and_validate(headers={"X-API-Key": API_KEY}, checks=checks)

        fuzz()
    metrics = httpx.get(f"{live_server}/metrics").text
    assert 'code="400"' in metrics and 'code="5' not in metrics


def test_two_workers_share_their_metrics(
    server_process: Callable[..., Any], tiny_model: TrainResult
) -> None:
    server = server_process(
        {"PREDICTION_MODEL_SHA256": tiny_model.sha256},
        "--model-uri",
        tiny_model.model_path.as_uri(),
        "--workers",
        "2",
    )
    server.wait_ready()
    body = tensor([1.0] * 26, [1, 26])
    with httpx.Client(base_url=server.url) as client:
        for _ in range(40):  # fresh connections spread over both workers
            client.headers["Connection"] = "close"
            assert client.post(INFER, json=body).status_code == 200
    text = httpx.get(f"{server.url}/metrics").text
    line = next(x for x in text.splitlines() if x.startswith("prediction_service_requests_total{"))
    assert line.endswith(" 40.0"), line
    # workers x threads never exceed the cores
    assert server.log().count(f"onnx_threads={default_threads(workers=2)} ") == 2
