"""Fixtures for the operator's unit tests: parsing with the default settings, golden files.

Regenerate the golden files after an intended change with
    FORECASTOPS_UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/operator
and review the diff.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from forecastops.runtime.config import OperatorSettings
from forecastops.spec import ForecastModel, parse_forecastmodel

GOLDEN = Path(__file__).parent / "golden"


class _PlainDumper(yaml.SafeDumper):
    """YAML without anchors: a golden file reads like the manifest it is."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


@pytest.fixture
def settings() -> OperatorSettings:
    return OperatorSettings(server_image="ghcr.io/forecastops/forecast-server:0.1.0")


@pytest.fixture
def parse(settings: OperatorSettings) -> Callable[[dict[str, Any]], ForecastModel]:
    return lambda body: parse_forecastmodel(body, settings.server_defaults())


@pytest.fixture
def golden() -> Callable[[str, Any], None]:
    """Compare `value` as YAML with golden/<name>.yaml (rewrite it when asked to)."""

    def check(name: str, value: Any) -> None:
        path = GOLDEN / f"{name}.yaml"
        text = yaml.dump(value, Dumper=_PlainDumper, sort_keys=False, width=100)
        if os.environ.get("FORECASTOPS_UPDATE_GOLDEN") == "1":
            path.write_text(text)
        assert path.exists(), f"{path} is missing: run with FORECASTOPS_UPDATE_GOLDEN=1"
        assert text == path.read_text(), f"{name} differs from {path} (FORECASTOPS_UPDATE_GOLDEN=1)"

    return check
