"""The metrics of an analysis as the spec declares them, parsed and checked once."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

from forecastops.analysis.condition import ConditionError, Expression, parse_condition
from forecastops.analysis.template import TemplateError, check_template


class MetricSpecError(ValueError):
    """A metric the spec declares cannot be used; the message names the metric."""


@dataclass(frozen=True)
class PrometheusSource:
    """An instant PromQL query; `address` overrides the operator's default Prometheus."""

    query: str
    address: str | None = None


MetricSource: TypeAlias = PrometheusSource
"""Where a metric's value comes from: a union that grows with each provider."""


@dataclass(frozen=True)
class MetricSpec:
    name: str
    source: MetricSource
    success: Expression | None = None
    failure: Expression | None = None


def parse_metric(raw: Mapping[str, Any]) -> MetricSpec:
    """`spec.rollout.analysis.metrics[]` → MetricSpec; raises MetricSpecError.

    >>> parse_metric({"name": "error-rate", "prometheus": {"query": "vector(0)"},
    ...               "failureCondition": "result > 0.01"}).failure.text
    'result > 0.01'
    """
    name = str(raw.get("name") or "")
    if not name:
        raise MetricSpecError("every analysis metric needs a name")
    try:
        source = _source(raw)
        success = _condition(raw.get("successCondition"))
        failure = _condition(raw.get("failureCondition"))
    except (ConditionError, TemplateError, ValueError) as exc:
        raise MetricSpecError(f"metric {name!r}: {exc}") from exc
    if success is None and failure is None:
        raise MetricSpecError(f"metric {name!r} needs successCondition, failureCondition or both")
    return MetricSpec(name, source, success, failure)


def _source(raw: Mapping[str, Any]) -> MetricSource:
    prometheus = raw.get("prometheus")
    if not isinstance(prometheus, Mapping) or not prometheus.get("query"):
        raise ValueError("needs prometheus.query")
    query = str(prometheus["query"])
    check_template(query)
    address = prometheus.get("address")
    return PrometheusSource(query, str(address).rstrip("/") if address else None)


def _condition(text: object) -> Expression | None:
    return parse_condition(str(text)) if text else None
