"""Forecast accuracy metrics for the gates: pure numpy, every edge case a stated policy.

The first part of the forecast gates (docs/forecast-gates.md). It runs in the gate-runner
(the model server's image, which has numpy); the operator never imports it.

Inputs are plain one-dimensional numpy arrays of equal length, one element per target
(series, horizon): `ids` (series ids), `horizons` (1-based steps ahead), `y` (actuals) and
`yhat` (forecasts). A non-finite actual or forecast raises `ValueError`: NaN is a broken
contract, never a score. A metric that cannot be computed (nothing to divide by, no
targets) answers with `value=None` and a `reason`, never NaN or inf.

| metric | definition | undefined when |
|---|---|---|
| `pooled_wape` | Σ\\|y-ŷ\\| / Σ\\|y\\| over every target | Σ\\|y\\| = 0 |
| `series_wape` | the same per series | a series' Σ\\|y\\| = 0: excluded, listed |
| `horizon_wape` | pooled WAPE per horizon bucket | a bucket without actual volume |
| `mase` | per series mean\\|y-ŷ\\| / in-sample seasonal-naive MAE | zero scale: see `ZeroScale` |
| `bias` | Σ(ŷ-y) / Σ\\|y\\|, positive = over-forecast | Σ\\|y\\| = 0 |
| `smape` | mean \\|y-ŷ\\|/(\\|y\\|+\\|ŷ\\|), x2 on the "0-2" scale; 0/0 counts 0 | no targets |
| `pinball` | mean max(q·(y-ŷ), (q-1)·(y-ŷ)) | no targets |
| `weighted_pinball` | Σ pinball / Σ\\|y\\| (GluonTS's wQuantileLoss is twice this) | Σ\\|y\\| = 0 |
| `scaled_pinball` | per series mean pinball / in-sample seasonal-naive MAE | zero scale |
| `rmae` | Σ\\|y-ŷ\\| / Σ\\|y-ŷ_naive\\| on the same targets | the naive forecast is exact |
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

import numpy as np

SmapeScale = Literal["0-1", "0-2"]
BIAS_SIGN = "positive = over-forecast"
EPSILON = 1e-8
"""The smallest scale the `epsilon` zero-scale policy divides by."""


class ZeroScale(StrEnum):
    """What MASE (and the scaled pinball loss) do with a series whose in-sample scale is 0.

    A history that is flat at period m (an all-zero SKU, a constant) has a zero
    seasonal-naive MAE, and the scaled error is inf or NaN (utilsforecast) or about 1e15
    (sktime, which divides by its epsilon). None of those may reach a gate silently.
    """

    EXCLUDE = "exclude"
    """Leave the series out of the score and list it in `excluded_series`."""
    EPSILON = "epsilon"
    """Divide by max(scale, epsilon): finite, but huge for any error (sktime's choice)."""
    NAIVE1 = "naive1"
    """Use the one-step naive scale (m = 1) instead; a history flat at lag 1 too (constant)
    is then excluded and listed."""


@dataclass(frozen=True)
class Score:
    """One number and how it was made.

    `value` is None when the metric is undefined, with `reason` saying why. `n` counts
    what the value was computed over (targets for pooled metrics, series for per-series
    means); `excluded` names the series left out; `policy` states the choices made.
    """

    value: float | None
    n: int
    excluded: tuple[str, ...] = ()
    policy: str = ""
    reason: str = ""

    @property
    def defined(self) -> bool:
        return self.value is not None


@dataclass(frozen=True)
class SeriesScores:
    """A per-series metric: one value per series that has one, and the series left out."""

    series: tuple[str, ...]
    values: tuple[float, ...]
    excluded_series: tuple[str, ...]
    policy: str

    def as_dict(self) -> dict[str, float]:
        return dict(zip(self.series, self.values, strict=True))

    def mean(self) -> Score:
        """The unweighted mean over the series that have a value (utilsforecast's agg 'mean')."""
        if not self.values:
            return Score(None, 0, self.excluded_series, self.policy, "no series with a value")
        with np.errstate(over="ignore"):
            value = float(np.mean(self.values))
        if not math.isfinite(value):
            return Score(None, len(self.values), self.excluded_series, self.policy, "overflow")
        return Score(value, len(self.values), self.excluded_series, self.policy)


@dataclass(frozen=True)
class RatioInterval:
    """WAPE_candidate / WAPE_stable and its paired-bootstrap interval at `level`.

    `ratio` is None (and both bounds too) when the stable forecast has no error at all.
    """

    ratio: float | None
    lower: float | None
    upper: float | None
    level: float
    n_series: int
    n_resamples: int
    reason: str = ""


@dataclass(frozen=True)
class DemandClass:
    """Syntetos-Boylan: ADI (mean interval between demands) and CV² of the demand sizes."""

    adi: float | None
    cv2: float | None
    kind: Literal["smooth", "erratic", "intermittent", "lumpy", "no-demand"]


# --- helpers -----------------------------------------------------------------------------


def _points(*arrays: object) -> list[np.ndarray]:
    """The arrays as float vectors of one length; non-finite values are refused."""
    out = [np.asarray(a, dtype=float).ravel() for a in arrays]
    if len({a.size for a in out}) > 1:
        raise ValueError(f"arrays differ in length: {[a.size for a in out]}")
    for a in out:
        if not np.all(np.isfinite(a)):
            raise ValueError("non-finite actual or forecast (NaN or inf): refused, not scored")
    return out


def _groups(ids: object, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique series ids and each target's index into them."""
    keys = np.asarray(ids).ravel()
    if keys.size != size:
        raise ValueError(f"{keys.size} series ids for {size} targets")
    names, inverse = np.unique(keys, return_inverse=True)
    return names, inverse.ravel()


def _ratio(num: float, den: float, n: int, policy: str, undefined: str) -> Score:
    if n == 0:
        return Score(None, 0, (), policy, "no targets")
    if den == 0:
        return Score(None, n, (), policy, undefined)
    value = num / den
    if not math.isfinite(value):
        return Score(None, n, (), policy, f"{num:g} / {den:g} overflows: not a number to judge")
    return Score(value, n, (), policy)


# --- WAPE --------------------------------------------------------------------------------


def pooled_wape(y: np.ndarray, yhat: np.ndarray) -> Score:
    """Σ|y-ŷ| / Σ|y| over every target: errors on all-zero series count in the numerator.

    >>> pooled_wape(np.array([10.0, 0.0]), np.array([8.0, 1.0])).value
    0.3
    """
    y, yhat = _points(y, yhat)
    return _ratio(
        float(np.abs(y - yhat).sum()),
        float(np.abs(y).sum()),
        y.size,
        "pooled",
        "sum of |y| is 0: WAPE undefined",
    )


def series_wape(ids: np.ndarray, y: np.ndarray, yhat: np.ndarray) -> SeriesScores:
    """WAPE per series; a series whose actuals are all zero has none and is excluded."""
    y, yhat = _points(y, yhat)
    names, index = _groups(ids, y.size)
    err = np.bincount(index, np.abs(y - yhat), minlength=names.size)
    vol = np.bincount(index, np.abs(y), minlength=names.size)
    kept = vol > 0
    return SeriesScores(
        series=tuple(str(s) for s in names[kept]),
        values=tuple(float(v) for v in err[kept] / vol[kept]),
        excluded_series=tuple(str(s) for s in names[~kept]),
        policy="all-zero series excluded",
    )


def bucket_name(bucket: tuple[int, int]) -> str:
    """'1-7' for (1, 7): the key of a bucket in reports and status."""
    return f"{bucket[0]}-{bucket[1]}"


def horizon_wape(
    horizons: np.ndarray,
    y: np.ndarray,
    yhat: np.ndarray,
    buckets: Sequence[tuple[int, int]],
) -> dict[str, Score]:
    """Pooled WAPE per horizon bucket (inclusive bounds), keyed by `bucket_name`.

    Targets outside every bucket are not counted; a bucket without targets or without
    actual volume answers None with a reason.
    """
    y, yhat = _points(y, yhat)
    h = np.asarray(horizons).ravel()
    if h.size != y.size:
        raise ValueError(f"{h.size} horizons for {y.size} targets")
    out = {}
    for low, high in buckets:
        if low > high:
            raise ValueError(f"empty horizon bucket {low}-{high}")
        inside = (h >= low) & (h <= high)
        out[bucket_name((low, high))] = pooled_wape(y[inside], yhat[inside])
    return out


# --- naive forecasts and scales ----------------------------------------------------------


def seasonal_naive(history: np.ndarray, horizon: int, m: int) -> np.ndarray:
    """ŷ(T+h) = y(T + h - m·⌈h/m⌉) for h = 1..horizon, T the last point of `history`.

    >>> seasonal_naive(np.array([1.0, 2, 3, 4, 5, 6, 7]), 9, 7)
    array([1., 2., 3., 4., 5., 6., 7., 1., 2.])
    """
    (hist,) = _points(history)
    if m < 1:
        raise ValueError("the seasonal period m must be at least 1")
    if hist.size < m:
        raise ValueError(f"a seasonal naive forecast needs {m} points of history, got {hist.size}")
    steps = np.arange(1, horizon + 1)
    # history[-1] is y(T); y(T + k) for k <= 0 is history[hist.size - 1 + k]
    back = steps - m * np.ceil(steps / m).astype(int)
    return hist[hist.size - 1 + back]


def naive_scale(history: np.ndarray, m: int) -> float | None:
    """The in-sample seasonal-naive MAE, mean_{t>m} |y_t - y_{t-m}|; None if history ≤ m."""
    (hist,) = _points(history)
    if hist.size <= m:
        return None
    return float(np.abs(hist[m:] - hist[:-m]).mean())


def history_until(
    ids: np.ndarray, ds: np.ndarray, y: np.ndarray, cutoff: object
) -> dict[str, np.ndarray]:
    """Each series' history with ds ≤ cutoff, in time order: what a scale may be fit on.

    `ds` may be any sortable values (integers, numpy datetimes) comparable with `cutoff`.
    """
    (values,) = _points(y)
    times = np.asarray(ds).ravel()
    names, index = _groups(ids, values.size)
    keep = times <= cutoff
    out = {}
    for i, name in enumerate(names):
        rows = np.flatnonzero(keep & (index == i))
        out[str(name)] = values[rows[np.argsort(times[rows], kind="stable")]]
    return out


def _scales(
    names: Iterable[str],
    histories: Mapping[str, np.ndarray],
    m: int,
    zero_scale: ZeroScale,
    epsilon: float,
) -> tuple[dict[str, float], list[str]]:
    """Each series' scale under the policy, and the series that have none (excluded)."""
    scales, excluded = {}, []
    for name in names:
        if name not in histories:
            raise ValueError(f"no history for series {name!r}")
        scale = naive_scale(histories[name], m)
        if scale is None:
            excluded.append(name)  # too short a history to fit a scale on
            continue
        if scale == 0:
            if zero_scale is ZeroScale.EPSILON:
                scale = epsilon
            elif zero_scale is ZeroScale.NAIVE1:
                scale = naive_scale(histories[name], 1) or 0.0
        if scale == 0:
            excluded.append(name)
            continue
        scales[name] = scale
    return scales, excluded


def _scaled(
    ids: np.ndarray,
    loss: np.ndarray,
    histories: Mapping[str, np.ndarray],
    m: int,
    zero_scale: ZeroScale | str,
    epsilon: float,
) -> SeriesScores:
    policy = ZeroScale(zero_scale)
    names, index = _groups(ids, loss.size)
    mean_loss = np.bincount(index, loss, minlength=names.size) / np.bincount(
        index, minlength=names.size
    )
    keys = [str(s) for s in names]
    scales, excluded = _scales(keys, histories, m, policy, epsilon)
    series, values = [], []
    for i, key in enumerate(keys):
        if key not in scales:
            continue
        value = float(mean_loss[i] / scales[key])
        if not math.isfinite(value):  # overflow (a tiny scale): no number to judge
            excluded.append(key)
            continue
        series.append(key)
        values.append(value)
    return SeriesScores(
        series=tuple(series),
        values=tuple(values),
        excluded_series=tuple(sorted(excluded)),
        policy=f"m={m}; zero scale: {policy.value}",
    )


def mase(
    ids: np.ndarray,
    y: np.ndarray,
    yhat: np.ndarray,
    histories: Mapping[str, np.ndarray],
    m: int,
    zero_scale: ZeroScale | str = ZeroScale.EXCLUDE,
    epsilon: float = EPSILON,
) -> SeriesScores:
    """MASE per series: mean|y-ŷ| / mean_{t>m}|y_t - y_{t-m}| on the series' history.

    `histories` must hold each series' history up to its forecast origin only (see
    `history_until`). A zero scale follows `zero_scale`; a history of m points or fewer
    has no scale and is excluded, and so is a value that overflows. `.mean()` gives the
    unweighted mean over series.
    """
    y, yhat = _points(y, yhat)
    return _scaled(ids, np.abs(y - yhat), histories, m, zero_scale, epsilon)


# --- bias, sMAPE, pinball, relative errors -----------------------------------------------


def bias(y: np.ndarray, yhat: np.ndarray) -> Score:
    """Σ(ŷ-y) / Σ|y|: positive means over-forecast, negative under-forecast."""
    y, yhat = _points(y, yhat)
    return _ratio(
        float((yhat - y).sum()),
        float(np.abs(y).sum()),
        y.size,
        BIAS_SIGN,
        "sum of |y| is 0: bias undefined",
    )


def smape(y: np.ndarray, yhat: np.ndarray, scale: SmapeScale) -> Score:
    """Mean over targets of |y-ŷ|/(|y|+|ŷ|) ("0-1", utilsforecast) or twice it ("0-2", sktime).

    A target where y = ŷ = 0 counts as 0 (a perfect forecast), as in utilsforecast.
    """
    if scale not in ("0-1", "0-2"):
        raise ValueError(f"sMAPE scale must be '0-1' or '0-2', not {scale!r}")
    y, yhat = _points(y, yhat)
    policy = f"scale {scale}; 0/0 counts 0"
    if y.size == 0:
        return Score(None, 0, (), policy, "no targets")
    den = np.abs(y) + np.abs(yhat)
    terms = np.divide(np.abs(y - yhat), den, out=np.zeros_like(den), where=den > 0)
    factor = 2.0 if scale == "0-2" else 1.0
    return Score(factor * float(terms.mean()), y.size, (), policy)


def _pinball_terms(y: np.ndarray, yhat: np.ndarray, q: float) -> np.ndarray:
    if not 0 < q < 1:
        raise ValueError(f"quantile level must be in (0, 1), not {q}")
    delta = y - yhat
    return np.maximum(q * delta, (q - 1) * delta)


def pinball(y: np.ndarray, yhat_q: np.ndarray, q: float) -> Score:
    """Mean pinball loss of the q-quantile forecast: max(q·(y-ŷ), (q-1)·(y-ŷ))."""
    y, yhat_q = _points(y, yhat_q)
    terms = _pinball_terms(y, yhat_q, q)
    policy = f"q={q}; mean"
    if y.size == 0:
        return Score(None, 0, (), policy, "no targets")
    return Score(float(terms.mean()), y.size, (), policy)


def weighted_pinball(y: np.ndarray, yhat_q: np.ndarray, q: float) -> Score:
    """Σ pinball / Σ|y|. GluonTS's wQuantileLoss is twice this (it sums 2·|…|)."""
    y, yhat_q = _points(y, yhat_q)
    return _ratio(
        float(_pinball_terms(y, yhat_q, q).sum()),
        float(np.abs(y).sum()),
        y.size,
        f"q={q}; divided by sum |y|",
        "sum of |y| is 0: weighted pinball undefined",
    )


def scaled_pinball(
    ids: np.ndarray,
    y: np.ndarray,
    yhat_q: np.ndarray,
    q: float,
    histories: Mapping[str, np.ndarray],
    m: int,
    zero_scale: ZeroScale | str = ZeroScale.EXCLUDE,
    epsilon: float = EPSILON,
) -> SeriesScores:
    """Per series mean pinball / in-sample seasonal-naive MAE (M5, utilsforecast's
    `scaled_quantile_loss`), zero scales handled as in `mase`."""
    y, yhat_q = _points(y, yhat_q)
    scores = _scaled(ids, _pinball_terms(y, yhat_q, q), histories, m, zero_scale, epsilon)
    return SeriesScores(
        scores.series, scores.values, scores.excluded_series, f"q={q}; {scores.policy}"
    )


def rmae(y: np.ndarray, yhat: np.ndarray, yhat_naive: np.ndarray) -> Score:
    """MAE of the forecast / MAE of the naive forecast on the same targets, pooled.

    Out of sample, so a flat history does not make it undefined; only an exact naive
    forecast does.
    """
    y, yhat, yhat_naive = _points(y, yhat, yhat_naive)
    return _ratio(
        float(np.abs(y - yhat).sum()),
        float(np.abs(y - yhat_naive).sum()),
        y.size,
        "pooled; same targets",
        "the naive forecast has no error: rMAE undefined",
    )


# --- the paired bootstrap ----------------------------------------------------------------


def bootstrap_wape_ratio(
    ids: np.ndarray,
    y: np.ndarray,
    yhat_candidate: np.ndarray,
    yhat_stable: np.ndarray,
    rng: np.random.Generator,
    level: float = 0.95,
    n_resamples: int = 2000,
) -> RatioInterval:
    """WAPE_candidate / WAPE_stable with a percentile interval from resampling SERIES.

    Both forecasts are scored on the same targets, so the ratio is Σ|e_c| / Σ|e_s| (the
    Σ|y| cancels, and it is defined even when every actual is 0). Each resample draws
    the series with replacement, keeping all of a series' targets together (its errors
    are correlated over horizons). A resample whose stable error is 0 counts as inf when
    the candidate has error there (as bad as it gets) and 1 when neither has. The bounds
    are the resampled ratios at the (1-level)/2 and (1+level)/2 quantiles, taken as the
    nearest order statistics outward (no interpolation), and widened to contain the
    point ratio if a skewed resample distribution would leave it outside.
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), not {level}")
    if n_resamples < 1:
        raise ValueError("n_resamples must be at least 1")
    y, cand, stable = _points(y, yhat_candidate, yhat_stable)
    names, index = _groups(ids, y.size)
    err_c = np.bincount(index, np.abs(y - cand), minlength=names.size)
    err_s = np.bincount(index, np.abs(y - stable), minlength=names.size)
    n = names.size
    if n == 0:
        return RatioInterval(None, None, None, level, 0, 0, "no series")
    if err_s.sum() == 0:
        return RatioInterval(
            None, None, None, level, n, 0, "the stable forecast has no error: ratio undefined"
        )
    ratio = float(err_c.sum() / err_s.sum())
    ratios = np.empty(n_resamples)
    chunk = max(1, 2_000_000 // n)
    for start in range(0, n_resamples, chunk):
        stop = min(n_resamples, start + chunk)
        draws = rng.integers(0, n, size=(stop - start, n))
        num, den = err_c[draws].sum(axis=1), err_s[draws].sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratios[start:stop] = np.where(den > 0, num / den, np.where(num > 0, math.inf, 1.0))
    tail = (1 - level) / 2
    # order statistics, not interpolation: no inf - inf, and never narrower than asked
    lower = float(np.quantile(ratios, tail, method="lower"))
    upper = float(np.quantile(ratios, 1 - tail, method="higher"))
    return RatioInterval(ratio, min(lower, ratio), max(upper, ratio), level, n, n_resamples)


# --- intermittent demand -----------------------------------------------------------------

ADI_CUTOFF = 1.32
CV2_CUTOFF = 0.49


def classify_demand(y: np.ndarray) -> DemandClass:
    """Syntetos-Boylan: ADI = periods / periods with demand, CV² = (sd/mean)² of the
    non-zero demand sizes (population sd). ADI > 1.32 is intermittent, CV² > 0.49 erratic,
    both lumpy, neither smooth; a series without demand is 'no-demand'.
    """
    (values,) = _points(y)
    demand = values[values != 0]
    if demand.size == 0:
        return DemandClass(None, None, "no-demand")
    adi = values.size / demand.size
    cv2 = float((demand.std() / demand.mean()) ** 2)
    kind: Literal["smooth", "erratic", "intermittent", "lumpy"]
    if adi > ADI_CUTOFF:
        kind = "lumpy" if cv2 > CV2_CUTOFF else "intermittent"
    else:
        kind = "erratic" if cv2 > CV2_CUTOFF else "smooth"
    return DemandClass(adi, cv2, kind)
