"""The worked examples in the docstrings are tests too: they must stay true."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "forecastops.analysis.condition",
    "forecastops.analysis.measurement",
    "forecastops.analysis.spec",
    "forecastops.analysis.template",
    "forecastops.rollout.observe",
    "forecastops.rollout.observed",
    "forecastops.rollout.replicas",
    "forecastops.rollout.spec",
    "forecastops.rollout.steps",
    "forecastops.traffic.gateway_api",
    "forecastops.traffic.router",
    "forecastops.traffic.service",
]


@pytest.mark.parametrize("name", MODULES)
def test_given_module_when_its_examples_run_then_they_hold(name):
    result = doctest.testmod(
        importlib.import_module(name), optionflags=doctest.NORMALIZE_WHITESPACE
    )
    assert result.failed == 0
    assert result.attempted > 0, f"{name} lost its worked examples"
