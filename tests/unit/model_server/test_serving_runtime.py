"""The ONNX runtime wrapper: signature, metadata, golden check, inline or threaded runs."""

from __future__ import annotations

import os
import threading

import numpy as np
import onnx
import pytest

from model_server.errors import ModelLoadError
from model_server.modelmeta import KEY_GOLDEN, KEY_METRICS
from model_server.runtime import OnnxModel, available_cpus, default_threads
from model_training.train import TrainResult


def load(data: bytes, **kwargs: object) -> OnnxModel:
    return OnnxModel.load(data, "sha", threads=1, **kwargs)  # type: ignore[arg-type]


def with_props(tiny_model: TrainResult, **props: str) -> bytes:
    model = onnx.load(tiny_model.model_path)
    existing = {p.key: p.value for p in model.metadata_props}
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, existing | props)
    return model.SerializeToString()


@pytest.mark.asyncio
async def test_load_and_predict(tiny_model: TrainResult) -> None:
    model = load(tiny_model.model_path.read_bytes())
    assert model.n_features == 26 and model.input_name == "input"
    assert model.feature_names == tiny_model.feature_names
    x = np.ones((3, 26), dtype=np.float32)
    out = model.predict(x)
    assert out.shape == (3,) and out.dtype == np.float32
    await model.check_golden()
    model.close()


@pytest.mark.asyncio
async def test_large_batches_run_off_the_event_loop(tiny_model: TrainResult) -> None:
    model = load(tiny_model.model_path.read_bytes(), offload_min_rows=8)
    threads: list[str] = []
    original = model.predict

    def spy(x: np.ndarray) -> np.ndarray:
        threads.append(threading.current_thread().name)
        return original(x)

    model.predict = spy  # type: ignore[method-assign]
    small = np.ones((7, 26), dtype=np.float32)
    large = np.ones((8, 26), dtype=np.float32)
    np.testing.assert_array_equal(await model.run(small), original(small))
    np.testing.assert_array_equal(await model.run(large), original(large))
    assert threads[0] == threading.current_thread().name
    assert threads[1].startswith("onnx")
    model.close()


@pytest.mark.asyncio
async def test_golden_mismatch_is_a_load_error(tiny_model: TrainResult) -> None:
    golden = '{"inputs": [[' + ",".join(["1"] * 26) + ']], "outputs": [12345.0]}'
    model = load(with_props(tiny_model, **{KEY_GOLDEN: golden}))
    with pytest.raises(ModelLoadError) as caught:
        await model.check_golden()
    assert caught.value.reason == "golden"
    assert "training recorded [12345.0]" in caught.value.message
    model.close()


def test_not_an_onnx_model() -> None:
    with pytest.raises(ModelLoadError) as caught:
        load(b"this is not a model")
    assert caught.value.reason == "invalid_model"


def test_malformed_metadata_is_a_load_error(tiny_model: TrainResult) -> None:
    with pytest.raises(ModelLoadError) as caught:
        load(with_props(tiny_model, **{KEY_METRICS: "[1, 2]"}))
    assert caught.value.reason == "metadata"


def test_threads_never_exceed_the_cores() -> None:
    assert default_threads(workers=1, cpus=2) == 1
    assert default_threads(workers=2, cpus=2) == 1
    assert default_threads(workers=4, cpus=2) == 1
    assert default_threads(workers=1, cpus=8) == 4
    assert default_threads(workers=3, cpus=16) == 2
    assert 1 <= available_cpus() <= len(os.sched_getaffinity(0))
