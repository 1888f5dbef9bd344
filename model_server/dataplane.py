"""The data plane: the served model, its readiness, and everything around a prediction.

It knows nothing of HTTP. It loads the model in the background (retrying fetches with
backoff; a checksum, format, metadata or golden-request failure is final; the reasons
are the ``reason`` label of the load-failure metric: fetch, checksum, invalid_model,
metadata, golden, error), answers
"which model, is it ready", validates a batch against the model, and wraps the
prediction with the cache, the prediction log and (for tests only) injected faults.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np

from model_server.cache import PredictionCache, cache_key
from model_server.errors import (
    ContractViolation,
    InjectedFault,
    InvalidInput,
    ModelLoadError,
    ModelNotFound,
    ModelNotReady,
    PayloadTooLarge,
)
from model_server.loader import fetch_model
from model_server.metrics import Metrics
from model_server.output_contract import OnViolation, OutputContract, check
from model_server.predlog import PredictionLog, PredictionRecord
from model_server.protocol import OUTPUT_NAME, DecodedRequest, RowKeys
from model_server.runtime import OnnxModel, default_threads
from model_server.settings import ServerSettings, redact_uri

log = logging.getLogger(__name__)

FETCH_BACKOFF = (0.5, 60.0)
Fetch = Callable[[ServerSettings], Awaitable[tuple[bytes, str]]]


def validate_batch(x: np.ndarray, feature_names: tuple[str, ...], max_rows: int) -> None:
    """`InvalidInput` or `PayloadTooLarge` naming the problem, unless `x` fits the model."""
    rows, columns = x.shape
    if rows == 0:
        raise InvalidInput("empty batch: send at least one row")
    if rows > max_rows:
        raise PayloadTooLarge(f"batch of {rows} rows exceeds the limit of {max_rows} rows")
    if columns != len(feature_names):
        raise InvalidInput(
            f"wrong feature count: got {columns} values per row, the model takes "
            f"{len(feature_names)}"
        )
    if not np.isfinite(x).all():
        row, column = np.argwhere(~np.isfinite(x))[0]
        raise InvalidInput(
            f"row {row}, feature {feature_names[column]!r}: {x[row, column]} is not a finite "
            "number (NaN or infinity)"
        )


class DataPlane:
    def __init__(
        self,
        settings: ServerSettings,
        metrics: Metrics,
        *,
        cache: PredictionCache | None = None,
        predlog: PredictionLog | None = None,
        fetch: Fetch = fetch_model,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.name = settings.model_name
        self._cache = cache
        self._predlog = predlog
        self._fetch = fetch
        self._model: OnnxModel | None = None
        self._not_ready = "the model is loading"
        self._load_task: asyncio.Task[None] | None = None
        self._attempted = asyncio.Event()
        self._faults = settings.fault_error_rate > 0 or settings.fault_latency_ms > 0
        self._contract = OutputContract(
            settings.output_non_negative,
            settings.output_max_abs_value,
            OnViolation(settings.output_on_violation),
        )

    @property
    def ready(self) -> bool:
        return self._model is not None

    async def start(self) -> None:
        """Start loading the model (in the background) and the prediction log."""
        if self._faults:
            log.warning(
                "FAULT INJECTION ON: error_rate=%s latency_ms=%s (for tests only)",
                self.settings.fault_error_rate,
                self.settings.fault_latency_ms,
            )
        self._load_task = asyncio.create_task(self._load_until_done(), name="model-load")
        if self._predlog is not None:
            self._predlog.start()

    async def stop(self) -> None:
        if self._load_task is not None:
            self._load_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._load_task
        if self._predlog is not None:
            await self._predlog.stop()
        if self._cache is not None:
            await self._cache.close()
        if self._model is not None:
            self._model.close()
        self.metrics.close()

    async def wait_first_attempt(self) -> None:
        """Until the first attempt to load the model ended, in success or failure."""
        await self._attempted.wait()

    async def _load_until_done(self) -> None:
        delay = FETCH_BACKOFF[0]
        while True:
            try:
                self._model = await self._load()
                return
            except ModelLoadError as exc:
                self.metrics.load_failed(exc.reason)
                self._not_ready = exc.message
                final = exc.reason != "fetch"
                log.error(
                    "Model load failed reason=%s uri=%s%s: %s",
                    exc.reason,
                    redact_uri(self.settings.model_uri),
                    "" if final else f" retry_in={delay:g}s",
                    exc.message,
                )
                if final:
                    return
            except Exception as exc:  # a bug, not a bad model: say so, and stay not ready
                log.exception("Model load failed unexpectedly")
                self.metrics.load_failed("error")
                self._not_ready = f"unexpected error while loading: {exc!r}"
                return
            finally:
                self._attempted.set()
            await asyncio.sleep(delay)
            delay = min(delay * 2, FETCH_BACKOFF[1])

    async def _load(self) -> OnnxModel:
        started = time.perf_counter()
        data, sha256 = await self._fetch(self.settings)
        threads = self.settings.intra_op_threads or default_threads(self.settings.workers)
        model = await asyncio.to_thread(
            OnnxModel.load,
            data,
            sha256,
            threads=threads,
            offload_min_rows=self.settings.offload_min_rows,
        )
        try:
            await model.check_golden()
        except ModelLoadError:
            model.close()
            raise
        declared = self.settings.model_version
        if declared and declared != model.version:
            # The resource's version is what users, labels and dashboards know it by.
            log.info("Serving version=%s (the model file says %s)", declared, model.version)
            model.version = declared
        self.metrics.model_loaded(model.version)
        log.info(
            "Model ready name=%s version=%s revision=%s sha256=%s features=%d "
            "onnx_threads=%d seconds=%.3f",
            self.name,
            model.version,
            self.settings.revision,
            sha256,
            model.n_features,
            threads,
            time.perf_counter() - started,
        )
        return model

    def model(self, name: str | None = None) -> OnnxModel:
        """The served model (by name, as the OIP paths ask), if it is ready."""
        if name is not None and name != self.name:
            raise ModelNotFound(f"model {name!r} not found; this server serves {self.name!r}")
        if self._model is None:
            raise ModelNotReady(f"model {self.name!r} is not ready: {self._not_ready}")
        return self._model

    async def infer(self, model: OnnxModel, request: DecodedRequest, started: float) -> np.ndarray:
        """Predictions for the request's rows ([rows, features] float32); `started` is the
        request's ``perf_counter()`` for the prediction log's latency."""
        x, request_id, keys = request.inputs, request.id, request.keys
        validate_batch(x, model.feature_names, self.settings.max_batch_rows)
        if self._faults:
            await self._inject_faults()
        key = None
        if self._cache is not None:
            key = cache_key(self.settings.revision, model.sha256, x)
            cached = await self._cache.get(key, len(x))
            if cached is not None:
                self._log(x, cached, request_id, started, keys)
                return cached
        predictions = self._checked(await model.run(x))
        if key is not None and self._cache is not None:
            self._cache.put(key, predictions)
        self._log(x, predictions, request_id, started, keys)
        return predictions

    def _checked(self, predictions: np.ndarray) -> np.ndarray:
        """The predictions to answer under the output contract; every violation counted."""
        outcome = check(self._contract, predictions)
        for violated in outcome.violated:
            self.metrics.contract_violated(violated)
        if outcome.rejected is not None:
            raise ContractViolation(outcome.rejected)
        return outcome.predictions

    def _log(
        self,
        x: np.ndarray,
        predictions: np.ndarray,
        request_id: str | None,
        started: float,
        keys: RowKeys | None,
    ) -> None:
        if self._predlog is not None:
            latency = time.perf_counter() - started
            record = PredictionRecord(time.time(), request_id, latency, x, predictions, keys)
            self._predlog.submit(record)

    async def _inject_faults(self) -> None:
        if self.settings.fault_latency_ms > 0:
            await asyncio.sleep(self.settings.fault_latency_ms / 1000)
        if random.random() < self.settings.fault_error_rate:
            raise InjectedFault(
                f"injected fault (PREDICTION_FAULT_ERROR_RATE={self.settings.fault_error_rate})"
            )

    def model_metadata(self, name: str) -> dict[str, Any]:
        """The OIP model metadata document, with the training facts as parameters."""
        model = self.model(name)
        return {
            "name": self.name,
            "versions": [model.version],
            "platform": "onnxruntime_onnx",
            "inputs": [
                {"name": model.input_name, "datatype": "FP32", "shape": [-1, model.n_features]}
            ],
            "outputs": [{"name": OUTPUT_NAME, "datatype": "FP32", "shape": [-1]}],
            "parameters": {
                "revision": self.settings.revision,
                "sha256": model.sha256,
                "feature_names": list(model.feature_names),
                "metrics": dict(model.metadata.metrics),
                "created_at": model.metadata.created_at,
            },
        }
