"""What a rollout remembers between passes: everything lives in `.status`, nothing in memory.

`RolloutStatus` is a frozen value; `to_dict`/`from_dict` map it to and from the
ForecastModel's `status.rollout`, and `summary_fields` gives the top-level status fields
the CRD shows (phase, stableRevision, canaryRevision, currentStepIndex, canaryWeight,
lastAnalysis). An operator killed at any moment reads the same value back and goes on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

from forecastops.analysis.measurement import Measurement, Verdict

HISTORY_LIMIT = 20
"""Measurements kept in status, newest last: enough to read why a rollout stopped."""


class Phase(StrEnum):
    """A ForecastModel's status.phase, and the rollout state machine's phase: one set."""

    PENDING = "Pending"
    """The first revision is coming up (deployed directly, no rollout)."""
    PROGRESSING = "Progressing"
    """A candidate walks its steps."""
    PAUSED = "Paused"
    """Waiting for a person: a pause step, a promotion, an inconclusive analysis, a pause."""
    PROMOTING = "Promoting"
    """The candidate's revision is being written to the stable Deployment."""
    HEALTHY = "Healthy"
    """Stable serves the spec's revision and nothing else runs."""
    DEGRADED = "Degraded"
    """Aborted: all traffic is on stable; the candidate keeps its pods for the abort delay."""
    ROLLED_BACK = "RolledBack"
    """Aborted and cleaned up: stable serves, the candidate is at zero until the spec changes."""


ROLLOUT_PHASES = frozenset({Phase.PROGRESSING, Phase.PAUSED, Phase.PROMOTING})
"""Phases in which a candidate is live."""
ABORTED_PHASES = frozenset({Phase.DEGRADED, Phase.ROLLED_BACK})


class Reason(StrEnum):
    """CamelCase reasons, shared by status, conditions and Events."""

    FIRST_REVISION = "FirstRevision"
    ROLLING_UPDATE = "RollingUpdate"
    STABLE_AVAILABLE = "StableAvailable"
    ROLLOUT_STARTED = "RolloutStarted"
    ROLLOUT_RESTARTED = "RolloutRestarted"
    ROLLOUT_CANCELLED = "RolloutCancelled"
    ROLLOUT_COMPLETED = "RolloutCompleted"
    STEP_STARTED = "StepStarted"
    WAITING_FOR_CANDIDATE = "WaitingForCandidate"
    WEIGHT_SET = "CanaryWeightSet"
    SWITCHED = "ActiveSwitched"
    PAUSE_STEP = "PauseStep"
    AWAITING_PROMOTION = "AwaitingPromotion"
    USER_PAUSED = "UserPaused"
    INCONCLUSIVE = "InconclusiveAnalysis"
    RESUMED = "Resumed"
    ANALYSIS_PASSED = "AnalysisPassed"
    PROMOTING = "Promoting"
    ANALYSIS_FAILED = "AnalysisFailed"
    USER_ABORTED = "UserAborted"
    PROGRESS_DEADLINE = "ProgressDeadlineExceeded"
    ROLLED_BACK = "RolledBack"
    REVISION_ROLLED_BACK = "RevisionRolledBack"
    RETRY = "RetryRequested"
    COMMAND_IGNORED = "CommandIgnored"
    METRIC_SUCCESSFUL = "MetricSuccessful"
    METRIC_FAILED = "MetricFailed"
    METRIC_INCONCLUSIVE = "MetricInconclusive"


@dataclass(frozen=True)
class MetricTally:
    """One metric's verdicts within one analysis run."""

    metric: str
    successes: int = 0
    failures: int = 0
    inconclusive: int = 0
    consecutive_inconclusive: int = 0
    last: Measurement | None = None

    def add(self, measurement: Measurement) -> MetricTally:
        verdict = measurement.verdict
        return replace(
            self,
            successes=self.successes + (verdict is Verdict.SUCCESSFUL),
            failures=self.failures + (verdict is Verdict.FAILED),
            inconclusive=self.inconclusive + (verdict is Verdict.INCONCLUSIVE),
            consecutive_inconclusive=self.consecutive_inconclusive + 1
            if verdict is Verdict.INCONCLUSIVE
            else 0,
            last=measurement,
        )


