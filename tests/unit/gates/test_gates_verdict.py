"""The backtest rule, one row per case: which phase, which reason, and the sentence."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
import pytest
from forecastops.gates import metrics
from forecastops.gates.phase import GatePhase
from forecastops.gates.verdict import (
    BacktestCriteria,
    BacktestScores,
    GateReason,
    check_leakage,
    decide_backtest,
)

TRAINED = datetime(2026, 5, 31, tzinfo=UTC)
CUTOFF = datetime(2026, 6, 1, tzinfo=UTC)
RULE = BacktestCriteria(max_relative_degradation=0.02, min_series=30)


def scores(**changes) -> BacktestScores:
    base = {
        "metric": "wape",
        "candidate": 0.118,
        "stable": 0.121,
        "seasonal_naive": 0.190,
        "ratio": 0.975,
        "ratio_upper": 0.993,
        "n_series": 200,
    }
    return BacktestScores(**(base | changes))


CASES = {
    # scores, criteria, training end, phase, reason, message
    "non-inferior and beats naive": (
        scores(),
        RULE,
        TRAINED,
        GatePhase.SUCCESSFUL,
        GateReason.NON_INFERIOR,
        "wape 0.118 vs stable 0.121: upper 95% bound of the ratio 0.993 ≤ 1.02 "
        "(maxRelativeDegradation 0.02); beats seasonal naive 0.19",
    ),
    "upper bound above the limit fails": (
        scores(candidate=0.547, stable=0.502, seasonal_naive=0.61, ratio=1.09, ratio_upper=1.12),
        RULE,
        TRAINED,
        GatePhase.FAILED,
        GateReason.WORSE_THAN_STABLE,
        "wape 0.547 vs stable 0.502: upper 95% bound of the ratio 1.12 > 1.02 "
        "(maxRelativeDegradation 0.02)",
    ),
    "point ratio fine but upper bound above: still fails": (
        scores(ratio=0.99, ratio_upper=1.05),
        RULE,
        TRAINED,
        GatePhase.FAILED,
        GateReason.WORSE_THAN_STABLE,
        "wape 0.118 vs stable 0.121: upper 95% bound of the ratio 1.05 > 1.02 "
        "(maxRelativeDegradation 0.02)",
    ),
    "upper bound exactly at the limit passes": (
        scores(ratio_upper=1.02),
        RULE,
        TRAINED,
        GatePhase.SUCCESSFUL,
        GateReason.NON_INFERIOR,
        "wape 0.118 vs stable 0.121: upper 95% bound of the ratio 1.02 ≤ 1.02 "
        "(maxRelativeDegradation 0.02); beats seasonal naive 0.19",
    ),
    "a hair above the limit shows the digits that differ": (
        scores(ratio_upper=1.0201),
        RULE,
        TRAINED,
        GatePhase.FAILED,
        GateReason.WORSE_THAN_STABLE,
        "wape 0.118 vs stable 0.121: upper 95% bound of the ratio 1.0201 > 1.02 "
        "(maxRelativeDegradation 0.02)",
    ),
    "an infinite upper bound fails": (
        scores(ratio_upper=math.inf),
        RULE,
        TRAINED,
        GatePhase.FAILED,
        GateReason.WORSE_THAN_STABLE,
        "wape 0.118 vs stable 0.121: upper 95% bound of the ratio inf > 1.02 "
        "(maxRelativeDegradation 0.02)",
    ),
    "no better than seasonal naive fails": (
        scores(candidate=0.2, stable=0.21, seasonal_naive=0.2),
        RULE,
        TRAINED,
        GatePhase.FAILED,
        GateReason.NO_BETTER_THAN_NAIVE,
        "wape 0.2 does not beat seasonal naive 0.2 (mustBeBetter); wape 0.2 vs stable 0.21: "
        "upper 95% bound of the ratio 0.993 ≤ 1.02 (maxRelativeDegradation 0.02)",
    ),
    # when naive need not be beaten, its score (worse, or undefined) changes nothing
    **{
        case: (
            scores(seasonal_naive=naive),
            BacktestCriteria(0.02, must_beat_seasonal_naive=False, min_series=30),
            TRAINED,
            GatePhase.SUCCESSFUL,
            GateReason.NON_INFERIOR,
            "wape 0.118 vs stable 0.121: upper 95% bound of the ratio 0.993 ≤ 1.02 "
            "(maxRelativeDegradation 0.02)",
        )
        for case, naive in [
            ("naive not required: worse than naive passes", 0.1),
            ("naive not required and undefined: passes", None),
        ]
    },
    "a 90% level is named in the message": (
        scores(level=0.9),
        BacktestCriteria(0.05, min_series=30),
        TRAINED,
        GatePhase.SUCCESSFUL,
        GateReason.NON_INFERIOR,
        "wape 0.118 vs stable 0.121: upper 90% bound of the ratio 0.993 ≤ 1.05 "
        "(maxRelativeDegradation 0.05); beats seasonal naive 0.19",
    ),
    "too few series is inconclusive": (
        scores(n_series=12),
        RULE,
        TRAINED,
        GatePhase.INCONCLUSIVE,
        GateReason.TOO_FEW_SERIES,
        "wape: 12 series scored, fewer than minSeries 30",
    ),
    "too few series even when the scores are undefined": (
        scores(n_series=0, candidate=None, stable=None, ratio=None, ratio_upper=None),
        RULE,
        TRAINED,
        GatePhase.INCONCLUSIVE,
        GateReason.TOO_FEW_SERIES,
        "wape: 0 series scored, fewer than minSeries 30",
    ),
    "undefined candidate is an error, not a failure": (
        scores(candidate=None, reason="sum of |y| is 0: WAPE undefined"),
        RULE,
        TRAINED,
        GatePhase.ERROR,
        GateReason.UNDEFINED_SCORE,
        "wape undefined for candidate (sum of |y| is 0: WAPE undefined)",
    ),
    "undefined ratio bound (perfect stable) is an error": (
        scores(ratio=None, ratio_upper=None),
        RULE,
        TRAINED,
        GatePhase.ERROR,
        GateReason.UNDEFINED_SCORE,
        "wape undefined for ratio upper bound",
    ),
    "undefined stable and naive when naive is required": (
        scores(stable=None, seasonal_naive=None),
        RULE,
        TRAINED,
        GatePhase.ERROR,
        GateReason.UNDEFINED_SCORE,
        "wape undefined for stable, seasonal naive",
    ),
    "training end on the cutoff is leakage": (
        scores(),
        RULE,
        CUTOFF,
        GatePhase.ERROR,
        GateReason.DATA_LEAKAGE,
        "leakage: the candidate's trainingEnd 2026-06-01T00:00:00+00:00 is not before the "
        "dataset's earliest cutoff 2026-06-01T00:00:00+00:00",
    ),
    "leakage wins over an otherwise failing score": (
        scores(ratio_upper=2.0),
        RULE,
        datetime(2026, 7, 1, tzinfo=UTC),
        GatePhase.ERROR,
        GateReason.DATA_LEAKAGE,
        "leakage: the candidate's trainingEnd 2026-07-01T00:00:00+00:00 is not before the "
        "dataset's earliest cutoff 2026-06-01T00:00:00+00:00",
    ),
    "unknown training end cannot rule leakage out": (
        scores(),
        RULE,
        None,
        GatePhase.ERROR,
        GateReason.DATA_LEAKAGE,
        "the candidate's trainingEnd is unknown: leakage cannot be ruled out",
    ),
}


@pytest.mark.parametrize(
    ("given", "criteria", "training_end", "phase", "reason", "message"),
    CASES.values(),
    ids=CASES.keys(),
)
def test_backtest_verdict(given, criteria, training_end, phase, reason, message):
    verdict = decide_backtest(given, criteria, training_end=training_end, earliest_cutoff=CUTOFF)
    assert (verdict.phase, verdict.reason, verdict.message) == (phase, reason, message)


def test_training_end_before_the_cutoff_is_no_leakage():
    assert check_leakage(TRAINED, CUTOFF) is None


@pytest.mark.parametrize(("degradation", "min_series"), [(-0.01, 30), (math.nan, 30), (0.02, 0)])
def test_criteria_refuse_impossible_values(degradation, min_series):
    with pytest.raises(ValueError):
        BacktestCriteria(degradation, min_series=min_series)


def test_phases_are_argo_words():
    assert [p.value for p in GatePhase] == ["Successful", "Failed", "Inconclusive", "Error"]


def test_from_arrays_to_a_verdict_on_the_notes_data():
    """The metrics feed the rule: the all-zero series' over-forecast stays in the score."""
    from gates_reference import CANDIDATE, IDS, STABLE, Y

    naive = np.tile(np.array([45.0, 45, 45, 45]), 3) * np.repeat([1, 1, 0], 4)
    interval = metrics.bootstrap_wape_ratio(IDS, Y, CANDIDATE, STABLE, np.random.default_rng(0))
    given = BacktestScores(
        metric="wape",
        candidate=metrics.pooled_wape(Y, CANDIDATE).value,
        stable=metrics.pooled_wape(Y, STABLE).value,
        seasonal_naive=metrics.pooled_wape(Y, naive).value,
        ratio=interval.ratio,
        ratio_upper=interval.upper,
        n_series=interval.n_series,
    )

    verdict = decide_backtest(
        given, BacktestCriteria(0.02, min_series=3), TRAINED, earliest_cutoff=CUTOFF
    )

    assert given.ratio == pytest.approx(50 / 25)
    assert verdict.phase is GatePhase.FAILED
    assert verdict.message.startswith("wape 0.118 vs stable 0.0588: upper 95% bound")
