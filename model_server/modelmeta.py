"""What a forecast model carries about itself, in the ONNX model's ``metadata_props``.

Training writes these keys (`build_metadata_props`); the server reads them
(`parse_metadata_props`). Every value is a string; structured values are JSON.

| key                        | value                                                       |
|----------------------------|-------------------------------------------------------------|
| ``forecastops.schema``     | ``"1"``: the version of this key set                         |
| ``forecastops.features``   | JSON list of the feature names, in input-column order        |
| ``forecastops.version``    | the model version (``"1"``, ``"2"``, ...), as OIP reports it |
| ``forecastops.metrics``    | JSON object of backtest metrics (``wape``, ``mae``, ...)      |
| ``forecastops.golden``     | JSON ``{"inputs": [[...], ...], "outputs": [...]}``: rows    |
|                            | with the exact outputs the exported model gave for them      |
| ``forecastops.training``   | JSON object of the training parameters (free form)           |
| ``forecastops.created_at`` | ISO 8601 time of the export                                   |

The golden rows make readiness truthful: the server is ready only after they went
through the loaded model and came back equal to what training recorded.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

SCHEMA_VERSION = "1"
KEY_SCHEMA = "forecastops.schema"
KEY_FEATURES = "forecastops.features"
KEY_VERSION = "forecastops.version"
KEY_METRICS = "forecastops.metrics"
KEY_GOLDEN = "forecastops.golden"
KEY_TRAINING = "forecastops.training"
KEY_CREATED_AT = "forecastops.created_at"


class MetadataError(ValueError):
    """The metadata is present but malformed."""


@dataclass(frozen=True)
class Golden:
    """Input rows and the outputs the exported model must give for them."""

    inputs: tuple[tuple[float, ...], ...]
    outputs: tuple[float, ...]


@dataclass(frozen=True)
class ModelMetadata:
    feature_names: tuple[str, ...]
    version: str = "1"
    metrics: Mapping[str, float] = field(default_factory=dict)
    golden: Golden | None = None
    training: Mapping[str, Any] = field(default_factory=dict)
    created_at: str = ""


def build_metadata_props(meta: ModelMetadata) -> dict[str, str]:
    """The ``metadata_props`` entries for `meta` (what training writes)."""
    props = {
        KEY_SCHEMA: SCHEMA_VERSION,
        KEY_FEATURES: orjson.dumps(list(meta.feature_names)).decode(),
        KEY_VERSION: meta.version,
        KEY_METRICS: orjson.dumps(dict(meta.metrics)).decode(),
        KEY_TRAINING: orjson.dumps(dict(meta.training)).decode(),
        KEY_CREATED_AT: meta.created_at,
    }
    if meta.golden is not None:
        golden = {"inputs": meta.golden.inputs, "outputs": meta.golden.outputs}
        props[KEY_GOLDEN] = orjson.dumps(golden).decode()
    return props


def parse_metadata_props(props: Mapping[str, str], n_features: int) -> ModelMetadata:
    """Read the metadata of a model whose input has `n_features` columns.

    A model exported without these keys still loads: its features are called
    ``f0..f{n-1}``, its version ``"1"``, and it has no golden rows. Keys that are present
    but malformed raise `MetadataError`: a half-readable model is not served.
    """
    names = _json(props, KEY_FEATURES, list, [f"f{i}" for i in range(n_features)])
    if len(names) != n_features or not all(isinstance(n, str) and n for n in names):
        raise MetadataError(
            f"{KEY_FEATURES} must list {n_features} non-empty names (the model's input "
            f"width), got {len(names)}"
        )
    if len(set(names)) != len(names):
        raise MetadataError(f"{KEY_FEATURES} has duplicate names")
    metrics = _json(props, KEY_METRICS, dict, {})
    if not all(isinstance(v, int | float) for v in metrics.values()):
        raise MetadataError(f"{KEY_METRICS} must map names to numbers")
    return ModelMetadata(
        feature_names=tuple(names),
        version=props.get(KEY_VERSION, "1") or "1",
        metrics={str(k): float(v) for k, v in metrics.items()},
        golden=_golden(props, n_features),
        training=_json(props, KEY_TRAINING, dict, {}),
        created_at=props.get(KEY_CREATED_AT, ""),
    )


def _golden(props: Mapping[str, str], n_features: int) -> Golden | None:
    raw = _json(props, KEY_GOLDEN, dict, None)
    if raw is None:
        return None
    inputs, outputs = raw.get("inputs"), raw.get("outputs")
    try:
        rows = tuple(tuple(float(v) for v in row) for row in inputs)
        outs = tuple(float(v) for v in outputs)
    except (TypeError, ValueError) as exc:
        raise MetadataError(f"{KEY_GOLDEN} must hold numeric inputs and outputs") from exc
    if not rows or len(rows) != len(outs) or any(len(r) != n_features for r in rows):
        raise MetadataError(
            f"{KEY_GOLDEN} must have as many outputs as input rows, each row {n_features} wide"
        )
    if not all(math.isfinite(v) for row in rows for v in row):
        raise MetadataError(f"{KEY_GOLDEN} inputs must be finite")
    return Golden(inputs=rows, outputs=outs)


def _json(props: Mapping[str, str], key: str, kind: type, default: Any) -> Any:
    if key not in props:
        return default
    try:
        value = orjson.loads(props[key])
    except orjson.JSONDecodeError as exc:
        raise MetadataError(f"{key} is not valid JSON: {exc}") from exc
    if not isinstance(value, kind):
        raise MetadataError(f"{key} must be a JSON {kind.__name__}")
    return value
