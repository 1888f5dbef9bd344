"""One measurement of one metric, and its verdict.

| value                  | failureCondition | successCondition | verdict      |
|------------------------|------------------|------------------|--------------|
| none (no data, NaN, error) | -            | -                | Inconclusive |
| v                      | holds            | any              | Failed       |
| v                      | absent / fails   | holds            | Successful   |
| v                      | absent           | does not hold    | Failed       |
| v                      | does not hold    | absent           | Successful   |
| v                      | does not hold    | does not hold    | Inconclusive |

A measurement that could not be taken is never a pass and never a failure: it is
inconclusive, with the provider's error text kept as its message.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from forecastops.analysis.condition import ConditionError
from forecastops.analysis.provider import MetricsError, MetricsProvider
from forecastops.analysis.spec import MetricSpec, PrometheusSource
from forecastops.analysis.template import TemplateError, render


class Verdict(StrEnum):
    SUCCESSFUL = "Successful"
    FAILED = "Failed"
    INCONCLUSIVE = "Inconclusive"


@dataclass(frozen=True)
class Measurement:
    metric: str
    verdict: Verdict
    value: float | None
    message: str
    at: datetime


def judge(metric: MetricSpec, value: float) -> tuple[Verdict, str]:
    """The verdict on `value` and a sentence saying why (see the module's table).

    >>> from forecastops.analysis.spec import parse_metric
    >>> m = parse_metric({"name": "error-rate", "prometheus": {"query": "q"},
    ...                   "failureCondition": "result > 0.01"})
    >>> judge(m, 0.25)
    (<Verdict.FAILED: 'Failed'>, "0.25 meets failureCondition 'result > 0.01'")
    """
    if math.isnan(value):
        return Verdict.INCONCLUSIVE, "NaN: nothing to measure"
    shown = format_value(value)
    try:
        if metric.failure and metric.failure.holds(value):
            return Verdict.FAILED, f"{shown} meets failureCondition {metric.failure.text!r}"
        if metric.success is None:
            return Verdict.SUCCESSFUL, f"{shown} does not meet failureCondition"
        if metric.success.holds(value):
            return Verdict.SUCCESSFUL, f"{shown} meets successCondition {metric.success.text!r}"
    except ConditionError as exc:
        return Verdict.INCONCLUSIVE, f"{shown}: {exc}"
    if metric.failure is None:
        return Verdict.FAILED, f"{shown} does not meet successCondition {metric.success.text!r}"
    return Verdict.INCONCLUSIVE, f"{shown} meets neither condition"


def measure(
    metric: MetricSpec, provider: MetricsProvider, variables: Mapping[str, str], now: datetime
) -> Measurement:
    """Query `provider` for `metric` and judge the answer; never raises for a bad answer."""
    try:
        value = provider.run_query(_query(metric, variables))
    except (MetricsError, TemplateError) as exc:
        return Measurement(metric.name, Verdict.INCONCLUSIVE, None, str(exc), now)
    verdict, message = judge(metric, value)
    return Measurement(metric.name, verdict, value, message, now)


def format_value(value: float) -> str:
    """Short and exact enough for a status line: 0.0123, 1.5e-05, 250, inf."""
    return f"{value:.4g}"


def _query(metric: MetricSpec, variables: Mapping[str, str]) -> str:
    match metric.source:
        case PrometheusSource(query=query):
            return render(query, variables)
    raise TemplateError(f"metric {metric.name!r} has no query")
