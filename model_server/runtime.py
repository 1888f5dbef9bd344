"""The runtime: an in-process ONNX Runtime session, its metadata, and how it is called.

Thread hop or not. Measured on the 2-core benchmark machine with the sample model (200
trees, depth 6, 26 features), median of 2,000 calls of ``session.run``:

| rows | 1 thread | 2 threads |
|------|----------|-----------|
| 1    | 7.8 µs   | 9.3 µs    |
| 8    | 20 µs    | 20 µs     |
| 32   | 130 µs   | 150 µs    |
| 64   | 289 µs   | 162 µs    |
| 100  | 408 µs   | 259 µs    |
| 1000 | 3.9 ms   | 2.6 ms    |

and handing a 1-row prediction to a thread with ``run_in_executor`` took a median of
~100 µs round trip under uvloop (versus 7.7 µs inline). So small batches run inline on
the event loop: the hop would cost ten times the prediction. From `OFFLOAD_MIN_ROWS`
(64) rows on, a prediction costs more than the hop and would hold the loop for a
quarter of a millisecond or more, so it runs in a single worker thread (ONNX Runtime
releases the GIL) while the loop goes on parsing other requests. One thread, not more:
concurrent runs would multiply the intra-op threads beyond the cores.
"""

from __future__ import annotations

import asyncio
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from model_server.errors import ModelLoadError
from model_server.modelmeta import MetadataError, ModelMetadata, parse_metadata_props

if TYPE_CHECKING:
    import onnxruntime as ort

OFFLOAD_MIN_ROWS = 64
GOLDEN_RTOL = 1e-4
GOLDEN_ATOL = 1e-5


def available_cpus() -> int:
    """CPUs this process may use: its affinity mask, capped by a cgroup v2 CPU quota."""
    cpus = len(os.sched_getaffinity(0))
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
    except (OSError, ValueError):
        return cpus
    if quota == "max":
        return cpus
    return max(1, min(cpus, math.ceil(int(quota) / int(period))))


def default_threads(workers: int, cpus: int | None = None) -> int:
    """Intra-op threads per process: half of each worker's share of the cores, at least 1.

    Each worker's event loop needs a core of its own. Measured with 1 worker on 2 cores
    under wrk, 2 intra-op threads instead of 1 gave the same throughput for 100-row
    batches at concurrency 64 (2,253 vs 2,107 req/s) but a 1-row p99 of 47 ms instead of
    14 ms: the pool's spinning thread competes with the loop. So workers x threads stays
    at or below the cores, and below them whenever the cores allow.
    """
    return max(1, (cpus or available_cpus()) // (2 * workers))


@dataclass(frozen=True)
class ModelSignature:
    input_name: str
    output_name: str
    n_features: int


class OnnxModel:
    """A loaded model: ``predict`` for the loop, ``run`` to choose inline or a thread."""

    def __init__(
        self,
        session: ort.InferenceSession,
        signature: ModelSignature,
        metadata: ModelMetadata,
        sha256: str,
        *,
        offload_min_rows: int = OFFLOAD_MIN_ROWS,
    ) -> None:
        self._session = session
        self.input_name = signature.input_name
        self._outputs = [signature.output_name]
        self.n_features = signature.n_features
        self.metadata = metadata
        self.feature_names = metadata.feature_names
        self.version = metadata.version
        self.sha256 = sha256
        self._offload_min_rows = offload_min_rows
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="onnx")

    @classmethod
    def load(
        cls, data: bytes, sha256: str, *, threads: int, offload_min_rows: int = OFFLOAD_MIN_ROWS
    ) -> OnnxModel:
        """Build a session from verified model bytes; `ModelLoadError` if they are not a
        usable model."""
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        try:
            session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises several unrelated types
            raise ModelLoadError("invalid_model", f"not a loadable ONNX model: {exc}") from exc
        signature = read_signature(session)
        try:
            metadata = parse_metadata_props(
                session.get_modelmeta().custom_metadata_map, signature.n_features
            )
        except MetadataError as exc:
            raise ModelLoadError("metadata", f"model metadata: {exc}") from exc
        return cls(session, signature, metadata, sha256, offload_min_rows=offload_min_rows)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """float32 [rows, features] -> float32 [rows], on the calling thread."""
        return self._session.run(self._outputs, {self.input_name: x})[0].reshape(-1)

    async def run(self, x: np.ndarray) -> np.ndarray:
        """`predict`, inline for small batches and in the worker thread for large ones."""
        if len(x) < self._offload_min_rows:
            return self.predict(x)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.predict, x)

    async def check_golden(self) -> None:
        """Run the golden rows through `run`; `ModelLoadError` unless the outputs match.

        A model without golden rows must at least give a finite prediction for a row
        of zeros.
        """
        golden = self.metadata.golden
        if golden is None:
            inputs = np.zeros((1, self.n_features), dtype=np.float32)
            expected = None
        else:
            inputs = np.asarray(golden.inputs, dtype=np.float32)
            expected = np.asarray(golden.outputs, dtype=np.float32)
        try:
            actual = await self.run(inputs)
        except Exception as exc:
            raise ModelLoadError("golden", f"golden request failed: {exc}") from exc
        if actual.shape != (len(inputs),) or not np.isfinite(actual).all():
            raise ModelLoadError("golden", f"golden request gave {actual!r}")
        if expected is not None and not np.allclose(
            actual, expected, rtol=GOLDEN_RTOL, atol=GOLDEN_ATOL
        ):
            raise ModelLoadError(
                "golden",
                f"golden request gave {actual.tolist()}, training recorded {expected.tolist()}",
            )

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def read_signature(session: ort.InferenceSession) -> ModelSignature:
    """One float input of shape [batch, features] with a fixed width, one output."""
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1 or not outputs:
        raise ModelLoadError(
            "invalid_model", f"expected 1 input and at least 1 output, got {len(inputs)} inputs"
        )
    (tensor,) = inputs
    shape = tensor.shape
    if tensor.type != "tensor(float)" or len(shape) != 2 or not isinstance(shape[1], int):
        raise ModelLoadError(
            "invalid_model",
            f"input {tensor.name!r} must be tensor(float) of shape [batch, features], "
            f"got {tensor.type} {shape}",
        )
    return ModelSignature(tensor.name, outputs[0].name, shape[1])
