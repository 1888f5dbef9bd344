"""`spec.rollout` parsing: steps, durations, defaults, and what the CRD cannot check."""

from __future__ import annotations

import pytest
from forecastops.rollout.spec import (
    Analysis,
    Pause,
    RolloutSpecError,
    SetWeight,
    Strategy,
    parse_duration,
    parse_rollout,
)
from rollout_world import ERROR_RATE, rollout_spec


def test_given_design_doc_canary_when_parsed_then_steps_and_analysis_kept():
    spec = parse_rollout(rollout_spec())
    assert spec.strategy is Strategy.CANARY
    assert spec.canary.steps == (
        SetWeight(10),
        Pause(10.0),
        Analysis(("error-rate", "latency-p95")),
        SetWeight(50),
        Pause(None),
    )
    assert (spec.analysis.interval_seconds, spec.analysis.failure_limit) == (1.0, 2)
    assert spec.analysis.metric("error-rate").failure.text == "result > 0.01"
    assert not spec.exact_weights


def test_given_no_rollout_when_parsed_then_none_means_plain_rolling_updates():
    assert parse_rollout(None) is None
    assert parse_rollout({}) is None


def test_given_minimal_blue_green_when_parsed_then_defaults_apply():
    spec = parse_rollout({"strategy": "BlueGreen"})
    bg = spec.blue_green
    assert (bg.auto_promotion, bg.auto_promotion_seconds, bg.scale_down_delay_seconds) == (
        False,
        None,
        30.0,
    )
    assert spec.analysis.interval_seconds == 30.0
    assert (spec.analysis.failure_limit, spec.analysis.inconclusive_limit, spec.analysis.count) == (
        2,
        3,
        3,
    )
    assert spec.progress_deadline_seconds == 600.0 and spec.abort_scale_down_delay_seconds == 0.0


def test_given_gateway_routing_and_background_when_parsed_then_both_kept():
    spec = parse_rollout(
        rollout_spec(
            canary={
                "steps": [{"setWeight": 5}],
                "trafficRouting": {"gatewayAPI": {"httpRoute": "demand"}},
                "analysis": {"templates": ["error-rate"], "startingStep": 1},
            }
        )
    )
    assert spec.canary.http_route == "demand" and spec.exact_weights
    assert spec.canary.background.templates == ("error-rate",)
    assert spec.canary.background.starting_step == 1


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ({"strategy": "Linear"}, "strategy 'Linear' is unknown"),
        ({"strategy": "Canary"}, "canary is required"),
        ({"canary": {"steps": []}}, "at least one step"),
        ({"canary": {"steps": [{"setWeight": 10, "pause": {}}]}}, "exactly one of"),
        ({"canary": {"steps": [{"setWeight": 120}]}}, "within 0-100"),
        ({"canary": {"steps": [{"pause": {"duration": "ten minutes"}}]}}, "not a duration"),
        (
            {"canary": {"steps": [{"analysis": {"templates": ["p99"]}}]}},
            "template 'p99' is not defined",
        ),
        (
            {
                "canary": {"steps": [{"setWeight": 1}]},
                "analysis": {"metrics": [{**ERROR_RATE, "failureCondition": "result >>"}]},
            },
            "metric 'error-rate'",
        ),
        (
            {"strategy": "BlueGreen", "blueGreen": {"prePromotionAnalysis": {"templates": []}}},
            "at least one metric",
        ),
    ],
    ids=[
        "strategy",
        "no-canary",
        "no-steps",
        "two-kinds",
        "weight",
        "duration",
        "undefined-template",
        "bad-condition",
        "empty-templates",
    ],
)
def test_given_invalid_rollout_when_parsed_then_refused_naming_the_field(raw, problem):
    with pytest.raises(RolloutSpecError) as caught:
        parse_rollout(raw)
    assert problem in str(caught.value)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30.0), ("2m", 120.0), ("1h30m", 5400.0), ("500ms", 0.5), ("1m1s", 61.0)],
)
def test_given_go_duration_when_parsed_then_seconds(text, seconds):
    assert parse_duration(text) == seconds
