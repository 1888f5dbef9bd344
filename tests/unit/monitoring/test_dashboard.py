"""deploy/monitoring/dashboard.json: every panel query is valid PromQL (checked by promtool
as a recording rule) over metrics that metrics.yaml lists.

Evaluating the queries against a Prometheus that scrapes a real model server is an
integration test; this one needs neither.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

MONITORING = Path(__file__).resolve().parents[3] / "deploy/monitoring"
DASHBOARD = MONITORING / "dashboard.json"

# Grafana's built-in interval variables, as a query of a 6-hour range would get them.
GRAFANA_INTERVALS = {"$__rate_interval": "4m", "$__interval": "1m", "$__range": "6h"}
_VARIABLE = re.compile(r"\$\{?(\w+)\}?")


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def panels() -> list[dict[str, Any]]:
    return [panel for panel in dashboard()["panels"] if panel["type"] != "row"]


def targets() -> list[tuple[str, dict[str, Any]]]:
    return [(panel["title"], target) for panel in panels() for target in panel["targets"]]


def as_promql(expr: str) -> str:
    """The query Grafana sends: built-in intervals as durations, variables as a regex
    (they only ever appear inside =~ matchers)."""
    for name, duration in GRAFANA_INTERVALS.items():
        expr = expr.replace(name, duration)
    return _VARIABLE.sub(".*", expr)


def variable_queries() -> dict[str, str]:
    found = {}
    for variable in dashboard()["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            found[variable["name"]] = query["query"] if isinstance(query, dict) else query
    return found


def test_dashboard_shape() -> None:
    board = dashboard()
    assert board["uid"] == "forecastops"
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
    names = [variable["name"] for variable in board["templating"]["list"]]
    assert names == ["datasource", "namespace", "model"]
    for panel in panels():
        assert panel["targets"], panel["title"]
        assert panel["description"], panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"]


def test_panels_do_not_overlap() -> None:
    taken: set[tuple[int, int]] = set()
    for panel in dashboard()["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        cells = {
            (x, y)
            for x in range(pos["x"], pos["x"] + pos["w"])
            for y in range(pos["y"], pos["y"] + pos["h"])
        }
        assert not cells & taken, f"{panel['title']} overlaps another panel"
        taken |= cells


def test_every_query_is_valid_promql(promtool: str, tmp_path: Path) -> None:
    rules = [
        {"record": f"dashboard:panel_{index}", "expr": as_promql(target["expr"])}
        for index, (_, target) in enumerate(targets())
    ]
    rule_file = tmp_path / "dashboard-queries.yaml"
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    proc = subprocess.run(
        [promtool, "check", "rules", str(rule_file)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"{len(rules)} rules found" in proc.stdout


def test_promql_validation_catches_errors(promtool: str, tmp_path: Path) -> None:
    rule_file = tmp_path / "bad.yaml"
    bad = {
        "record": "dashboard:bad",
        "expr": as_promql("sum by (model (rate(x[$__rate_interval]))"),
    }
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": "d", "rules": [bad]}]}))
    proc = subprocess.run(
        [promtool, "check", "rules", str(rule_file)], capture_output=True, text=True, check=False
    )
    assert proc.returncode != 0


@pytest.mark.parametrize(
    ("title", "target"), targets(), ids=[f"{title}/{t['refId']}" for title, t in targets()]
)
def test_queries_use_listed_metrics_and_labels(
    title: str, target: dict[str, Any], contract: Any
) -> None:
    assert contract.problems(as_promql(target["expr"])) == []


@pytest.mark.parametrize(("name", "query"), variable_queries().items())
def test_variable_queries_use_listed_metrics(name: str, query: str, contract: Any) -> None:
    match = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", query)
    assert match, f"{name}: {query}"
    selector, label = match.groups()
    assert contract.problems(as_promql(selector)) == []
    (metric,) = contract_metrics(selector, contract)
    assert label in contract.labels[metric]


def contract_metrics(selector: str, contract: Any) -> list[str]:
    return [metric for metric in contract.labels if re.match(rf"{metric}\b", selector)]


def test_every_listed_metric_is_on_the_dashboard(contract: Any, query_reader: Any) -> None:
    used = set().union(*(query_reader(as_promql(t["expr"])).metrics for _, t in targets()))
    used = {re.sub(r"_(bucket|count|sum)$", "", metric) for metric in used}
    listed = {name for exporter in contract.exporters.values() for name in exporter["metrics"]}
    assert listed <= used, f"not on the dashboard: {sorted(listed - used)}"


def test_model_queries_follow_the_variables() -> None:
    """Every selector follows the namespace and model variables (the operator's series
    name the ForecastModel `name`, the server's `model`)."""
    for title, target in targets():
        for metric, matchers in re.findall(r"(\w+)\{([^}]*)\}", target["expr"]):
            if metric == "up":
                continue
            key = "model" if metric.startswith("prediction_service_") else "name"
            assert 'namespace=~"$namespace"' in matchers, title
            assert f'{key}=~"$model"' in matchers, title
