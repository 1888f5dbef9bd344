"""Train the sample demand model, export it to ONNX and check it before anyone serves it.

``train_sample(out_dir)`` writes ``model.onnx`` (with the metadata of `modelmeta`) and
``metadata.json`` (features, sha256, metrics). ``forecast-train`` runs it;
``python -m model_training.train --out DIR [--variant v2]`` runs it directly.

Steps: generate the panel (`demand`), build the 26 features, hold out the last
`holdout_days` days, train a HistGradientBoostingRegressor on the rest (in chunks of
trees with ``warm_start``, which drives the progress bar), backtest on the holdout
(WAPE, MAE), export with skl2onnx, check ONNX Runtime against scikit-learn on every
holdout row (max relative difference ≤ `PARITY_TOLERANCE`, or `ParityError`), record
golden rows, and write both files atomically.

The default panel (10 stores x 20 items x 730 days, 139k rows) trains the default
200 trees of depth 6 in about 10-20 s on 2 cores.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from model_server.modelmeta import Golden, ModelMetadata, build_metadata_props
from model_training import demand

PARITY_TOLERANCE = 1e-4
GOLDEN_ROWS = 4
ONNX_INPUT = "input"


class ParityError(RuntimeError):
    """ONNX Runtime disagrees with scikit-learn beyond `PARITY_TOLERANCE`."""


@dataclass(frozen=True)
class TrainParams:
    stores: int = 10
    items: int = 20
    days: int = 730
    seed: int = 42
    trees: int = 200
    max_depth: int = 6
    learning_rate: float = 0.1
    holdout_days: int = 28
    version: str = "1"


VARIANTS: dict[str, TrainParams] = {
    "v1": TrainParams(),
    # Deliberately different, for rollouts: another draw of the world, a smaller and
    # shallower ensemble. Its predictions differ visibly from v1's on the same rows.
    "v2": TrainParams(seed=7, trees=120, max_depth=4, learning_rate=0.15, version="2"),
}


@dataclass(frozen=True)
class TrainResult:
    model_path: Path
    metadata_path: Path
    sha256: str
    feature_names: tuple[str, ...]
    metrics: dict[str, float]
    params: TrainParams


def train_sample(
    out_dir: str | os.PathLike[str],
    *,
    variant: str = "v1",
    stores: int | None = None,
    items: int | None = None,
    days: int | None = None,
    seed: int | None = None,
    trees: int | None = None,
    max_depth: int | None = None,
    learning_rate: float | None = None,
    version: str | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train the sample model of `variant` ("v1" or "v2"); keyword arguments override it."""
    overrides = {
        "stores": stores,
        "items": items,
        "days": days,
        "seed": seed,
        "trees": trees,
        "max_depth": max_depth,
        "learning_rate": learning_rate,
        "version": version,
    }
    params = replace(VARIANTS[variant], **{k: v for k, v in overrides.items() if v is not None})
    return train(Path(out_dir), params, progress=progress)


def train(out_dir: Path, params: TrainParams, *, progress: bool = True) -> TrainResult:
    from sklearn.ensemble import HistGradientBoostingRegressor

    with _progress(progress) as step:
        with step("Generating the demand panel", 1) as advance:
            panel = demand.generate_panel(params.stores, params.items, params.days, params.seed)
            x, y, day = demand.build_features(panel)
            advance()
        test = day >= params.days - params.holdout_days
        x_train, y_train, x_test, y_test = x[~test], y[~test], x[test], y[test]

        model = HistGradientBoostingRegressor(
            max_iter=0,
            max_depth=params.max_depth,
            learning_rate=params.learning_rate,
            early_stopping=False,
            warm_start=True,
            random_state=params.seed,
        )
        chunk = 10
        with step(f"Training {params.trees} trees on {len(y_train):,} rows", params.trees) as adv:
            for done in range(0, params.trees, chunk):
                model.set_params(max_iter=min(done + chunk, params.trees))
                model.fit(x_train, y_train)
                adv(model.max_iter - done)

        with step("Exporting to ONNX and checking parity", 1) as advance:
            expected = model.predict(x_test)
            metrics = backtest_metrics(y_test, expected)
            onnx_model = _to_onnx(model, x.shape[1])
            golden_rows = x_test[:GOLDEN_ROWS]
            actual = _onnx_predict(onnx_model.SerializeToString(), x_test)
            check_parity(actual, expected)
            meta = ModelMetadata(
                feature_names=demand.FEATURE_NAMES,
                version=params.version,
                metrics={**metrics, "holdout_rows": float(len(y_test))},
                golden=Golden(
                    inputs=tuple(tuple(float(v) for v in row) for row in golden_rows),
                    outputs=tuple(float(v) for v in actual[:GOLDEN_ROWS]),
                ),
                training={"estimator": "HistGradientBoostingRegressor", **asdict(params)},
                created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            )
            result = _write(out_dir, onnx_model, meta, params)
            advance()
    return result


