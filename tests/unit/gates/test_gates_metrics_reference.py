"""The metrics against utilsforecast on the design notes' edge cases: where they agree,
the numbers match; where they differ (an all-zero series, a flat history, the sMAPE
scale), the difference is the documented policy, shown with its numbers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from forecastops.gates import metrics
from forecastops.gates.metrics import ZeroScale
from gates_reference import (
    CANDIDATE,
    DS,
    HISTORY_DS,
    HISTORY_IDS,
    HISTORY_Y,
    HORIZONS,
    IDS,
    STABLE,
    Y,
    by_id,
    frame,
)
from utilsforecast import losses
from utilsforecast.evaluation import evaluate


def histories(cutoff: int = 7) -> dict[str, np.ndarray]:
    """History plus the holdout actuals, cut at the origin: the holdout must not leak in."""
    ids = np.concatenate([HISTORY_IDS, IDS])
    ds = np.concatenate([HISTORY_DS, DS])
    y = np.concatenate([HISTORY_Y, Y])
    return metrics.history_until(ids, ds, y, cutoff)


def train_frame() -> pd.DataFrame:
    return frame(
        np.concatenate([HISTORY_IDS, IDS]),
        np.concatenate([HISTORY_Y, Y]),
        ds=np.concatenate([HISTORY_DS, DS]),
    )


# --- an all-zero series ------------------------------------------------------------------


def test_all_zero_series_pooled_wape_counts_the_over_forecast_utilsforecast_drops_it():
    df = frame(IDS, Y, ds=DS, model=CANDIDATE)
    weighted = evaluate(df, [losses.wape], agg_fn="weighted_mean", weights="auto")
    reference = float(weighted["model"].iloc[0])

    pooled = metrics.pooled_wape(Y, CANDIDATE)

    assert round(reference, 4) == 0.1153  # 49/425: the error on z is gone
    assert round(pooled.value, 4) == 0.1176  # 50/425
    assert pooled.value == pytest.approx(50 / 425)
    assert reference == pytest.approx(49 / 425)
    assert (pooled.n, pooled.policy) == (12, "pooled")


def test_pooled_wape_is_utilsforecast_wape_over_one_pooled_id():
    df = frame(np.full(Y.size, "all"), Y, model=CANDIDATE)
    reference = by_id(losses.wape(df, ["model"]))["all"]
    assert metrics.pooled_wape(Y, CANDIDATE).value == pytest.approx(reference)


def test_all_zero_series_per_series_wape_is_excluded_and_reported_not_nan():
    reference = by_id(losses.wape(frame(IDS, Y, model=CANDIDATE), ["model"]))
    scores = metrics.series_wape(IDS, Y, CANDIDATE)

    assert math.isnan(reference["z"])
    assert scores.excluded_series == ("z",)
    assert scores.as_dict() == pytest.approx({"a": reference["a"], "b": reference["b"]})
    mean_reference = evaluate(frame(IDS, Y, ds=DS, model=CANDIDATE), [losses.wape], agg_fn="mean")
    assert scores.mean().value == pytest.approx(float(mean_reference["model"].iloc[0]))
    assert scores.mean().excluded == ("z",)


def test_every_actual_zero_wape_and_bias_are_undefined_with_a_reason():
    zeros = np.zeros(4)
    for score in (metrics.pooled_wape(zeros, zeros + 1), metrics.bias(zeros, zeros + 1)):
        assert score.value is None
        assert not score.defined
        assert "sum of |y| is 0" in score.reason
    reference = losses.wape(frame(["z"] * 4, zeros, model=zeros + 1), ["model"])
    assert math.isnan(float(reference["model"].iloc[0]))


# --- per-horizon pooling -----------------------------------------------------------------


def test_per_horizon_wape_matches_utilsforecast_with_horizon_as_id():
    df = pd.DataFrame({"h": HORIZONS, "y": Y, "model": CANDIDATE})
    reference = losses.wape(df, ["model"], id_col="h")
    expected = dict(zip(reference["h"].astype(int), reference["model"], strict=True))

    ours = metrics.horizon_wape(HORIZONS, Y, CANDIDATE, [(h, h) for h in range(1, 5)])

    assert {k: s.value for k, s in ours.items()} == pytest.approx(
        {f"{h}-{h}": expected[h] for h in range(1, 5)}
    )


def test_per_bucket_wape_matches_utilsforecast_with_bucket_as_id():
    rng = np.random.default_rng(7)
    horizons = np.tile(np.arange(1, 29), 20)
    y = rng.gamma(2.0, 10.0, horizons.size)
    yhat = y * rng.normal(1.0, 0.2, horizons.size)
    buckets = [(1, 7), (8, 14), (15, 28)]
    label = np.select([horizons <= 7, horizons <= 14], ["1-7", "8-14"], "15-28")
    reference = by_id(losses.wape(frame(label, y, model=yhat), ["model"]))

    ours = metrics.horizon_wape(horizons, y, yhat, buckets)

    assert list(ours) == ["1-7", "8-14", "15-28"]
    assert {k: s.value for k, s in ours.items()} == pytest.approx(reference)
    assert [s.n for s in ours.values()] == [140, 140, 280]


# --- MASE and the zero scale -------------------------------------------------------------


@pytest.mark.parametrize("m", [1, 7])
def test_mase_matches_utilsforecast_on_history_up_to_the_origin(m):
    df = frame(IDS, Y, ds=DS, model=CANDIDATE).assign(cutoff=7)
    reference = losses.mase(df, ["model"], seasonality=m, train_df=train_frame())
    expected = by_id(reference)

    ours = metrics.mase(IDS, Y, CANDIDATE, histories(), m=m)

    assert math.isinf(expected["z"])  # utilsforecast: flat-zero history gives inf
    assert ours.as_dict() == pytest.approx({"a": expected["a"], "b": expected["b"]})
    assert ours.excluded_series == ("z",)


def test_history_until_cuts_at_the_origin_and_sorts_by_time():
    got = metrics.history_until(
        np.array(["s", "s", "s", "t"]), np.array([3, 1, 9, 2]), np.array([30.0, 10, 90, 5]), 3
    )
    assert {k: list(v) for k, v in got.items()} == {"s": [10.0, 30.0], "t": [5.0]}


def test_flat_zero_history_stable_perfect_utilsforecast_gives_nan():
    df = frame(IDS, Y, ds=DS, model=STABLE).assign(cutoff=7)
    expected = by_id(losses.mase(df, ["model"], seasonality=7, train_df=train_frame()))
    assert math.isnan(expected["z"])  # 0/0
    ours = metrics.mase(IDS, Y, STABLE, histories(), m=7)
    assert ours.excluded_series == ("z",)
    assert all(math.isfinite(v) for v in ours.values)


FLAT = {
    # history, policy, value of the series (None = excluded), why
    "zero history, exclude": (np.zeros(14), ZeroScale.EXCLUDE, None),
    "zero history, epsilon": (np.zeros(14), ZeroScale.EPSILON, 0.25 / 1e-8),
    "zero history, naive1 (flat at lag 1 too)": (np.zeros(14), ZeroScale.NAIVE1, None),
    "weekly pattern, exclude": (np.tile(np.arange(1.0, 8), 2), ZeroScale.EXCLUDE, None),
    "weekly pattern, epsilon": (np.tile(np.arange(1.0, 8), 2), ZeroScale.EPSILON, 0.25 / 1e-8),
    # 13 lag-1 differences: twelve of 1 and one of -6, so mean |diff| = 18/13
    "weekly pattern, naive1": (np.tile(np.arange(1.0, 8), 2), ZeroScale.NAIVE1, 0.25 / (18 / 13)),
}


@pytest.mark.parametrize(("history", "policy", "expected"), FLAT.values(), ids=FLAT.keys())
def test_flat_history_zero_scale_policy_is_applied_and_reported(history, policy, expected):
    y, yhat = np.array([0.0, 0, 0, 0]), np.array([0.0, 1, 0, 0])
    ours = metrics.mase(np.full(4, "f"), y, yhat, {"f": history}, m=7, zero_scale=policy)

    assert ours.policy == f"m=7; zero scale: {policy.value}"
    if expected is None:
        assert ours.excluded_series == ("f",)
        assert ours.mean().value is None
        assert ours.mean().reason == "no series with a value"
    else:
        assert ours.excluded_series == ()
        assert ours.as_dict()["f"] == pytest.approx(expected)
        assert math.isfinite(ours.mean().value)


def test_naive1_policy_matches_utilsforecast_mase_with_seasonality_one():
    history = np.tile(np.arange(1.0, 8), 2)
    y, yhat = np.array([1.0, 2, 3, 4]), np.array([2.0, 2, 2, 5])
    train = frame(["f"] * 14, history, ds=np.arange(14))
    df = frame(["f"] * 4, y, ds=np.arange(14, 18), model=yhat)
    expected = by_id(losses.mase(df, ["model"], seasonality=1, train_df=train))["f"]
    weekly = by_id(losses.mase(df, ["model"], seasonality=7, train_df=train))["f"]

    ours = metrics.mase(["f"] * 4, y, yhat, {"f": history}, m=7, zero_scale="naive1")

    assert math.isinf(weekly)
    assert ours.as_dict()["f"] == pytest.approx(expected)


def test_a_history_no_longer_than_m_has_no_scale_and_is_excluded():
    ours = metrics.mase(["s"] * 2, [1.0, 2], [1.0, 1], {"s": np.arange(7.0)}, m=7)
    assert ours.excluded_series == ("s",)


def test_mase_without_a_series_history_refuses():
    with pytest.raises(ValueError, match="no history for series 'a'"):
        metrics.mase(["a"], [1.0], [1.0], {}, m=1)


# --- intermittent demand -----------------------------------------------------------------

INTERMITTENT_HISTORY = np.array([0, 0, 3, 0, 0, 0, 5, 0, 0, 2, 0, 0, 0, 0, 4, 0], dtype=float)
INTERMITTENT_Y = np.array([0, 0, 6, 0, 0, 1, 0], dtype=float)
INTERMITTENT_YHAT = np.array([1, 1, 1, 1, 1, 1, 1], dtype=float)


def test_intermittent_series_is_classified_and_its_scores_match_utilsforecast():
    demand = metrics.classify_demand(INTERMITTENT_HISTORY)
    assert demand.kind == "intermittent"
    assert demand.adi == pytest.approx(16 / 4)
    assert demand.cv2 == pytest.approx((np.std([3, 5, 2, 4]) / 3.5) ** 2)

    ids = ["i"] * 7
    df = frame(ids, INTERMITTENT_Y, ds=np.arange(16, 23), model=INTERMITTENT_YHAT)
    train = frame(["i"] * 16, INTERMITTENT_HISTORY, ds=np.arange(16))
    for m in (1, 7):
        expected = by_id(losses.mase(df, ["model"], seasonality=m, train_df=train))["i"]
        ours = metrics.mase(ids, INTERMITTENT_Y, INTERMITTENT_YHAT, {"i": INTERMITTENT_HISTORY}, m)
        assert ours.as_dict()["i"] == pytest.approx(expected)
    assert metrics.pooled_wape(INTERMITTENT_Y, INTERMITTENT_YHAT).value == pytest.approx(
        by_id(losses.wape(df, ["model"]))["i"]
    )
    # five of seven targets are 0: each scores the worst sMAPE, 1, on the 0-1 scale
    assert metrics.smape(INTERMITTENT_Y, INTERMITTENT_YHAT, "0-1").value == pytest.approx(
        by_id(losses.smape(df, ["model"]))["i"]
    )


def test_intermittent_zero_forecast_has_nonzero_wape_and_zero_over_zero_smape_terms():
    y, yhat = INTERMITTENT_Y, np.zeros(7)
    df = frame(["i"] * 7, y, model=yhat)
    assert metrics.pooled_wape(y, yhat).value == pytest.approx(1.0)
    assert metrics.smape(y, yhat, "0-1").value == pytest.approx(
        by_id(losses.smape(df, ["model"]))["i"]
    )
    assert metrics.smape(y, yhat, "0-1").value == pytest.approx(2 / 7)


# --- sMAPE scale, bias sign --------------------------------------------------------------


def test_smape_scales_on_the_notes_data_are_025_and_05():
    y, yhat = np.array([1.0, 1.0]), np.array([3.0, 1.0])
    reference = by_id(losses.smape(frame(["s", "s"], y, model=yhat), ["model"]))["s"]

    zero_one = metrics.smape(y, yhat, "0-1")
    zero_two = metrics.smape(y, yhat, "0-2")

    assert (reference, zero_one.value, zero_two.value) == (0.25, 0.25, 0.5)
    assert zero_two.policy == "scale 0-2; 0/0 counts 0"


def test_smape_over_equal_length_series_is_utilsforecast_mean_over_series():
    rng = np.random.default_rng(3)
    ids = np.repeat(["a", "b", "c"], 5)
    y, yhat = rng.poisson(3, 15).astype(float), rng.poisson(3, 15).astype(float)
    reference = evaluate(frame(ids, y, model=yhat), [losses.smape], agg_fn="mean")
    assert metrics.smape(y, yhat, "0-1").value == pytest.approx(float(reference["model"].iloc[0]))


def test_smape_refuses_an_unstated_scale():
    with pytest.raises(ValueError, match="sMAPE scale"):
        metrics.smape(np.ones(2), np.ones(2), "percent")


BIAS = {
    "over-forecast is positive": (np.array([10.0, 20]), np.array([12.0, 23]), 5 / 30),
    "under-forecast is negative": (np.array([10.0, 20]), np.array([8.0, 17]), -5 / 30),
    "errors that cancel are 0": (np.array([10.0, 20]), np.array([12.0, 18]), 0.0),
}


@pytest.mark.parametrize(("y", "yhat", "expected"), BIAS.values(), ids=BIAS.keys())
def test_bias_sign_positive_means_over_forecast_as_utilsforecast_computes_cfe(y, yhat, expected):
    df = frame(["s", "s"], y, model=yhat)
    cfe = by_id(losses.cfe(df, ["model"]))["s"]  # its docstring says positive = under
    mean_error = by_id(losses.bias(df, ["model"]))["s"]

    ours = metrics.bias(y, yhat)

    assert ours.value == pytest.approx(expected)
    assert ours.value == pytest.approx(cfe / np.abs(y).sum())
    assert np.sign(ours.value) == np.sign(mean_error)
    assert ours.policy == "positive = over-forecast"


# --- pinball, rMAE, seasonal naive -------------------------------------------------------


@pytest.mark.parametrize("q", [0.1, 0.5, 0.9])
def test_pinball_matches_utilsforecast_quantile_loss(q):
    df = frame(np.full(Y.size, "all"), Y, model=CANDIDATE)
    expected = by_id(losses.quantile_loss(df, {"model": "model"}, q=q))["all"]
    ours = metrics.pinball(Y, CANDIDATE, q)
    assert ours.value == pytest.approx(expected)
    weighted = metrics.weighted_pinball(Y, CANDIDATE, q)
    assert weighted.value == pytest.approx(expected * Y.size / 425)


@pytest.mark.parametrize("q", [0.1, 0.9])
def test_scaled_pinball_matches_utilsforecast_scaled_quantile_loss(q):
    df = frame(IDS, Y, ds=DS, model=CANDIDATE).assign(cutoff=7)
    expected = by_id(
        losses.scaled_quantile_loss(
            df, {"model": "model"}, seasonality=7, train_df=train_frame(), q=q
        )
    )
    ours = metrics.scaled_pinball(IDS, Y, CANDIDATE, q, histories(), m=7)
    assert ours.as_dict() == pytest.approx({"a": expected["a"], "b": expected["b"]})
    assert ours.excluded_series == ("z",)
    assert ours.policy == f"q={q}; m=7; zero scale: exclude"


def test_pinball_refuses_a_level_outside_zero_one():
    with pytest.raises(ValueError, match="quantile level"):
        metrics.pinball(np.ones(2), np.ones(2), 1.0)


def test_rmae_against_seasonal_naive_matches_utilsforecast_and_survives_a_flat_history():
    history = np.zeros(14)
    naive = metrics.seasonal_naive(history, 4, 7)
    y, yhat = np.array([0.0, 2, 0, 1]), np.array([0.5, 1.5, 0.5, 0.5])
    df = frame(["s"] * 4, y, model=yhat, naive=naive)
    expected = by_id(losses.rmae(df, ["model"], baseline="naive"))["s"]

    ours = metrics.rmae(y, yhat, naive)

    assert ours.value == pytest.approx(expected)
    assert ours.value == pytest.approx(2.0 / 3.0)
    assert metrics.mase(["s"] * 4, y, yhat, {"s": history}, 7).excluded_series == ("s",)


def test_rmae_is_undefined_when_the_naive_forecast_is_exact():
    y = np.array([1.0, 2.0])
    assert metrics.rmae(y, y + 1, y).reason == "the naive forecast has no error: rMAE undefined"


NAIVE = {
    # history, horizon, m, expected
    "one week ahead": (np.arange(1.0, 8), 7, 7, [1, 2, 3, 4, 5, 6, 7]),
    "beyond one period repeats": (np.arange(1.0, 8), 10, 7, [1, 2, 3, 4, 5, 6, 7, 1, 2, 3]),
    "uses the last period only": (np.arange(1.0, 11), 3, 7, [4, 5, 6]),
    "m = 1 repeats the last value": (np.array([3.0, 9.0]), 3, 1, [9, 9, 9]),
    "m = 2": (np.array([1.0, 2, 3, 4]), 5, 2, [3, 4, 3, 4, 3]),
}


@pytest.mark.parametrize(("history", "horizon", "m", "expected"), NAIVE.values(), ids=NAIVE.keys())
def test_seasonal_naive_is_y_of_t_plus_h_minus_m_ceil_h_over_m(history, horizon, m, expected):
    got = metrics.seasonal_naive(history, horizon, m)
    assert got.tolist() == expected
    t = history.size  # 1-based time of the last observation
    for h in range(1, horizon + 1):
        assert got[h - 1] == history[t + h - m * math.ceil(h / m) - 1]


def test_seasonal_naive_needs_a_full_period():
    with pytest.raises(ValueError, match="needs 7 points"):
        metrics.seasonal_naive(np.arange(6.0), 3, 7)