@dataclass(frozen=True)
class AnalysisRun:
    """Metrics measured together every interval: one analysis step, or the background."""

    name: str
    """`step-<number>` (counted from 1) or `background`."""
    label: str
    """For people: `step 3/5 (analysis error-rate)`, `background analysis`."""
    templates: tuple[str, ...]
    started_at: datetime
    next_at: datetime
    tallies: tuple[MetricTally, ...]
    finite: bool = True
    """Step runs pass after enough successes; the background run never passes, it guards."""

    def tally(self, metric: str) -> MetricTally:
        return next(t for t in self.tallies if t.metric == metric)


@dataclass(frozen=True)
class HistoryEntry:
    run: str
    measurement: Measurement


@dataclass(frozen=True)
class RolloutStatus:
    phase: Phase = Phase.PENDING
    stable_revision: str | None = None
    candidate_revision: str | None = None
    """The canary or preview revision; None when no candidate is live."""
    step_index: int | None = None
    step_started_at: datetime | None = None
    route_weight: int = 0
    """The canary's share as last set on the router (0 = stable only, 100 = candidate only)."""
    canary_weight: int = 0
    """The share the candidate actually gets, from ready replicas or exact routes."""
    runs: tuple[AnalysisRun, ...] = ()
    history: tuple[HistoryEntry, ...] = ()
    reason: str = ""
    message: str = ""
    aborted_revision: str | None = None
    """A revision that was rolled back: not tried again until the spec changes or `retry`."""
    last_command: str | None = None
    """The last `forecastops.io/command` annotation value seen, applied or not."""
    command_outcome: str = ""
    """What became of it: `applied: ...` or `ignored: <why>` (forecastctl prints it)."""
    stable_promoted: bool = False
    """Promoting: the stable Deployment has been written at the candidate's revision."""
    scale_down_at: datetime | None = None
    """Degraded: when the aborted candidate goes to zero replicas."""

    def run(self, name: str) -> AnalysisRun | None:
        return next((run for run in self.runs if run.name == name), None)

    def settled(self, reason: Reason, message: str, **changes: Any) -> RolloutStatus:
        """Healthy with no candidate: what a completed or cancelled rollout leaves."""
        return replace(
            self,
            phase=Phase.HEALTHY,
            candidate_revision=None,
            step_index=None,
            step_started_at=None,
            route_weight=0,
            runs=(),
            stable_promoted=False,
            reason=str(reason),
            message=message,
            **changes,
        )


# --- serialization --------------------------------------------------------------------------


def to_dict(status: RolloutStatus) -> dict[str, Any]:
    """`status.rollout` as stored: camelCase, times in RFC 3339 with milliseconds."""
    out: dict[str, Any] = {
        "phase": str(status.phase),
        "stableRevision": status.stable_revision,
        "candidateRevision": status.candidate_revision,
        "stepIndex": status.step_index,
        "stepStartedAt": _time(status.step_started_at),
        "routeWeight": status.route_weight,
        "canaryWeight": status.canary_weight,
        "runs": [_run_to_dict(run) for run in status.runs],
        "history": [
            {"run": entry.run, **_measurement_to_dict(entry.measurement)}
            for entry in status.history
        ],
        "reason": status.reason,
        "message": status.message,
        "abortedRevision": status.aborted_revision,
        "lastCommand": status.last_command,
        "commandOutcome": status.command_outcome,
        "stablePromoted": status.stable_promoted,
        "scaleDownAt": _time(status.scale_down_at),
    }
    return {key: value for key, value in out.items() if not _empty(value)}


def _empty(value: object) -> bool:
    """Left out of the stored form: absent, false, or empty (zero is a value)."""
    return value is None or value is False or value == "" or value == []


