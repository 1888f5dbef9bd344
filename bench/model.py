"""The benchmark's model: the demo's sample model as ONNX (ours, the bare app) and as the
scikit-learn estimator it was exported from (MLServer, KServe), plus request payloads and
the in-process prediction times.

Artifacts are cached under ``bench/results/cache/model-<key>/`` (gitignored), keyed on the
training code and the training parameters, so a second run reuses them.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson

REPO = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
# Relative tolerance between the estimator the peers serve and the ONNX model we serve
# (training's own parity check uses 1e-4 against its estimator).
SAME_MODEL_TOLERANCE = 1e-3


@dataclass(frozen=True)
class ModelFiles:
    dir: Path
    onnx: Path
    metadata: dict
    joblib: Path
    x_test: Path
    sha256: str

    @property
    def name(self) -> str:
        return "forecast"


def _key() -> str:
    h = hashlib.sha256()
    for rel in (
        "model_training/train.py",
        "model_training/demand.py",
        "bench/apps/train_sklearn.py",
    ):
        h.update((REPO / rel).read_bytes())
    return h.hexdigest()[:16]


def prepare(peer_python: Path | None, log=print) -> ModelFiles:
    """Train (or reuse) model.onnx + metadata.json with the project's training module, and the
    same estimator as model.joblib in a peer venv (`peer_python`, whose scikit-learn both
    peers share). Without `peer_python` (only ours and the bare app) no joblib is made."""
    out = RESULTS / "cache" / f"model-{_key()}"
    onnx_path = out / "model.onnx"
    meta_path = out / "metadata.json"
    if not (onnx_path.exists() and meta_path.exists()):
        log(f"[model] training the sample model into {out} (10-30 s)")
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "model_training.train", "--out", str(out), "--no-progress"],
            check=True,
            cwd=REPO,
            timeout=900,
        )
        log(f"[model] trained in {time.perf_counter() - started:.1f} s")
    metadata = json.loads(meta_path.read_text())
    joblib_path = out / "sklearn" / "model.joblib"
    x_test = out / "sklearn" / "x_test.npy"
    if peer_python is not None and not joblib_path.exists():
        log("[model] training the same estimator in the peers' scikit-learn (joblib)")
        params = out / "train-params.json"
        params.write_text(json.dumps(metadata["training"]))
        env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "2"}
        subprocess.run(
            [str(peer_python), "-m", "bench.apps.train_sklearn", str(params), str(out / "sklearn")],
            check=True,
            cwd=REPO,
            env=env,
            timeout=900,
        )
    if not x_test.exists():
        x_test = _holdout_rows(out, metadata)
    return ModelFiles(out, onnx_path, metadata, joblib_path, x_test, metadata["sha256"])


def _holdout_rows(out: Path, metadata: dict) -> Path:
    """The holdout feature rows, built in this venv when no peer venv made them."""
    from model_training import demand

    path = out / "x_test.npy"
    if not path.exists():
        p = metadata["training"]
        panel = demand.generate_panel(p["stores"], p["items"], p["days"], p["seed"])
        x, _, day = demand.build_features(panel)
        np.save(path, np.ascontiguousarray(x[day >= p["days"] - p["holdout_days"]], np.float32))
    return path


def onnx_session(path: Path, threads: int = 1):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def onnx_predict(path: Path, x: np.ndarray) -> np.ndarray:
    session = onnx_session(path)
    return session.run(None, {session.get_inputs()[0].name: x})[0].reshape(-1)


def same_model_check(files: ModelFiles) -> dict:
    """Max relative difference between the peers' estimator and our ONNX on the holdout."""
    pred_path = files.joblib.parent / "sklearn_pred.npy"
    if not pred_path.exists():
        return {"checked": False}
    x = np.load(files.x_test)
    onnx_out = onnx_predict(files.onnx, x).astype(np.float64)
    sk = np.load(pred_path)
    rel = np.abs(onnx_out - sk) / np.maximum(np.abs(sk), 1.0)
    worst = float(rel.max(initial=0.0))
    return {
        "checked": True,
        "rows": len(sk),
        "max_rel_diff": worst,
        "median_rel_diff": float(np.median(rel)),
        "correlation": float(np.corrcoef(onnx_out, sk)[0, 1]),
        "identical": worst <= SAME_MODEL_TOLERANCE,
    }


def v2_body(x: np.ndarray, input_name: str = "input") -> bytes:
    """A V2 JSON infer request: one FP32 tensor, flat data, float32 shortest repr."""
    body = {
        "inputs": [
            {
                "name": input_name,
                "shape": list(x.shape),
                "datatype": "FP32",
                "data": np.ascontiguousarray(x, dtype=np.float32).reshape(-1),
            }
        ]
    }
    return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)


def _median_us(fn, repeat: int) -> float:
    for _ in range(20):
        fn()
    samples = np.empty(repeat)
    for i in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples[i] = time.perf_counter() - t0
    return float(np.median(samples) * 1e6)


def onnx_timings(files: ModelFiles) -> dict:
    """In-process ONNX Runtime run() time (median µs) for 1 and 100 rows, 1 and 2 threads."""
    x = np.load(files.x_test)
    out: dict[str, float] = {}
    for threads in (1, 2):
        session = onnx_session(files.onnx, threads)
        name = session.get_inputs()[0].name
        for rows in (1, 100):
            batch = np.ascontiguousarray(x[:rows])
            out[f"{rows}_rows_{threads}_threads_us"] = _median_us(
                lambda s=session, b=batch, n=name: s.run(None, {n: b}), 2000 if rows == 1 else 500
            )
    return out


def sklearn_timings(files: ModelFiles, peer_python: Path) -> dict:
    """scikit-learn predict (median µs, OMP_NUM_THREADS=1) in the peers' venv."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [str(peer_python), "-m", "bench.apps.time_sklearn", str(files.joblib), str(files.x_test)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=300,
    )
    if done.returncode != 0:
        return {"error": done.stderr.strip()[-500:]}
    return json.loads(done.stdout)
