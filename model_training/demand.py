"""A synthetic retail demand panel (stores x items x days) and its forecasting features.

Pure numpy, deterministic for a seed. Daily unit sales of each (store, item) series are
drawn from a negative binomial around a mean built from:

- a store size and an item popularity (log-normal), and a per-series trend;
- weekly seasonality (an item-specific weekday profile) and yearly seasonality (a
  sine with an item-specific amplitude and phase), plus a few holiday peaks;
- promotions in runs of 3-7 days (a price cut of 10-35 % and a display lift);
- price elasticity per item (-0.6 … -2.4) against occasional list-price changes.

`build_features` turns the panel into one row per (series, day) of the 26 features in
`FEATURE_NAMES`: everything a one-day-ahead model may know in the morning of that day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

START = date(2023, 1, 2)  # a Monday
HOLIDAY_PEAKS = {  # day of year -> demand multiplier
    **{d: 1.6 for d in range(352, 359)},  # Christmas week
    **{d: 1.35 for d in range(327, 331)},  # Black Friday weekend
    1: 0.5,
    359: 0.3,
    186: 1.2,
}
FEATURE_NAMES: tuple[str, ...] = (
    "lag_1",
    "lag_7",
    "lag_14",
    "lag_28",
    "roll_mean_7",
    "roll_mean_14",
    "roll_mean_28",
    "roll_std_7",
    "roll_std_28",
    "ewm_mean_7",
    "same_weekday_mean_4w",
    "day_of_week",
    "is_weekend",
    "day_of_month",
    "month",
    "week_of_year",
    "day_of_year_sin",
    "day_of_year_cos",
    "is_holiday",
    "promo",
    "promo_days_last_7",
    "price",
    "price_ratio_28",
    "discount",
    "store_id",
    "item_id",
)
WARMUP_DAYS = 35  # the longest look-back (lag 28 plus a week of rolling history)


@dataclass(frozen=True)
class Panel:
    """Daily series, one row per (store, item), one column per day from `START`."""

    sales: np.ndarray  # [series, days] float64 units sold
    price: np.ndarray  # [series, days] price paid
    list_price: np.ndarray  # [series, days] price without promotion
    promo: np.ndarray  # [series, days] 1.0 on promotion days
    store: np.ndarray  # [series] store index
    item: np.ndarray  # [series] item index

    @property
    def days(self) -> int:
        return self.sales.shape[1]


def generate_panel(stores: int, items: int, days: int, seed: int) -> Panel:
    """Draw a demand panel; the same arguments always give the same panel."""
    if stores < 1 or items < 1 or days <= WARMUP_DAYS + 28:
        raise ValueError(f"need stores ≥ 1, items ≥ 1 and days > {WARMUP_DAYS + 28}")
    rng = np.random.default_rng(seed)
    n = stores * items
    store = np.repeat(np.arange(stores), items)
    item = np.tile(np.arange(items), stores)
    t = np.arange(days)
    dates = [START + timedelta(days=int(d)) for d in t]
    dow = np.array([d.weekday() for d in dates])
    doy = np.array([d.timetuple().tm_yday for d in dates])

    level = rng.lognormal(0.0, 0.4, stores)[store] * rng.lognormal(1.2, 0.7, items)[item]
    trend = 1.0 + np.clip(rng.normal(0.05, 0.1, n), -0.2, 0.3)[:, None] * t / 365.0
    weekday_profile = 1.0 + rng.normal(0.0, 0.12, (items, 7))
    weekday_profile[:, 5:] += rng.uniform(0.1, 0.5, (items, 1))  # weekends sell more
    weekly = weekday_profile[item][:, dow]
    amplitude = rng.uniform(0.05, 0.35, items)[item][:, None]
    phase = rng.uniform(0, 365, items)[item][:, None]
    yearly = 1.0 + amplitude * np.sin(2 * np.pi * (doy - phase) / 365.25)
    holiday = np.array([HOLIDAY_PEAKS.get(int(d), 1.0) for d in doy])

    list_price = _list_prices(rng, item, items, days)
    promo, cut = _promotions(rng, n, days)
    price = list_price * (1.0 - cut)
    elasticity = rng.uniform(-2.4, -0.6, items)[item][:, None]
    base_price = list_price[:, :1]
    price_effect = (price / base_price) ** elasticity
    display_lift = 1.0 + promo * rng.uniform(0.05, 0.3, items)[item][:, None]

    mean = level[:, None] * trend * weekly * yearly * holiday * price_effect * display_lift
    dispersion = 6.0
    sales = rng.poisson(rng.gamma(dispersion, mean / dispersion)).astype(np.float64)
    return Panel(sales, price, list_price, promo, store, item)


def _list_prices(rng: np.random.Generator, item: np.ndarray, items: int, days: int) -> np.ndarray:
    """List prices per series: an item base price with a few step changes of ±3-12 %."""
    base = rng.lognormal(1.3, 0.6, items)[item]
    steps = rng.random((len(item), days)) < 1 / 120
    factors = np.where(steps, rng.uniform(0.88, 1.12, steps.shape), 1.0)
    return np.round(base[:, None] * np.cumprod(factors, axis=1), 2)


def _promotions(rng: np.random.Generator, n: int, days: int) -> tuple[np.ndarray, np.ndarray]:
    """Promotion flags in runs of 3-7 days, and the price cut on those days."""
    promo = np.zeros((n, days))
    cut = np.zeros((n, days))
    starts = np.argwhere(rng.random((n, days)) < 0.025)
    lengths = rng.integers(3, 8, len(starts))
    depths = rng.uniform(0.10, 0.35, len(starts))
    for (s, d), length, depth in zip(starts, lengths, depths, strict=True):
        promo[s, d : d + length] = 1.0
        cut[s, d : d + length] = depth
    return promo, cut


def build_features(panel: Panel) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows for every series and every day after the warm-up.

    Returns ``(X, y, day)``: X float32 [rows, 26] in `FEATURE_NAMES` order, y the units
    sold that day, and the day index of each row (for a time-based split). Rows are
    ordered day by day, series within a day.
    """
    s, days = panel.sales, panel.days
    cs = _cumsum0(s)
    cs2 = _cumsum0(s * s)

    def lag(k: int) -> np.ndarray:
        return s[:, WARMUP_DAYS - k : days - k]

    def window_sum(c: np.ndarray, w: int) -> np.ndarray:  # sum over days d-w .. d-1
        return c[:, WARMUP_DAYS:days] - c[:, WARMUP_DAYS - w : days - w]

    def roll_mean(w: int) -> np.ndarray:
        return window_sum(cs, w) / w

    def roll_std(w: int) -> np.ndarray:
        mean = roll_mean(w)
        return np.sqrt(np.maximum(window_sum(cs2, w) / w - mean * mean, 0.0))

    span = slice(WARMUP_DAYS, days)
    dates = [START + timedelta(days=d) for d in range(WARMUP_DAYS, days)]
    doy = np.array([d.timetuple().tm_yday for d in dates], dtype=np.float64)
    n = s.shape[0]

    def per_day(values: list[float] | np.ndarray) -> np.ndarray:
        return np.broadcast_to(np.asarray(values, dtype=np.float64), (n, len(dates)))

    def per_series(values: np.ndarray) -> np.ndarray:
        return np.broadcast_to(values[:, None].astype(np.float64), (n, len(dates)))

    promo_cs = _cumsum0(panel.promo)
    price_cs = _cumsum0(panel.price)
    price = panel.price[:, span]
    columns = {
        "lag_1": lag(1),
        "lag_7": lag(7),
        "lag_14": lag(14),
        "lag_28": lag(28),
        "roll_mean_7": roll_mean(7),
        "roll_mean_14": roll_mean(14),
        "roll_mean_28": roll_mean(28),
        "roll_std_7": roll_std(7),
        "roll_std_28": roll_std(28),
        "ewm_mean_7": _ewm_yesterday(s, alpha=2 / (7 + 1))[:, span],
        "same_weekday_mean_4w": (lag(7) + lag(14) + lag(21) + lag(28)) / 4,
        "day_of_week": per_day([d.weekday() for d in dates]),
        "is_weekend": per_day([float(d.weekday() >= 5) for d in dates]),
        "day_of_month": per_day([d.day for d in dates]),
        "month": per_day([d.month for d in dates]),
        "week_of_year": per_day([d.isocalendar().week for d in dates]),
        "day_of_year_sin": per_day(np.sin(2 * np.pi * doy / 365.25)),
        "day_of_year_cos": per_day(np.cos(2 * np.pi * doy / 365.25)),
        "is_holiday": per_day([float(int(d) in HOLIDAY_PEAKS) for d in doy]),
        "promo": panel.promo[:, span],
        "promo_days_last_7": window_sum(promo_cs, 7),
        "price": price,
        "price_ratio_28": price / (window_sum(price_cs, 28) / 28),
        "discount": 1.0 - price / panel.list_price[:, span],
        "store_id": per_series(panel.store),
        "item_id": per_series(panel.item),
    }
    assert tuple(columns) == FEATURE_NAMES
    # [features, series, days] -> rows ordered (day, series)
    stacked = np.stack([np.asarray(c, dtype=np.float32) for c in columns.values()])
    x = stacked.transpose(2, 1, 0).reshape(-1, len(FEATURE_NAMES))
    y = s[:, span].T.reshape(-1)
    day = np.repeat(np.arange(WARMUP_DAYS, days), n)
    return np.ascontiguousarray(x), y, day


def _cumsum0(a: np.ndarray) -> np.ndarray:
    """Cumulative sum along days with a leading zero column: c[:, d] = sum(a[:, :d])."""
    return np.concatenate([np.zeros((a.shape[0], 1)), np.cumsum(a, axis=1)], axis=1)


def _ewm_yesterday(s: np.ndarray, alpha: float) -> np.ndarray:
    """Exponentially weighted mean of the days before each day (day 0 gets day 0's value)."""
    out = np.empty_like(s)
    acc = s[:, 0].copy()
    for d in range(s.shape[1]):
        out[:, d] = acc
        acc = alpha * s[:, d] + (1 - alpha) * acc
    return out
