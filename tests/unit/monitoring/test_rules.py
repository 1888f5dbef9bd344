"""deploy/monitoring/prometheus-rules.yaml: promtool's checks and unit tests, and the
conventions every alert follows."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

MONITORING = Path(__file__).resolve().parents[3] / "deploy/monitoring"
RULES = MONITORING / "prometheus-rules.yaml"
RULE_TESTS = sorted((MONITORING / "tests").glob("*.yaml"))
RUNBOOK = MONITORING / "runbook.md"
RUNBOOK_URL = "https://github.com/forecastops/forecastops/blob/main/deploy/monitoring/runbook.md#"


def alerting_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def alert_names() -> list[str]:
    return [rule["alert"] for rule in alerting_rules()]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)


def test_promtool_check_rules(promtool: str) -> None:
    proc = run(promtool, "check", "rules", str(RULES))
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("test_file", RULE_TESTS, ids=lambda path: path.stem)
def test_promtool_test_rules(promtool: str, test_file: Path) -> None:
    proc = run(promtool, "test", "rules", str(test_file))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_alert_is_tested_firing_and_not_firing() -> None:
    firing: set[str] = set()
    silent: set[str] = set()
    for test_file in RULE_TESTS:
        doc = yaml.safe_load(test_file.read_text())
        assert doc["rule_files"] == ["../prometheus-rules.yaml"], test_file.name
        for test in doc["tests"]:
            for case in test.get("alert_rule_test", []):
                (firing if case.get("exp_alerts") else silent).add(case["alertname"])
    names = set(alert_names())
    assert not names - firing, f"never tested firing: {sorted(names - firing)}"
    assert not names - silent, f"never tested silent: {sorted(names - silent)}"
    assert firing | silent <= names, f"tests of unknown alerts: {sorted((firing | silent) - names)}"


@pytest.mark.parametrize("rule", alerting_rules(), ids=lambda rule: rule["alert"])
def test_alert_conventions(rule: dict[str, Any]) -> None:
    assert re.fullmatch(r"[A-Z][A-Za-z0-9]+", rule["alert"])
    assert re.fullmatch(r"\d+[smh]", rule.get("for", "")), "every alert waits with for:"
    assert rule["labels"]["severity"] in {"critical", "warning"}
    annotations = rule["annotations"]
    assert set(annotations) == {"summary", "description", "runbook_url"}
    assert annotations["summary"].endswith(".")
    assert "{{ $labels." in annotations["description"], "the description says where"
    assert annotations["runbook_url"] == RUNBOOK_URL + rule["alert"].lower()


def test_every_alert_has_a_runbook_section() -> None:
    sections = re.findall(r"^## (\S+)$", RUNBOOK.read_text(), flags=re.MULTILINE)
    assert sections == alert_names()


@pytest.mark.parametrize("rule", alerting_rules(), ids=lambda rule: rule["alert"])
def test_alerts_query_listed_metrics_and_labels(rule: dict[str, Any], contract: Any) -> None:
    assert contract.problems(rule["expr"]) == []


def test_seed_checklist_thresholds() -> None:
    """The thresholds of the seeds' checklist, as written in the expressions."""
    exprs = {rule["alert"]: " ".join(rule["expr"].split()) for rule in alerting_rules()}
    assert exprs["ForecastModelHighLatency"].startswith("histogram_quantile(0.95,")
    assert exprs["ForecastModelHighLatency"].endswith("> 0.2")
    assert exprs["ForecastModelHighErrorRate"].endswith("> 0.001")
    assert exprs["ForecastModelLowCacheHitRate"].endswith("< 0.8")


def test_model_server_exports_the_listed_metrics(contract: Any) -> None:
    """The model server's entries in metrics.yaml match model_server/metrics.py exactly."""
    metrics_module = pytest.importorskip("model_server.metrics")
    server = metrics_module.Metrics("store-demand", "5d8f7c")
    server.observe_request("forecast", 200, 0.01)
    server.cache_hits.inc()
    server.cache_misses.inc()
    exported: dict[str, frozenset[str]] = {}
    for family in server.registry.collect():
        for sample in family.samples:
            exported[sample.name] = frozenset(sample.labels)
    for name, metric in contract.exporters["model-server"]["metrics"].items():
        names = [f"{name}_bucket"] if metric["type"] == "histogram" else [name]
        for series in names:
            assert series in exported, f"model_server/metrics.py exports no {series}"
            extra = {"le"} if series.endswith("_bucket") else set()
            assert exported[series] == frozenset(metric["labels"]) | extra, series


def test_operator_exports_the_listed_rollout_metrics(contract: Any) -> None:
    """The operator's metrics (forecastops/prometheus_metrics.py, with the rollout counters
    of forecastops/rollout/metrics.py) match metrics.yaml."""
    prometheus_metrics = pytest.importorskip("forecastops.telemetry.prometheus")

    metrics = prometheus_metrics.PrometheusMetrics()
    collectors = [*vars(metrics).values(), *vars(metrics.rollouts).values()]
    exported: dict[str, frozenset[str]] = {}
    for collector in (c for c in collectors if hasattr(c, "_labelnames")):
        # prometheus-client keeps a counter's name without _total, and label names only
        # on the collector.
        suffix = "_total" if collector._type == "counter" else ""
        exported[collector._name + suffix] = frozenset(collector._labelnames)
    listed = contract.exporters["operator"]["metrics"]
    rollout = {name for name in listed if "backup" not in name}
    assert rollout <= set(exported), f"not exported: {sorted(rollout - set(exported))}"
    for name in rollout:
        assert exported[name] == frozenset(listed[name]["labels"]), name


@pytest.mark.parametrize(
    ("expr", "metrics", "grouping"),
    [
        ('sum by (a, b) (rate(x_total{code=~"5..", le="0.1"}[5m]))', {"x_total"}, {"a", "b"}),
        (
            "histogram_quantile(0.95, sum(rate(y_bucket[$__rate_interval])) by (le))",
            {"y_bucket"},
            {"le"},
        ),
        ("a / on (job) group_left (pod) b > 1e3", {"a", "b"}, {"job", "pod"}),
        ('absent(up{job="x"}) or max by (job) (up) == 0', {"up"}, {"job"}),
        ("time() - max(z offset 5m) > bool 0", {"z"}, set()),
    ],
)
def test_query_reader(query_reader: Any, expr: str, metrics: set[str], grouping: set[str]) -> None:
    query = query_reader(expr)
    assert (set(query.metrics), set(query.grouping_labels)) == (metrics, grouping)
