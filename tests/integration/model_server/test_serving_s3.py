"""Loading the model from a real S3-compatible server, with its sha256 checked; a wrong
sha256 keeps the server not ready, in-process and as a real `forecast-server` process."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest

from devenv.services import S3
from model_training.train import TrainResult

pytestmark = [pytest.mark.services, pytest.mark.timeout(120)]
Start = Callable[..., Awaitable[Any]]  # conftest.in_process: returns an InProcess
ROW = {"name": "input", "shape": [1, 26], "datatype": "FP32", "data": [1.0] * 26}


@pytest.fixture
def s3_model(
    s3: S3, s3_bucket: str, tiny_model: TrainResult, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """The tiny model in a fresh bucket; credentials in the environment, as in a pod."""
    s3.client().put_object(
        Bucket=s3_bucket, Key="models/v1/model.onnx", Body=tiny_model.model_path.read_bytes()
    )
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3.secret_key)
    yield f"s3://{s3_bucket}/models/v1/model.onnx"


def s3_settings(s3: S3, uri: str, sha256: str) -> dict[str, Any]:
    return {
        "model_uri": uri,
        "model_sha256": sha256,
        "s3_endpoint_url": s3.endpoint_url,
        "s3_region": s3.region,
    }


@pytest.mark.asyncio
async def test_load_from_s3(
    in_process: Start, s3: S3, s3_model: str, tiny_model: TrainResult
) -> None:
    server = await in_process(**s3_settings(s3, s3_model, tiny_model.sha256))
    assert (await server.client.get("/v2/health/ready")).status_code == 200
    response = await server.client.post("/v2/models/forecast/infer", json={"inputs": [ROW]})
    assert response.status_code == 200


@pytest.mark.asyncio
async def test_wrong_sha256_from_s3_is_never_ready(
    in_process: Start, s3: S3, s3_model: str
) -> None:
    server = await in_process(**s3_settings(s3, s3_model, "0" * 64))
    ready = await server.client.get("/v2/health/ready")
    assert ready.status_code == 503 and "sha256 mismatch" in ready.json()["error"]
    assert (
        await server.metric("prediction_service_model_load_failures_total", reason="checksum") == 1
    )


@pytest.mark.asyncio
async def test_missing_object_is_a_fetch_failure(in_process: Start, s3: S3, s3_model: str) -> None:
    server = await in_process(**s3_settings(s3, s3_model.replace("v1", "v0"), "0" * 64))
    assert (await server.client.get("/v2/health/ready")).status_code == 503
    assert await server.metric("prediction_service_model_load_failures_total", reason="fetch") >= 1


def test_real_server_from_s3(
    server_process: Callable[..., Any], s3: S3, s3_model: str, tiny_model: TrainResult, tmp_path
) -> None:
    """Two real processes: the right sha256 becomes ready; the wrong one stays 503."""
    base = {
        "PREDICTION_S3_ENDPOINT_URL": s3.endpoint_url,
        "PREDICTION_S3_REGION": s3.region,
        "PREDICTION_MODEL_DIR": str(tmp_path / "models"),
        "AWS_ACCESS_KEY_ID": s3.access_key,
        "AWS_SECRET_ACCESS_KEY": s3.secret_key,
    }
    good = server_process(
        {**base, "PREDICTION_MODEL_SHA256": tiny_model.sha256}, "--model-uri", s3_model
    )
    bad = server_process({**base, "PREDICTION_MODEL_SHA256": "f" * 64}, "--model-uri", s3_model)
    good.wait_ready()
    for _ in range(20):  # 2 s of polling: never ready
        ready = httpx.get(f"{bad.url}/v2/health/ready")
        assert ready.status_code == 503
        time.sleep(0.1)
    assert "sha256 mismatch" in ready.json()["error"]
    assert httpx.get(f"{bad.url}/v2/health/live").status_code == 200
    assert "reason=checksum" in bad.log()
    metrics = httpx.get(f"{bad.url}/metrics").text
    assert (
        'prediction_service_model_load_failures_total{model="forecast",reason="checksum",revision="local"} 1.0'
        in metrics
    )
