"""The safe condition evaluator: what it accepts, what it refuses, and how it answers."""

from __future__ import annotations

import math

import pytest
from forecastops.analysis.condition import ConditionError, parse_condition

HOLDS = [
    ("result > 0.01", 0.02, True),
    ("result > 0.01", 0.01, False),
    ("result >= 0.01", 0.01, True),
    ("result < 0.2", 0.19, True),
    ("result <= 0.2", 0.21, False),
    ("result == 0", 0.0, True),
    ("result != 0", 0.0, False),
    ("result > 1e-3", 0.002, True),
    ("result > .5", 0.6, True),
    ("result * 100 > 5", 0.06, True),
    ("result / 1000 < 0.25", 200.0, True),
    ("(result + 1) * 2 >= 4", 1.0, True),
    ("-result < -1", 2.0, True),
    ("result - 1 > 0", 0.5, False),
    ("result > 0 && result < 1", 0.5, True),
    ("result > 0 and result < 1", 1.5, False),
    ("result < 0 || result > 1", 1.5, True),
    ("result < 0 or result > 1", 0.5, False),
    ("!(result > 1)", 0.5, True),
    ("not result > 1", 2.0, False),
    ("((result > 1))", 2.0, True),
    ("result > 1 && (result < 3 || result == 10)", 10.0, True),
    ("result > 0.5", math.inf, True),
    ("result < 0.5", -math.inf, True),
]


@pytest.mark.parametrize(("text", "result", "expected"), HOLDS, ids=[t for t, _, _ in HOLDS])
def test_given_condition_when_evaluated_then_it_holds_as_written(text, result, expected):
    assert parse_condition(text).holds(result) is expected


REFUSED = [
    ("", "empty"),
    ("result", "expected a comparison"),
    ("0.5", "expected a comparison"),
    ("result > ", "unexpected end"),
    ("result >> 1", "expected a number"),
    ("foo > 1", "unknown name 'foo'"),
    ("len(result) > 1", "unknown name 'len'"),
    ('__import__("os").system("id")', "unexpected character"),
    ("result.real > 1", "unexpected character"),
    ("result[0] > 1", "unexpected character"),
    ("result > 1)", "unexpected ')'"),
    ("(result > 1", "expected ')'"),
    ("result > 1 2", "unexpected '2'"),
    ("result > 1 &&", "unexpected end"),
    ("result ; 1", "unexpected character ';'"),
]


@pytest.mark.parametrize(("text", "problem"), REFUSED, ids=[t or "<empty>" for t, _ in REFUSED])
def test_given_invalid_condition_when_parsed_then_refused_with_the_problem(text, problem):
    with pytest.raises(ConditionError) as caught:
        parse_condition(text)
    assert problem in str(caught.value)


def test_given_nan_when_evaluated_then_error_not_an_answer():
    with pytest.raises(ConditionError, match="NaN"):
        parse_condition("result > 0.01").holds(math.nan)


def test_given_division_by_zero_when_evaluated_then_error_not_an_answer():
    with pytest.raises(ConditionError, match="division by zero"):
        parse_condition("1 / result > 2").holds(0.0)


def test_given_condition_when_printed_then_it_reads_as_written():
    assert str(parse_condition("result > 0.01")) == "result > 0.01"
