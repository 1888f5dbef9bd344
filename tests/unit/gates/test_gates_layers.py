"""The gate metrics stay out of the operator: numpy lives in the gate-runner's image only.

Read from the source with `ast`, as tests/unit/test_layers.py does; any import counts,
lazy ones included.
"""

from __future__ import annotations

import ast
from pathlib import Path

from devenv.paths import REPO

OPERATOR = REPO / "operator" / "forecastops"
NUMERIC = {"numpy", "pandas", "utilsforecast", "forecastops.gates.metrics"}


def imported(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_only_the_metrics_module_imports_numpy_and_nothing_imports_it():
    offenders = {}
    for path in OPERATOR.rglob("*.py"):
        if path == OPERATOR / "gates" / "metrics.py":
            continue
        hits = {n for n in imported(path) if n.split(".")[0] in NUMERIC or n in NUMERIC}
        if hits:
            offenders[str(path.relative_to(REPO))] = sorted(hits)
    assert not offenders


def test_the_gates_package_imports_nothing():
    assert imported(OPERATOR / "gates" / "__init__.py") == set()


def test_the_metrics_module_needs_numpy_only():
    outside = {n.split(".")[0] for n in imported(OPERATOR / "gates" / "metrics.py")}
    assert outside <= {
        "__future__",
        "math",
        "collections",
        "dataclasses",
        "enum",
        "typing",
        "numpy",
    }
