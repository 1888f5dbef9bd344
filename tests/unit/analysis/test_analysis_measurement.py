"""Verdicts: one value against the conditions, and measurements that could not be taken."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest
from forecastops.analysis.measurement import Verdict, judge, measure
from forecastops.analysis.provider import MetricsError, NoDataError
from forecastops.analysis.spec import parse_metric

NOW = datetime(2025, 1, 1, tzinfo=UTC)


def metric(success: str | None = None, failure: str | None = None, query: str = "q"):
    raw = {"name": "error-rate", "prometheus": {"query": query}}
    if success:
        raw["successCondition"] = success
    if failure:
        raw["failureCondition"] = failure
    return parse_metric(raw)


JUDGED = [
    # success, failure, value, verdict
    (None, "result > 0.01", 0.5, Verdict.FAILED),
    (None, "result > 0.01", 0.001, Verdict.SUCCESSFUL),
    ("result < 0.01", None, 0.001, Verdict.SUCCESSFUL),
    ("result < 0.01", None, 0.5, Verdict.FAILED),
    ("result < 0.01", "result > 0.05", 0.001, Verdict.SUCCESSFUL),
    ("result < 0.01", "result > 0.05", 0.5, Verdict.FAILED),
    ("result < 0.01", "result > 0.05", 0.03, Verdict.INCONCLUSIVE),
    ("result < 0.01", "result > 0.001", 0.005, Verdict.FAILED),  # failure wins
    (None, "result > 0.01", math.nan, Verdict.INCONCLUSIVE),
    (None, "result > 0.01", math.inf, Verdict.FAILED),
    ("1 / result > 2", None, 0.0, Verdict.INCONCLUSIVE),  # division by zero
]


@pytest.mark.parametrize(("success", "failure", "value", "verdict"), JUDGED)
def test_given_conditions_when_value_judged_then_verdict_as_in_the_table(
    success, failure, value, verdict
):
    got, message = judge(metric(success, failure), value)
    assert got is verdict
    assert message


def test_given_failed_value_when_judged_then_message_names_value_and_condition():
    _, message = judge(metric(failure="result > 0.01"), 0.3412)
    assert message == "0.3412 meets failureCondition 'result > 0.01'"


class Provider:
    def __init__(self, answer):
        self.answer = answer
        self.queries: list[str] = []

    def run_query(self, query: str) -> float:
        self.queries.append(query)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer

    def is_online(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("answer", "text"),
    [
        (NoDataError("no data: the query returned no series"), "no data"),
        (MetricsError("Prometheus at http://p unreachable: connection refused"), "unreachable"),
        (MetricsError("Prometheus bad_data: parse error"), "bad_data"),
    ],
    ids=["no-data", "unreachable", "bad-query"],
)
def test_given_provider_cannot_answer_when_measured_then_inconclusive_with_its_text(answer, text):
    m = measure(metric(failure="result > 0.01"), Provider(answer), {"revision": "b"}, NOW)
    assert m.verdict is Verdict.INCONCLUSIVE
    assert m.value is None
    assert text in m.message


def test_given_template_when_measured_then_query_rendered_with_variables():
    provider = Provider(0.0)
    q = 'sum(rate(x{revision="{{revision}}",namespace="{{ namespace }}"}[{{interval}}]))'
    m = measure(
        metric(failure="result > 0.01", query=q),
        provider,
        {"revision": "a41e02", "namespace": "retail", "interval": "30s"},
        NOW,
    )
    assert provider.queries == ['sum(rate(x{revision="a41e02",namespace="retail"}[30s]))']
    assert (m.verdict, m.value, m.at) == (Verdict.SUCCESSFUL, 0.0, NOW)


def test_given_variable_without_value_when_measured_then_inconclusive_not_raised():
    m = measure(metric(failure="result > 0.01", query="x{{revision}}"), Provider(0.0), {}, NOW)
    assert m.verdict is Verdict.INCONCLUSIVE
    assert "revision" in m.message