def backtest_metrics(actual: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """WAPE (sum of absolute errors over the sum of actuals) and MAE."""
    errors = np.abs(actual - predicted)
    total = float(np.sum(np.abs(actual)))
    return {
        "wape": float(np.sum(errors) / total) if total else float("nan"),
        "mae": float(np.mean(errors)),
    }


def check_parity(onnx_out: np.ndarray, sklearn_out: np.ndarray) -> float:
    """Max relative difference, relative to max(|sklearn|, 1) so that near-zero
    predictions of count data do not divide by ~0. Raises `ParityError` above
    `PARITY_TOLERANCE`."""
    diff = np.abs(onnx_out.astype(np.float64) - sklearn_out)
    rel = diff / np.maximum(np.abs(sklearn_out), 1.0)
    worst = float(rel.max(initial=0.0))
    if not worst <= PARITY_TOLERANCE:
        i = int(rel.argmax())
        raise ParityError(
            f"ONNX export disagrees with scikit-learn: max relative difference {worst:.3g} "
            f"> {PARITY_TOLERANCE} (row {i}: onnx {onnx_out[i]!r}, sklearn {sklearn_out[i]!r})"
        )
    return worst


def _to_onnx(model: Any, n_features: int) -> Any:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    with warnings.catch_warnings():
        # skl2onnx hands booleans to int fields: protobuf 6 warns, 7 refuses (pinned < 7)
        warnings.filterwarnings("ignore", "Field onnx.AttributeProto.ints", DeprecationWarning)
        return convert_sklearn(
            model, initial_types=[(ONNX_INPUT, FloatTensorType([None, n_features]))]
        )


def _onnx_predict(model_bytes: bytes, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    return session.run(None, {ONNX_INPUT: x})[0].reshape(-1)


def _write(out_dir: Path, onnx_model: Any, meta: ModelMetadata, params: TrainParams) -> TrainResult:
    import onnx

    onnx.helper.set_model_props(onnx_model, build_metadata_props(meta))
    onnx_model.doc_string = "forecastops sample demand model (one-day-ahead unit sales)"
    data = onnx_model.SerializeToString()
    sha256 = hashlib.sha256(data).hexdigest()
    out_dir.mkdir(parents=True, exist_ok=True)
    model_path = out_dir / "model.onnx"
    metadata_path = out_dir / "metadata.json"
    document = {
        "model": model_path.name,
        "sha256": sha256,
        "version": meta.version,
        "features": list(meta.feature_names),
        "metrics": dict(meta.metrics),
        "training": dict(meta.training),
        "created_at": meta.created_at,
    }
    _write_atomic(model_path, data)
    _write_atomic(metadata_path, orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n")
    return TrainResult(
        model_path, metadata_path, sha256, meta.feature_names, dict(meta.metrics), params
    )


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


@contextmanager
def _progress(enabled: bool) -> Iterator[Any]:
    """A `step(description, total)` context manager yielding an `advance(n=1)` callable."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    with Progress(*columns, disable=not enabled, transient=False) as bar:

        @contextmanager
        def step(description: str, total: int) -> Iterator[Any]:
            task = bar.add_task(description, total=total)
            yield lambda n=1: bar.advance(task, n)
            bar.update(task, completed=total)

        yield step


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="forecast-train", description="Train the sample demand model and export it to ONNX."
    )
    parser.add_argument("--out", required=True, type=Path, help="output directory")
    parser.add_argument("--variant", choices=sorted(VARIANTS), default="v1")
    for name in ("stores", "items", "days", "seed", "trees", "max_depth"):
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, dest=name)
    parser.add_argument("--learning-rate", type=float)
    parser.add_argument("--version")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    options = {k: v for k, v in vars(args).items() if k not in {"out", "variant", "no_progress"}}
    try:
        result = train_sample(
            args.out, variant=args.variant, progress=not args.no_progress, **options
        )
    except ParityError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    metrics = ", ".join(f"{k}={v:.4g}" for k, v in result.metrics.items())
    print(
        f"Wrote {result.model_path} (sha256 {result.sha256}) in "
        f"{time.perf_counter() - started:.1f}s; backtest {metrics}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
