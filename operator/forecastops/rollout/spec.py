"""`spec.rollout` as frozen values: strategy, steps, analysis; parsed and checked once.

The CRD's schema and CEL rules reject most mistakes at admission; what they cannot see
(condition syntax, template variables) is checked here and raised as RolloutSpecError,
which the operator reports as an invalid spec instead of starting a rollout.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeAlias

from forecastops.analysis.spec import MetricSpec, MetricSpecError, parse_metric

DEFAULT_INTERVAL_SECONDS = 30.0
DEFAULT_FAILURE_LIMIT = 2
DEFAULT_INCONCLUSIVE_LIMIT = 3
DEFAULT_COUNT = 3
DEFAULT_SCALE_DOWN_DELAY_SECONDS = 30.0
DEFAULT_PROGRESS_DEADLINE_SECONDS = 600.0


class RolloutSpecError(ValueError):
    """`spec.rollout` cannot be followed; the message says which field and why."""


class Strategy(StrEnum):
    CANARY = "Canary"
    BLUE_GREEN = "BlueGreen"


@dataclass(frozen=True)
class SetWeight:
    """Send `weight` percent of the traffic to the canary."""

    weight: int


@dataclass(frozen=True)
class Pause:
    """Wait `seconds`, or until promoted when None."""

    seconds: float | None = None


@dataclass(frozen=True)
class Analysis:
    """Measure `templates` until each has passed `count` times (or one fails for good)."""

    templates: tuple[str, ...]


@dataclass(frozen=True)
class Preview:
    """Blue-green: bring the preview up at full size, with no production traffic."""


@dataclass(frozen=True)
class Switch:
    """Blue-green: point the active Service at the preview."""


Step: TypeAlias = SetWeight | Pause | Analysis | Preview | Switch


@dataclass(frozen=True)
class BackgroundAnalysis:
    """Metrics measured all along the canary, from `starting_step` until promotion."""

    templates: tuple[str, ...]
    starting_step: int = 0


@dataclass(frozen=True)
class CanarySpec:
    steps: tuple[Step, ...]
    http_route: str | None = None
    """A Gateway API HTTPRoute whose backendRef weights carry the split; None: replica ratio."""
    background: BackgroundAnalysis | None = None

    @property
    def exact_weights(self) -> bool:
        return self.http_route is not None


@dataclass(frozen=True)
class BlueGreenSpec:
    auto_promotion: bool = False
    auto_promotion_seconds: float | None = None
    """Promote by itself after this long, even when autoPromotion is off (a timeout)."""
    scale_down_delay_seconds: float = DEFAULT_SCALE_DOWN_DELAY_SECONDS
    pre_promotion: tuple[str, ...] = ()
    post_promotion: tuple[str, ...] = ()


@dataclass(frozen=True)
class AnalysisSpec:
    interval_seconds: float = DEFAULT_INTERVAL_SECONDS
    failure_limit: int = DEFAULT_FAILURE_LIMIT
    """Failed measurements a metric may have in one run; one more aborts the rollout."""
    inconclusive_limit: int = DEFAULT_INCONCLUSIVE_LIMIT
    """Consecutive inconclusive measurements tolerated; one more pauses the rollout."""
    count: int = DEFAULT_COUNT
    """Successful measurements each metric needs for an analysis step to pass."""
    metrics: tuple[MetricSpec, ...] = ()

    def metric(self, name: str) -> MetricSpec:
        for metric in self.metrics:
            if metric.name == name:
                return metric
        raise KeyError(name)


@dataclass(frozen=True)
class RolloutSpec:
    strategy: Strategy
    canary: CanarySpec | None = None
    blue_green: BlueGreenSpec | None = None
    analysis: AnalysisSpec = AnalysisSpec()
    abort_scale_down_delay_seconds: float = 0.0
    """After an abort, how long the candidate keeps its pods (with no traffic) for debugging."""
    progress_deadline_seconds: float = DEFAULT_PROGRESS_DEADLINE_SECONDS
    """How long the candidate may take to become ready before the rollout is aborted."""

    @property
    def exact_weights(self) -> bool:
        return self.canary is not None and self.canary.exact_weights


def parse_rollout(raw: Mapping[str, Any] | None) -> RolloutSpec | None:
    """`spec.rollout` → RolloutSpec, or None when absent (plain rolling updates)."""
    if not raw:
        return None
    try:
        strategy = Strategy(raw.get("strategy", Strategy.CANARY))
    except ValueError:
        raise RolloutSpecError(
            f"spec.rollout.strategy {raw.get('strategy')!r} is unknown"
        ) from None
    spec = RolloutSpec(
        strategy=strategy,
        canary=_canary(raw["canary"]) if strategy is Strategy.CANARY and "canary" in raw else None,
        blue_green=_blue_green(raw.get("blueGreen") or {})
        if strategy is Strategy.BLUE_GREEN
        else None,
        analysis=_analysis(raw.get("analysis") or {}),
        abort_scale_down_delay_seconds=_seconds(raw, "abortScaleDownDelaySeconds", 0.0),
        progress_deadline_seconds=_seconds(
            raw, "progressDeadlineSeconds", DEFAULT_PROGRESS_DEADLINE_SECONDS
        ),
    )
    if strategy is Strategy.CANARY and spec.canary is None:
        raise RolloutSpecError("spec.rollout.canary is required when the strategy is Canary")
    _check_templates(spec)
    return spec


def parse_duration(text: str) -> float:
    """Seconds in a Go-style duration.

    >>> parse_duration("1m30s"), parse_duration("500ms"), parse_duration("2h")
    (90.0, 0.5, 7200.0)
    """
    if not _DURATION.fullmatch(text or ""):
        raise RolloutSpecError(f"{text!r} is not a duration such as 30s, 2m or 1h30m")
    return sum(float(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION_PART.findall(text))


_DURATION = re.compile(r"(\d+(ms|s|m|h))+")
_DURATION_PART = re.compile(r"(\d+)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def _canary(raw: Mapping[str, Any]) -> CanarySpec:
    steps = tuple(_step(i, step) for i, step in enumerate(raw.get("steps") or ()))
    if not steps:
        raise RolloutSpecError("spec.rollout.canary.steps needs at least one step")
    gateway = (raw.get("trafficRouting") or {}).get("gatewayAPI") or {}
    background = raw.get("analysis")
    return CanarySpec(
        steps=steps,
        http_route=gateway.get("httpRoute") or None,
        background=BackgroundAnalysis(
            _templates(background, "spec.rollout.canary.analysis"),
            int(background.get("startingStep", 0)),
        )
        if background
        else None,
    )


def _step(index: int, raw: Mapping[str, Any]) -> Step:
    where = f"spec.rollout.canary.steps[{index}]"
    kinds = [key for key in ("setWeight", "pause", "analysis") if key in raw]
    if len(kinds) != 1:
        raise RolloutSpecError(f"{where} needs exactly one of setWeight, pause or analysis")
    if "setWeight" in raw:
        weight = int(raw["setWeight"])
        if not 0 <= weight <= 100:
            raise RolloutSpecError(f"{where}.setWeight must be within 0-100, not {weight}")
        return SetWeight(weight)
    if "pause" in raw:
        duration = (raw["pause"] or {}).get("duration")
        return Pause(parse_duration(str(duration)) if duration else None)
    return Analysis(_templates(raw["analysis"], f"{where}.analysis"))


def _blue_green(raw: Mapping[str, Any]) -> BlueGreenSpec:
    seconds = raw.get("autoPromotionSeconds")
    return BlueGreenSpec(
        auto_promotion=bool(raw.get("autoPromotion", False)),
        auto_promotion_seconds=float(seconds) if seconds is not None else None,
        scale_down_delay_seconds=_seconds(
            raw, "scaleDownDelaySeconds", DEFAULT_SCALE_DOWN_DELAY_SECONDS
        ),
        pre_promotion=_optional_templates(raw, "prePromotionAnalysis"),
        post_promotion=_optional_templates(raw, "postPromotionAnalysis"),
    )


def _analysis(raw: Mapping[str, Any]) -> AnalysisSpec:
    try:
        metrics = tuple(parse_metric(metric) for metric in raw.get("metrics") or ())
    except MetricSpecError as exc:
        raise RolloutSpecError(f"spec.rollout.analysis: {exc}") from exc
    interval = raw.get("interval")
    return AnalysisSpec(
        interval_seconds=parse_duration(str(interval)) if interval else DEFAULT_INTERVAL_SECONDS,
        failure_limit=int(raw.get("failureLimit", DEFAULT_FAILURE_LIMIT)),
        inconclusive_limit=int(raw.get("inconclusiveLimit", DEFAULT_INCONCLUSIVE_LIMIT)),
        count=max(1, int(raw.get("count", DEFAULT_COUNT))),
        metrics=metrics,
    )


def _templates(raw: Mapping[str, Any], where: str) -> tuple[str, ...]:
    templates = tuple(str(name) for name in raw.get("templates") or ())
    if not templates:
        raise RolloutSpecError(f"{where}.templates needs at least one metric name")
    return templates


def _optional_templates(raw: Mapping[str, Any], key: str) -> tuple[str, ...]:
    return _templates(raw[key], f"spec.rollout.blueGreen.{key}") if raw.get(key) else ()


def _seconds(raw: Mapping[str, Any], key: str, default: float) -> float:
    value = raw.get(key)
    return float(value) if value is not None else default


def _check_templates(spec: RolloutSpec) -> None:
    known = {metric.name for metric in spec.analysis.metrics}
    for name in _referenced_templates(spec):
        if name not in known:
            raise RolloutSpecError(
                f"analysis template {name!r} is not defined in spec.rollout.analysis.metrics"
            )


def _referenced_templates(spec: RolloutSpec) -> Sequence[str]:
    names: list[str] = []
    if spec.canary:
        names += [
            n for step in spec.canary.steps if isinstance(step, Analysis) for n in step.templates
        ]
        if spec.canary.background:
            names += spec.canary.background.templates
    if spec.blue_green:
        names += [*spec.blue_green.pre_promotion, *spec.blue_green.post_promotion]
    return names
