"""Shared by the monitoring tests: promtool, the metric list, and reading PromQL."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from devenv.require import unavailable

MONITORING = Path(__file__).resolve().parents[3] / "deploy/monitoring"

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_SELECTOR = re.compile(r"(?<![\w:.$])([A-Za-z_:][\w:]*)?\s*\{([^{}]*)\}")
_MATCHER_LABEL = re.compile(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_IDENTIFIER = re.compile(r"(?<![\w:.$])([A-Za-z_:][\w:]*)(\s*\()?")
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan"}


@dataclass(frozen=True)
class Query:
    """What a PromQL expression refers to: metric names, and label names with where."""

    metrics: frozenset[str]
    matcher_labels: frozenset[tuple[str, str]]  # (metric, label) from selectors' {...}
    grouping_labels: frozenset[str]  # from by / without / on / ignoring / group_*


def read_query(expr: str) -> Query:
    """Metric and label names in ``expr``: a small reader for this repository's queries,
    not a PromQL parser (promtool checks the syntax)."""
    text = _STRING.sub('""', expr)
    matcher_labels = set()
    metrics = set()
    for name, matchers in _SELECTOR.findall(text):
        # A selector without a metric name ({__name__=...}) is kept as metric "".
        matcher_labels |= {(name, label) for label in _MATCHER_LABEL.findall(matchers)}
        metrics.add(name)
    text = _SELECTOR.sub(lambda m: f" {m.group(1) or ''} ", text)
    text = _RANGE.sub(" ", text)
    grouping = set()
    for labels in _GROUPING.findall(text):
        grouping |= {label.strip() for label in labels.split(",") if label.strip()}
    text = _GROUPING.sub(" ", text)
    for name, call in _IDENTIFIER.findall(text):
        if not call and name not in _KEYWORDS:
            metrics.add(name)
    return Query(frozenset(metrics), frozenset(matcher_labels), frozenset(grouping))


@dataclass(frozen=True)
class MetricContract:
    """deploy/monitoring/metrics.yaml: series name -> the labels it has when queried."""

    labels: dict[str, frozenset[str]]
    exporters: dict[str, dict[str, Any]]
    target_labels: frozenset[str]

    @classmethod
    def load(cls) -> MetricContract:
        doc = yaml.safe_load((MONITORING / "metrics.yaml").read_text())
        target = frozenset(doc["target_labels"])
        labels: dict[str, frozenset[str]] = {}
        for exporter in doc["exporters"].values():
            for name, metric in exporter["metrics"].items():
                own = frozenset(metric["labels"]) | target
                if metric["type"] == "histogram":
                    labels[f"{name}_bucket"] = own | {"le"}
                    labels[f"{name}_count"] = own
                    labels[f"{name}_sum"] = own
                else:
                    labels[name] = own
        return cls(labels, doc["exporters"], target)

    def problems(self, expr: str) -> list[str]:
        """Metrics not in the list, and labels that none of the query's metrics has."""
        query = read_query(expr)
        found = []
        for metric in sorted(query.metrics - set(self.labels)):
            found.append(
                f"unknown metric {metric}" if metric else "a selector without a metric name"
            )
        for metric, label in sorted(query.matcher_labels):
            if metric in self.labels and label not in self.labels[metric]:
                found.append(f"{metric} has no label {label}")
        known = frozenset().union(*(self.labels.get(m, frozenset()) for m in query.metrics))
        for label in sorted(query.grouping_labels - known):
            found.append(f"no metric of the query has the label {label} it groups by")
        return found


@pytest.fixture(scope="session")
def promtool() -> str:
    """promtool (Debian package prometheus); a skip without it, except in CI."""
    found = shutil.which("promtool")
    if found is None:
        unavailable("promtool", "install it with make deps (Debian package prometheus)")
    return found


@pytest.fixture(scope="session")
def contract() -> MetricContract:
    return MetricContract.load()


@pytest.fixture(scope="session")
def query_reader() -> Callable[[str], Query]:
    return read_query
