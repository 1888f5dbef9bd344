"""The reference: FastAPI + uvicorn + ONNX Runtime doing nothing but the V2 infer call.

Raw body, orjson, no pydantic models, no auth, no metrics: the floor a lean server is
measured against (as in the serving anchors). Environment: BENCH_MODEL_PATH (model.onnx),
BENCH_MODEL_NAME, BENCH_ORT_THREADS (intra-op threads, default 1). Run with
``uvicorn bench.apps.bare_app:app``.
"""

from __future__ import annotations

import os

import numpy as np
import onnxruntime as ort
import orjson
from fastapi import FastAPI, Request, Response

NAME = os.environ.get("BENCH_MODEL_NAME", "forecast")
_options = ort.SessionOptions()
_options.intra_op_num_threads = int(os.environ.get("BENCH_ORT_THREADS", "1"))
_options.inter_op_num_threads = 1
SESSION = ort.InferenceSession(
    os.environ["BENCH_MODEL_PATH"], _options, providers=["CPUExecutionProvider"]
)
INPUT = SESSION.get_inputs()[0].name

app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)


@app.get(f"/v2/models/{NAME}/ready")
async def ready() -> Response:
    return Response(status_code=200)


@app.post(f"/v2/models/{NAME}/infer")
async def infer(request: Request) -> Response:
    tensor = orjson.loads(await request.body())["inputs"][0]
    x = np.asarray(tensor["data"], dtype=np.float32).reshape(tensor["shape"])
    y = SESSION.run(None, {INPUT: x})[0].reshape(-1)
    body = {
        "model_name": NAME,
        "outputs": [{"name": "variable", "shape": [len(y), 1], "datatype": "FP32", "data": y}],
    }
    return Response(
        orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY), media_type="application/json"
    )
