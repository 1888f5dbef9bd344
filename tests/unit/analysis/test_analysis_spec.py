"""Metric declarations and query templates, checked when the spec is read."""

from __future__ import annotations

import pytest
from forecastops.analysis.spec import MetricSpecError, PrometheusSource, parse_metric
from forecastops.analysis.template import TemplateError, check_template, placeholders, render


def test_given_metric_when_parsed_then_source_and_conditions_kept():
    m = parse_metric(
        {
            "name": "latency-p95",
            "prometheus": {"query": "q", "address": "http://prometheus:9090/"},
            "successCondition": "result < 0.2",
        }
    )
    assert m.source == PrometheusSource("q", "http://prometheus:9090")
    assert m.success.text == "result < 0.2" and m.failure is None


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ({"prometheus": {"query": "q"}, "failureCondition": "result > 1"}, "needs a name"),
        ({"name": "m", "failureCondition": "result > 1"}, "prometheus.query"),
        ({"name": "m", "prometheus": {"query": "q"}}, "successCondition, failureCondition or both"),
        ({"name": "m", "prometheus": {"query": "q"}, "failureCondition": "result >"}, "metric 'm'"),
        (
            {
                "name": "m",
                "prometheus": {"query": "x{{ revison }}"},
                "failureCondition": "result > 1",
            },
            "revison",
        ),
    ],
    ids=["no-name", "no-query", "no-condition", "bad-condition", "typo-in-template"],
)
def test_given_bad_metric_when_parsed_then_refused_naming_the_problem(raw, problem):
    with pytest.raises(MetricSpecError) as caught:
        parse_metric(raw)
    assert problem in str(caught.value)


def test_given_template_when_rendered_then_values_escaped_for_promql_strings():
    assert render('x{a="{{name}}"}', {"name": 'we"ird\\'}) == 'x{a="we\\"ird\\\\"}'


def test_given_query_when_inspected_then_placeholders_found_with_any_spacing():
    assert placeholders("{{revision}} {{ namespace }} {{  name}}") == {
        "revision",
        "namespace",
        "name",
    }


def test_given_unknown_variable_when_checked_then_error_lists_known_ones():
    with pytest.raises(
        TemplateError, match="known: interval, name, namespace, revision, stableRevision"
    ):
        check_template("x{{ model }}")
