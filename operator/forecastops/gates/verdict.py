"""The backtest gate's rule: scores in, a phase and a sentence out. Pure python, no numpy.

Checked in this order; the first that applies decides:

| check | phase | reason |
|---|---|---|
| candidate trainingEnd unknown, or ≥ the dataset's earliest cutoff | Error | DataLeakage |
| fewer than `min_series` series scored | Inconclusive | TooFewSeries |
| a needed score (candidate, stable, ratio bound, naive) is undefined | Error | UndefinedScore |
| upper bound of the ratio > 1 + maxRelativeDegradation | Failed | WorseThanStable |
| seasonal naive required and the candidate is not strictly better | Failed | NoBetterThanNaive |
| otherwise | Successful | NonInferior |

Leakage and an undefined score are Errors, not Failures: the run could not judge the
model, and a failure would count against a model for a reason unrelated to its quality.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from forecastops.gates.phase import GatePhase


class GateReason(StrEnum):
    DATA_LEAKAGE = "DataLeakage"
    TOO_FEW_SERIES = "TooFewSeries"
    UNDEFINED_SCORE = "UndefinedScore"
    WORSE_THAN_STABLE = "WorseThanStable"
    NO_BETTER_THAN_NAIVE = "NoBetterThanNaive"
    NON_INFERIOR = "NonInferior"


@dataclass(frozen=True)
class BacktestScores:
    """One metric's scores for the three forecasts on the same targets (None = undefined).

    `ratio` is candidate/stable and `ratio_upper` the upper bound of its paired-bootstrap
    interval at `level`; `n_series` counts the series scored; `reason` carries the
    metric's words when a score is undefined.
    """

    metric: str
    candidate: float | None
    stable: float | None
    seasonal_naive: float | None
    ratio: float | None
    ratio_upper: float | None
    n_series: int
    level: float = 0.95
    reason: str = ""


@dataclass(frozen=True)
class BacktestCriteria:
    """`vsStable.maxRelativeDegradation`, `vsBaseline.seasonalNaive.mustBeBetter`, and the
    fewest series a verdict may rest on."""

    max_relative_degradation: float
    must_beat_seasonal_naive: bool = True
    min_series: int = 30

    def __post_init__(self) -> None:
        if not self.max_relative_degradation >= 0:
            raise ValueError("maxRelativeDegradation must be 0 or more")
        if self.min_series < 1:
            raise ValueError("minSeries must be at least 1")

    @property
    def limit(self) -> float:
        """The largest upper bound of the ratio that still passes."""
        return 1 + self.max_relative_degradation


@dataclass(frozen=True)
class GateVerdict:
    phase: GatePhase
    reason: GateReason
    message: str


def _num(value: float) -> str:
    return f"{value:.3g}"


def _pair(left: float, right: float) -> tuple[str, str]:
    """Both numbers shown with enough digits to tell them apart (3 significant at least)."""
    for digits in range(3, 10):
        a, b = f"{left:.{digits}g}", f"{right:.{digits}g}"
        if a != b or left == right:
            return a, b
    return repr(left), repr(right)


def _percent(level: float) -> str:
    return f"{level * 100:g}%"


def check_leakage(training_end: datetime | None, earliest_cutoff: datetime) -> str | None:
    """Why the backtest may not run (a sentence), or None when the holdout is unseen."""
    if training_end is None:
        return "the candidate's trainingEnd is unknown: leakage cannot be ruled out"
    if training_end >= earliest_cutoff:
        return (
            f"leakage: the candidate's trainingEnd {training_end.isoformat()} is not before "
            f"the dataset's earliest cutoff {earliest_cutoff.isoformat()}"
        )
    return None


def _undefined(scores: BacktestScores, criteria: BacktestCriteria) -> list[str]:
    needed = {
        "candidate": scores.candidate,
        "stable": scores.stable,
        "ratio upper bound": scores.ratio_upper,
    }
    if criteria.must_beat_seasonal_naive:
        needed["seasonal naive"] = scores.seasonal_naive
    return [name for name, value in needed.items() if value is None]


def decide_backtest(
    scores: BacktestScores,
    criteria: BacktestCriteria,
    training_end: datetime | None,
    earliest_cutoff: datetime,
) -> GateVerdict:
    """The backtest gate's verdict on one metric (see the module's table).

    >>> from datetime import UTC
    >>> v = decide_backtest(
    ...     BacktestScores("wape", 0.547, 0.502, 0.61, 1.09, 1.12, n_series=200),
    ...     BacktestCriteria(max_relative_degradation=0.02),
    ...     training_end=datetime(2026, 5, 31, tzinfo=UTC),
    ...     earliest_cutoff=datetime(2026, 6, 1, tzinfo=UTC))
    >>> v.phase.value, v.message
    ('Failed', 'wape 0.547 vs stable 0.502: upper 95% bound of the ratio 1.12 > 1.02 (maxRelativeDegradation 0.02)')
    """
    leak = check_leakage(training_end, earliest_cutoff)
    if leak is not None:
        return GateVerdict(GatePhase.ERROR, GateReason.DATA_LEAKAGE, leak)
    metric = scores.metric
    if scores.n_series < criteria.min_series:
        return GateVerdict(
            GatePhase.INCONCLUSIVE,
            GateReason.TOO_FEW_SERIES,
            f"{metric}: {scores.n_series} series scored, fewer than minSeries "
            f"{criteria.min_series}",
        )
    missing = _undefined(scores, criteria)
    if missing:
        why = f" ({scores.reason})" if scores.reason else ""
        return GateVerdict(
            GatePhase.ERROR,
            GateReason.UNDEFINED_SCORE,
            f"{metric} undefined for {', '.join(missing)}{why}",
        )
    assert scores.candidate is not None and scores.stable is not None
    assert scores.ratio_upper is not None
    cand, stable = _pair(scores.candidate, scores.stable)
    head = f"{metric} {cand} vs stable {stable}"
    upper, limit = _pair(scores.ratio_upper, criteria.limit)
    bound = f"upper {_percent(scores.level)} bound of the ratio {upper}"
    rule = f"(maxRelativeDegradation {_num(criteria.max_relative_degradation)})"
    if scores.ratio_upper > criteria.limit:
        return GateVerdict(
            GatePhase.FAILED,
            GateReason.WORSE_THAN_STABLE,
            f"{head}: {bound} > {limit} {rule}",
        )
    within = f"{head}: {bound} ≤ {limit} {rule}"
    if criteria.must_beat_seasonal_naive:
        assert scores.seasonal_naive is not None
        cand_n, naive = _pair(scores.candidate, scores.seasonal_naive)
        if not scores.candidate < scores.seasonal_naive:
            return GateVerdict(
                GatePhase.FAILED,
                GateReason.NO_BETTER_THAN_NAIVE,
                f"{metric} {cand_n} does not beat seasonal naive {naive} (mustBeBetter); {within}",
            )
        within += f"; beats seasonal naive {naive}"
    return GateVerdict(GatePhase.SUCCESSFUL, GateReason.NON_INFERIOR, within)
