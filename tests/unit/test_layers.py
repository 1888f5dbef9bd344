"""The packages' layers, enforced: no import circle, and deciding code does no I/O.

Read from the source with `ast` (no import runs). An import inside ``if TYPE_CHECKING``
is not a dependency; a lazy import inside a function is.

The operator's decision layers (docs/architecture.md) compute what should be, from values
the pipeline gathered: they must not import kopf, the Kubernetes client, or an HTTP or
database library, not even through another module.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from devenv.paths import REPO

PACKAGES = {"forecastops": REPO / "operator" / "forecastops", "model_server": REPO / "model_server"}
IO_LIBRARIES = ("kopf", "kubernetes", "aiohttp", "httpx", "boto3", "psycopg", "redis", "requests")
PURE_PARTS = ("kubernetes.utils",)
"""Pure functions inside an I/O library, allowed anywhere: the client's quantity parser."""

DECISION_LAYERS = (
    "forecastops.spec",
    "forecastops.rollout",
    "forecastops.builders",
    "forecastops.traffic.router",
    "forecastops.traffic.service",
    "forecastops.traffic.gateway_api",
    "forecastops.traffic.null",
    "forecastops.traffic.factory",
    "forecastops.analysis.condition",
    "forecastops.analysis.measurement",
    "forecastops.analysis.spec",
    "forecastops.analysis.template",
    "forecastops.analysis.provider",
    "forecastops.analysis.null",
    "forecastops.kube.kinds",
    "forecastops.kube.names",
    "forecastops.kube.revision",
    "forecastops.reconcile.children",
    "forecastops.reconcile.delivery",
    "forecastops.reconcile.status",
    "forecastops.reconcile.backup_status",
    "forecastops.reconcile.drift",
    "forecastops.reconcile.events",
    "forecastops.reconcile.decide",
    "forecastops.gates.verdict",
)


def modules() -> dict[str, Path]:
    found = {}
    for package, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            parts = path.relative_to(folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join((package, *parts))] = path
    return found


def imports(path: Path) -> Iterator[str]:
    """Every module `path` imports, TYPE_CHECKING blocks left out."""
    tree = ast.parse(path.read_text())
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(n) for n in ast.walk(node))
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def graph() -> dict[str, set[str]]:
    known = modules()
    edges = {}
    for name, path in known.items():
        targets = set()
        for imported in imports(path):
            if imported in known:
                targets.add(imported)
            elif imported.startswith(PURE_PARTS):
                continue
            elif imported.split(".")[0] in IO_LIBRARIES:
                targets.add(imported.split(".")[0])
        targets.discard(name)
        # a package's __init__ is not a module's own dependency on its submodules' users
        edges[name] = {t for t in targets if not name.startswith(t + ".")}
    return edges


def reachable(start: str, edges: dict[str, set[str]]) -> dict[str, str]:
    """Every module `start` depends on, each with the module that imports it."""
    seen: dict[str, str] = {}
    todo = [start]
    while todo:
        current = todo.pop()
        for target in edges.get(current, ()):
            if target not in seen:
                seen[target] = current
                todo.append(target)
    return seen


def test_no_import_circle() -> None:
    edges = graph()
    circles = []
    for module in sorted(edges):
        via = reachable(module, edges)
        if module in via:
            chain, step = [module], via[module]
            while step != module and len(chain) < 20:
                chain.append(step)
                step = via[step]
            circles.append(" <- ".join([module, *chain[1:], module]))
    assert not circles, "import circles:\n" + "\n".join(circles)


@pytest.mark.parametrize("layer", DECISION_LAYERS)
def test_a_decision_layer_does_no_io(layer: str) -> None:
    edges = graph()
    members = [m for m in edges if m == layer or m.startswith(layer + ".")]
    assert members, f"{layer} is no module or package"
    for member in members:
        via = reachable(member, edges)
        for library in IO_LIBRARIES:
            if library in via:
                chain, step = [library], via[library]
                while step != member:
                    chain.append(step)
                    step = via[step]
                pytest.fail(f"{member} imports {library}: " + " <- ".join([*chain, member]))


def test_the_operator_never_imports_the_server_beyond_its_contract() -> None:
    """The operator and forecastctl rely on the server's contract module, nothing more."""
    edges = graph()
    for module in (m for m in edges if m.startswith("forecastops")):
        servers = {t for t in reachable(module, edges) if t.startswith("model_server")}
        assert servers <= {"model_server", "model_server.contract", "model_server.settings"}, (
            module,
            servers,
        )


def test_the_server_never_imports_the_operator() -> None:
    edges = graph()
    for module in (m for m in edges if m.startswith("model_server")):
        operator = sorted(t for t in reachable(module, edges) if t.startswith("forecastops"))
        assert not operator, (module, operator)
