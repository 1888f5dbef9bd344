"""Sample ForecastModels for the operator's unit tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from devenv.harness import forecastmodel

REPO = Path(__file__).resolve().parents[3]
UID = "6f1d7c52-2b8e-4d0a-9c3e-5a7b1e2f4d60"


def example(name: str, namespace: str = "retail") -> dict[str, Any]:
    """examples/<name>.yaml as the API server would hand it over."""
    body = yaml.safe_load((REPO / "examples" / f"{name}.yaml").read_text())
    body["metadata"].update(namespace=namespace, uid=UID, generation=1)
    return body


def body_with(spec: dict[str, Any], name: str = "store-demand", **metadata: Any) -> dict[str, Any]:
    defaults = {"namespace": "retail", "uid": UID, "generation": 1}
    return forecastmodel(name, spec, **{**defaults, **metadata})


MODEL = {
    "uri": "s3://models/store-demand/v7/model.onnx",
    "sha256": "9f2c4e1a7b3d5f6e8a0c2b4d6f8e0a1c3b5d7f9e1a3c5b7d9f0e2a4c6b8d0f1e",
    "version": "v7",
}