def from_dict(raw: Mapping[str, Any] | None) -> RolloutStatus:
    """The inverse of to_dict; unknown or damaged fields fall back to their defaults."""
    raw = raw or {}
    return RolloutStatus(
        phase=_enum(Phase, raw.get("phase"), Phase.PENDING),
        stable_revision=raw.get("stableRevision"),
        candidate_revision=raw.get("candidateRevision"),
        step_index=raw.get("stepIndex"),
        step_started_at=_parse_time(raw.get("stepStartedAt")),
        route_weight=int(raw.get("routeWeight", 0)),
        canary_weight=int(raw.get("canaryWeight", 0)),
        runs=tuple(_run_from_dict(run) for run in raw.get("runs") or ()),
        history=tuple(
            HistoryEntry(entry.get("run", ""), _measurement_from_dict(entry))
            for entry in raw.get("history") or ()
        ),
        reason=raw.get("reason", ""),
        message=raw.get("message", ""),
        aborted_revision=raw.get("abortedRevision"),
        last_command=raw.get("lastCommand"),
        command_outcome=raw.get("commandOutcome", ""),
        stable_promoted=bool(raw.get("stablePromoted", False)),
        scale_down_at=_parse_time(raw.get("scaleDownAt")),
    )


def summary_fields(status: RolloutStatus) -> dict[str, Any]:
    """The top-level status fields the CRD reserves, kept in step with `status.rollout`."""
    return {  # status.phase is decided in one place: reconcile.status.phase_of
        "stableRevision": status.stable_revision,
        "canaryRevision": status.candidate_revision
        or (status.aborted_revision if status.phase in ABORTED_PHASES else None),
        "currentStepIndex": status.step_index,
        "canaryWeight": status.canary_weight,
        "lastAnalysis": last_analysis(status),
    }


def last_analysis(status: RolloutStatus) -> dict[str, Any]:
    """Per metric, the newest measurement: value, verdict, message, time and run."""
    latest: dict[str, Any] = {}
    for entry in status.history:
        latest[entry.measurement.metric] = {
            "run": entry.run,
            **_measurement_to_dict(entry.measurement),
        }
    return latest


def _run_to_dict(run: AnalysisRun) -> dict[str, Any]:
    return {
        "name": run.name,
        "label": run.label,
        "templates": list(run.templates),
        "startedAt": _time(run.started_at),
        "nextAt": _time(run.next_at),
        "finite": run.finite,
        "metrics": [
            {
                "name": t.metric,
                "successes": t.successes,
                "failures": t.failures,
                "inconclusive": t.inconclusive,
                "consecutiveInconclusive": t.consecutive_inconclusive,
                **({"last": _measurement_to_dict(t.last)} if t.last else {}),
            }
            for t in run.tallies
        ],
    }


def _run_from_dict(raw: Mapping[str, Any]) -> AnalysisRun:
    started = _parse_time(raw.get("startedAt")) or _EPOCH
    return AnalysisRun(
        name=raw.get("name", ""),
        label=raw.get("label", raw.get("name", "")),
        templates=tuple(raw.get("templates") or ()),
        started_at=started,
        next_at=_parse_time(raw.get("nextAt")) or started,
        finite=bool(raw.get("finite", True)),
        tallies=tuple(
            MetricTally(
                metric=t.get("name", ""),
                successes=int(t.get("successes", 0)),
                failures=int(t.get("failures", 0)),
                inconclusive=int(t.get("inconclusive", 0)),
                consecutive_inconclusive=int(t.get("consecutiveInconclusive", 0)),
                last=_measurement_from_dict(t["last"]) if t.get("last") else None,
            )
            for t in raw.get("metrics") or ()
        ),
    )


def _measurement_to_dict(m: Measurement) -> dict[str, Any]:
    out: dict[str, Any] = {"metric": m.metric, "verdict": str(m.verdict), "time": _time(m.at)}
    if m.value is not None:
        out["value"] = _finite_or_text(m.value)
    if m.message:
        out["message"] = m.message
    return out


def _measurement_from_dict(raw: Mapping[str, Any]) -> Measurement:
    value = raw.get("value")
    return Measurement(
        metric=raw.get("metric", ""),
        verdict=_enum(Verdict, raw.get("verdict"), Verdict.INCONCLUSIVE),
        value=float(value) if value is not None else None,
        message=raw.get("message", ""),
        at=_parse_time(raw.get("time")) or _EPOCH,
    )


def _finite_or_text(value: float) -> float | str:
    """JSON has no infinity: +Inf and -Inf are stored as the strings Python reads back."""
    return value if abs(value) != float("inf") else str(value)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
E = TypeVar("E", bound=StrEnum)


def _time(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse_time(text: object) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _enum(kind: type[E], value: object, default: E) -> E:
    try:
        return kind(str(value))
    except ValueError:
        return default
