"""The metrics' own rules: the bootstrap, Syntetos-Boylan, refused inputs, empty inputs,
and properties that hold for any data (Hypothesis)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from forecastops.gates import metrics
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

# --- the paired bootstrap over series ----------------------------------------------------


def panel(n_series: int, length: int, seed: int, worse: float = 1.0):
    """y and two forecasts; the candidate's errors are `worse` times the stable's in scale."""
    rng = np.random.default_rng(seed)
    ids = np.repeat([f"s{i:03d}" for i in range(n_series)], length)
    level = np.repeat(rng.gamma(2.0, 20.0, n_series), length)
    y = rng.poisson(level).astype(float)
    stable = np.maximum(0, y + rng.normal(0, 0.2, y.size) * level)
    candidate = np.maximum(0, y + worse * rng.normal(0, 0.2, y.size) * level)
    return ids, y, candidate, stable


def test_bootstrap_ratio_is_the_ratio_of_pooled_wapes():
    ids, y, cand, stable = panel(40, 14, seed=1, worse=1.1)
    result = metrics.bootstrap_wape_ratio(ids, y, cand, stable, np.random.default_rng(0))
    expected = metrics.pooled_wape(y, cand).value / metrics.pooled_wape(y, stable).value
    assert result.ratio == pytest.approx(expected)
    assert result.lower <= result.ratio <= result.upper
    assert (result.n_series, result.n_resamples, result.level) == (40, 2000, 0.95)


def test_bootstrap_is_reproducible_with_the_same_seed():
    ids, y, cand, stable = panel(30, 7, seed=2)
    first = metrics.bootstrap_wape_ratio(ids, y, cand, stable, np.random.default_rng(42))
    again = metrics.bootstrap_wape_ratio(ids, y, cand, stable, np.random.default_rng(42))
    other = metrics.bootstrap_wape_ratio(ids, y, cand, stable, np.random.default_rng(43))
    assert first == again
    assert (first.lower, first.upper) != (other.lower, other.upper)


def test_bootstrap_resamples_series_not_points():
    """One series: every resample is that series, so the interval is the point ratio."""
    ids, y, cand, stable = panel(1, 28, seed=3, worse=1.3)
    result = metrics.bootstrap_wape_ratio(ids, y, cand, stable, np.random.default_rng(0))
    assert result.lower == result.upper == pytest.approx(result.ratio)


def test_bootstrap_interval_narrows_with_more_series_and_widens_with_level():
    ids, y, cand, stable = panel(20, 7, seed=4)
    many = panel(400, 7, seed=4)
    few = metrics.bootstrap_wape_ratio(ids, y, cand, stable, np.random.default_rng(0))
    lots = metrics.bootstrap_wape_ratio(*many, rng=np.random.default_rng(0))
    wide = metrics.bootstrap_wape_ratio(ids, y, cand, stable, np.random.default_rng(0), level=0.99)
    assert lots.upper - lots.lower < few.upper - few.lower
    assert wide.upper - wide.lower > few.upper - few.lower


def test_bootstrap_of_identical_forecasts_is_exactly_one():
    ids, y, _, stable = panel(10, 7, seed=5)
    result = metrics.bootstrap_wape_ratio(ids, y, stable, stable, np.random.default_rng(0))
    assert (result.ratio, result.lower, result.upper) == (1.0, 1.0, 1.0)


def test_bootstrap_with_a_perfect_stable_is_undefined_not_inf():
    y = np.array([1.0, 2, 3, 4])
    ids = np.array(["a", "a", "b", "b"])
    result = metrics.bootstrap_wape_ratio(ids, y, y + 1, y, np.random.default_rng(0))
    assert (result.ratio, result.lower, result.upper) == (None, None, None)
    assert "no error" in result.reason


def test_bootstrap_resample_with_a_perfect_stable_counts_as_inf_for_the_candidate():
    """Series b: stable exact, candidate off. Resamples of only b are inf: upper is inf."""
    ids = np.array(["a", "b"])
    y = np.array([10.0, 10.0])
    result = metrics.bootstrap_wape_ratio(
        ids, y, np.array([10.0, 12.0]), np.array([11.0, 10.0]), np.random.default_rng(0)
    )
    assert result.ratio == pytest.approx(2.0)
    assert math.isinf(result.upper)


def test_bootstrap_counts_no_series_as_undefined():
    empty = np.array([])
    result = metrics.bootstrap_wape_ratio(empty, empty, empty, empty, np.random.default_rng(0))
    assert result.ratio is None
    assert result.n_series == 0


@pytest.mark.parametrize(("level", "n"), [(0.0, 10), (1.0, 10), (0.95, 0)])
def test_bootstrap_refuses_a_bad_level_or_resample_count(level, n):
    with pytest.raises(ValueError):
        metrics.bootstrap_wape_ratio(
            ["a"], [1.0], [1.0], [2.0], np.random.default_rng(0), level=level, n_resamples=n
        )


# --- Syntetos-Boylan ---------------------------------------------------------------------

DEMAND = {
    # series, kind, adi, cv2
    "smooth": ([10, 11, 9, 10, 12, 10], "smooth", 1.0, None),
    "erratic": ([1, 20, 2, 30, 1, 25], "erratic", 1.0, None),
    "intermittent": ([0, 5, 0, 0, 6, 0, 0, 5], "intermittent", 8 / 3, None),
    "lumpy": ([0, 1, 0, 0, 30, 0, 0, 2], "lumpy", 8 / 3, None),
    "no demand": ([0, 0, 0], "no-demand", None, None),
    "constant demand has CV2 0": ([4, 0, 4, 0], "intermittent", 2.0, 0.0),
}


@pytest.mark.parametrize(("y", "kind", "adi", "cv2"), DEMAND.values(), ids=DEMAND.keys())
def test_syntetos_boylan_classification(y, kind, adi, cv2):
    got = metrics.classify_demand(np.array(y, dtype=float))
    assert got.kind == kind
    if adi is None:
        assert got.adi is None
    else:
        assert got.adi == pytest.approx(adi)
    if cv2 is not None:
        assert got.cv2 == pytest.approx(cv2)


def test_syntetos_boylan_cutoffs_are_strict():
    # ADI = 33/25 = 1.32 exactly, sizes equal: smooth, not intermittent
    y = np.array([1.0] * 25 + [0.0] * 8)
    assert metrics.classify_demand(y).adi == pytest.approx(1.32)
    assert metrics.classify_demand(y).kind == "smooth"


# --- refused and empty inputs ------------------------------------------------------------


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_a_non_finite_forecast_is_refused_not_scored(bad):
    with pytest.raises(ValueError, match="non-finite"):
        metrics.pooled_wape(np.array([1.0, 2.0]), np.array([1.0, bad]))


def test_a_ratio_that_overflows_is_undefined_not_inf():
    score = metrics.pooled_wape(np.array([5e-324]), np.array([1.0]))
    assert score.value is None
    assert "overflows" in score.reason


def test_a_mean_over_series_that_overflows_is_undefined():
    scores = metrics.SeriesScores(("a", "b"), (1e308, 1e308), (), "test")
    assert (scores.mean().value, scores.mean().reason) == (None, "overflow")


def test_arrays_of_different_lengths_are_refused():
    with pytest.raises(ValueError, match="differ in length"):
        metrics.bias(np.ones(3), np.ones(2))
    with pytest.raises(ValueError, match="series ids"):
        metrics.series_wape(["a"], np.ones(2), np.ones(2))
    with pytest.raises(ValueError, match="horizons"):
        metrics.horizon_wape([1], np.ones(2), np.ones(2), [(1, 7)])


EMPTY = {
    "pooled_wape": lambda e: metrics.pooled_wape(e, e),
    "bias": lambda e: metrics.bias(e, e),
    "smape": lambda e: metrics.smape(e, e, "0-2"),
    "pinball": lambda e: metrics.pinball(e, e, 0.5),
    "weighted_pinball": lambda e: metrics.weighted_pinball(e, e, 0.5),
    "rmae": lambda e: metrics.rmae(e, e, e),
}


@pytest.mark.parametrize("score", EMPTY.values(), ids=EMPTY.keys())
def test_no_targets_is_undefined_with_a_reason(score):
    result = score(np.array([]))
    assert (result.value, result.n, result.reason) == (None, 0, "no targets")


def test_an_empty_bucket_and_a_zero_volume_bucket_say_so():
    got = metrics.horizon_wape([1, 2], [0.0, 3.0], [1.0, 3.0], [(1, 1), (2, 2), (3, 7)])
    assert got["1-1"].reason == "sum of |y| is 0: WAPE undefined"
    assert got["2-2"].value == 0.0
    assert got["3-7"].reason == "no targets"


def test_a_reversed_bucket_is_refused():
    with pytest.raises(ValueError, match="empty horizon bucket"):
        metrics.horizon_wape([1], [1.0], [1.0], [(7, 1)])


# --- properties --------------------------------------------------------------------------

values = hnp.arrays(float, st.integers(1, 40), elements=st.floats(0, 1e4, allow_subnormal=False))


@given(values)
def test_wape_of_a_perfect_forecast_is_zero_or_undefined(y):
    score = metrics.pooled_wape(y, y)
    assert score.value == 0.0 if np.abs(y).sum() > 0 else score.value is None


@given(values, st.floats(0.5, 5.0), st.floats(1e-3, 1e3))
def test_wape_does_not_change_when_y_and_yhat_are_scaled_together(y, spread, factor):
    yhat = y * spread + 1.0
    base, scaled = metrics.pooled_wape(y, yhat), metrics.pooled_wape(y * factor, yhat * factor)
    if base.value is None:
        assert scaled.value is None
    else:
        assert scaled.value == pytest.approx(base.value, rel=1e-9)


@given(values, st.floats(0.01, 100.0))
def test_a_forecast_above_every_actual_has_positive_bias(y, shift):
    score = metrics.bias(y, y + shift)
    assert score.value is None or score.value > 0
    under = metrics.bias(y, y - shift)
    assert under.value is None or under.value < 0


@given(values, values)
def test_smape_stays_within_its_declared_scale(y, yhat):
    n = min(y.size, yhat.size)
    one, two = metrics.smape(y[:n], yhat[:n], "0-1"), metrics.smape(y[:n], yhat[:n], "0-2")
    assert 0.0 <= one.value <= 1.0
    assert two.value == pytest.approx(2 * one.value)


@given(values, st.sampled_from([0.1, 0.5, 0.9]))
def test_pinball_at_the_median_is_half_the_mean_absolute_error(y, q):
    yhat = y[::-1].copy()
    loss = metrics.pinball(y, yhat, q).value
    assert loss >= 0
    if q == 0.5:
        assert loss == pytest.approx(0.5 * np.abs(y - yhat).mean())


@settings(max_examples=40, deadline=None)
@given(
    hnp.arrays(float, st.integers(2, 30), elements=st.floats(0, 100)),
    hnp.arrays(float, 30, elements=st.floats(0, 100)),
    hnp.arrays(float, 30, elements=st.floats(0, 100)),
    st.integers(1, 5),
    st.integers(0, 2**32 - 1),
)
def test_bootstrap_bounds_contain_the_point_ratio(y, cand_noise, stable_noise, length, seed):
    n = y.size
    ids = np.arange(n) // length
    result = metrics.bootstrap_wape_ratio(
        ids,
        y,
        y + cand_noise[:n],
        y + stable_noise[:n],
        np.random.default_rng(seed),
        n_resamples=200,
    )
    if result.ratio is None:
        assert not np.abs(y + stable_noise[:n] - y).any()
    else:
        assert result.lower <= result.ratio <= result.upper


@given(hnp.arrays(float, st.integers(1, 60), elements=st.floats(-1e3, 1e3)), st.integers(1, 12))
def test_seasonal_naive_repeats_the_last_period(history, m):
    if history.size < m:
        with pytest.raises(ValueError):
            metrics.seasonal_naive(history, 2 * m, m)
        return
    got = metrics.seasonal_naive(history, 2 * m, m)
    last = history[-m:]
    assert got.tolist() == [*last, *last]


@settings(max_examples=60, deadline=None)
@given(
    hnp.arrays(float, st.integers(0, 20), elements=st.floats(-1e6, 1e6)),
    hnp.arrays(float, 6, elements=st.floats(-1e6, 1e6)),
    hnp.arrays(float, 6, elements=st.floats(-1e6, 1e6)),
    st.integers(1, 7),
    st.sampled_from(list(metrics.ZeroScale)),
)
def test_mase_is_finite_or_excluded_under_every_policy(history, y, yhat, m, policy):
    ids = np.array(["a", "a", "a", "b", "b", "b"])
    got = metrics.mase(ids, y, yhat, {"a": history, "b": np.zeros(10)}, m, zero_scale=policy)
    assert all(math.isfinite(v) for v in got.values)
    assert sorted([*got.series, *got.excluded_series]) == ["a", "b"]
    mean = got.mean()
    assert mean.value is None or math.isfinite(mean.value)
