"""The forecast-server image, run as a restricted pod runs it: serving, health, backups."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import onnxruntime as ort
import psycopg
import pytest
from images_support import Container, run_restricted

from devenv.harness import wait_for
from devenv.paths import free_port
from devenv.services import S3
from model_server import predlog
from model_training.train import TrainResult

pytestmark = pytest.mark.timeout(300)

MODEL = "file:///models/model.onnx"


def serve(start, image: str, models: Path, *options: str, host: str, port: int) -> Container:
    return start(
        image,
        "-v",
        f"{models}:/models:ro",
        *options,
        args=["--model-uri", MODEL, "--host", host, "--port", str(port)],
    )


def test_serves_a_v2_forecast_equal_to_onnx_runtime(
    server_image: str, restricted, models_dir: Path, image_model: TrainResult
) -> None:
    port = free_port()
    container = serve(
        restricted, server_image, models_dir, "--network", "host", host="127.0.0.1", port=port
    )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        assert container.running(), f"the server exited:\n{container.logs()[-4000:]}"
        try:
            return httpx.get(f"{url}/v2/health/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(ready, 90, "the server in the image to be ready")

    rows = np.random.default_rng(7).uniform(0, 50, (4, len(image_model.feature_names)))
    rows = rows.astype(np.float32)
    body = {
        "inputs": [
            {
                "name": "input",
                "shape": list(rows.shape),
                "datatype": "FP32",
                "data": rows.ravel().tolist(),
            }
        ]
    }
    response = httpx.post(f"{url}/v2/models/forecast/infer", json=body, timeout=10)
    assert response.status_code == 200, response.text
    (output,) = response.json()["outputs"]
    assert output["shape"] == [4] and output["datatype"] == "FP32"

    session = ort.InferenceSession(str(image_model.model_path), providers=["CPUExecutionProvider"])
    expected = session.run(None, {"input": rows})[0].reshape(-1)
    np.testing.assert_allclose(np.asarray(output["data"], dtype=np.float32), expected, rtol=1e-6)
    assert np.ptp(expected) > 0  # a real forecast: the rows get different numbers


def test_healthcheck_passes_when_the_server_is_up_and_fails_when_it_is_not(
    server_image: str, restricted, models_dir: Path
) -> None:
    # The Dockerfile's HEALTHCHECK probes 127.0.0.1:8000, the default CMD's port. Each
    # container has its own network namespace with only loopback (--network none), so
    # port 8000 is always free there and nothing is reachable from outside.
    up = serve(
        restricted, server_image, models_dir, "--network", "none", host="127.0.0.1", port=8000
    )
    elsewhere = serve(
        restricted, server_image, models_dir, "--network", "none", host="127.0.0.1", port=8001
    )

    def healthy() -> bool:
        assert up.running(), f"the server exited:\n{up.logs()[-4000:]}"
        return up.healthcheck()[0] == 0

    wait_for(healthy, 90, "`podman healthcheck run` to pass")

    # The other server is up too, on 8001 - the probe of 8000 fails there.
    probe = "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8001/v2/health/live', timeout=4)"
    wait_for(lambda: elsewhere.exec("python", "-c", probe)[0] == 0, 90, "the server on 8001")
    code, output = elsewhere.healthcheck()
    assert code != 0, output
    assert "unhealthy" in output


def test_pg_dump_is_the_postgresql_15_client(server_image: str) -> None:
    done = run_restricted(
        server_image, "--network", "none", "--entrypoint", "pg_dump", args=["--version"]
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("pg_dump (PostgreSQL) 15."), done.stdout


def _prediction_log(url: str, rows: int) -> None:
    """The model server's own prediction-log schema, with `rows` predictions in it."""

    async def migrate() -> None:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            await predlog.migrate(conn)
            await predlog.apply_retention(conn, datetime.now(UTC).date(), 30)

    asyncio.run(migrate())
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            f"INSERT INTO {predlog.TABLE} (time, model, revision, request_id, row_index,"
            " features_hash, features, prediction, latency_ms)"
            " SELECT now() - interval '1 hour', 'store-demand', 'rev-1', 'req-' || i, 0,"
            " decode(md5(i::text), 'hex'), NULL, i, 0"
            " FROM generate_series(1, %s) AS i",
            (rows,),
        )


def test_forecastctl_backup_in_the_image_writes_a_complete_backup_to_s3(
    server_image: str, pg_database: str, s3: S3, s3_bucket: str
) -> None:
    _prediction_log(pg_database, 500)
    done = run_restricted(
        server_image,
        "--network",
        "host",
        "--env",
        f"AWS_ACCESS_KEY_ID={s3.access_key}",
        "--env",
        f"AWS_SECRET_ACCESS_KEY={s3.secret_key}",
        "--entrypoint",
        "forecastctl",
        args=[
            "backup", "backup",
            "--name", "store-demand",
            "--bucket", s3_bucket,
            "--prefix", "backups/",
            "--endpoint", s3.endpoint_url,
            "--region", s3.region,
            "--database-url", pg_database,
        ],
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr

    keys = [
        obj["Key"]
        for page in s3.client().get_paginator("list_objects_v2").paginate(Bucket=s3_bucket)
        for obj in page.get("Contents", [])
    ]
    manifests = [key for key in keys if key.endswith("/manifest.json")]
    assert len(manifests) == 1, keys
    assert manifests[0].startswith("backups/store-demand/"), manifests
    dumps = [key for key in keys if key.endswith("/database.dump")]
    assert len(dumps) == 1, keys
    manifest = s3.client().get_object(Bucket=s3_bucket, Key=manifests[0])["Body"].read()
    assert b"prediction_log" in manifest
