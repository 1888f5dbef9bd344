"""The moves between phases, shared by the phase functions and the user commands.

Each returns the new status and the Events that tell the story; the steady-state actions
of the phase it lands in are added by that phase's own function in `decide`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from forecastops.analysis.measurement import Measurement
from forecastops.kube.names import Role
from forecastops.rollout.actions import Action, Emit, EventType, ScaleCandidate, SetRoutes
from forecastops.rollout.observed import DeploymentState, Observed
from forecastops.rollout.replicas import candidate_replicas
from forecastops.rollout.spec import RolloutSpec, SetWeight, Step, Strategy
from forecastops.rollout.state import Phase, Reason, RolloutStatus
from forecastops.rollout.steps import describe, steps_for

Moved = tuple[RolloutStatus, list[Action]]


@dataclass(frozen=True)
class Pass:
    """Everything one decision reads besides the status: spec, observations, measurements."""

    spec: RolloutSpec
    observed: Observed
    measurements: dict[str, Measurement]

    @property
    def now(self) -> datetime:
        return self.observed.now

    @property
    def steps(self) -> tuple[Step, ...]:
        return steps_for(self.spec)

    @property
    def role(self) -> Role:
        return Role.PREVIEW if self.spec.strategy is Strategy.BLUE_GREEN else Role.CANARY

    @property
    def candidate(self) -> DeploymentState | None:
        return self.observed.candidate(self.role)

    @property
    def stable_replicas(self) -> int:
        return self.observed.stable.replicas if self.observed.stable else 1

    def candidate_size(self, status: RolloutStatus) -> int:
        """The candidate's replicas now: for the weight being set, or the one already set."""
        weight = status.route_weight
        step = self.current_step(status)
        if isinstance(step, SetWeight):
            weight = max(weight, step.weight)
        return candidate_replicas(
            self.spec.strategy,
            self.stable_replicas,
            weight,
            exact_weights=self.spec.exact_weights,
        )

    def current_step(self, status: RolloutStatus) -> Step | None:
        index = status.step_index
        return self.steps[index] if index is not None and 0 <= index < len(self.steps) else None

    def step_label(self, status: RolloutStatus) -> str:
        """`step 3/5 (analysis error-rate)`."""
        index = status.step_index or 0
        if index >= len(self.steps):
            return f"after step {len(self.steps)}/{len(self.steps)}"
        what = describe(self.steps, index, self.spec.strategy)
        return f"step {index + 1}/{len(self.steps)} ({what})"


def event(reason: Reason, message: str, *, warning: bool = False) -> Emit:
    return Emit(EventType.WARNING if warning else EventType.NORMAL, str(reason), message)


def start(p: Pass, status: RolloutStatus, *, restarted: bool) -> Moved:
    """Begin rolling out the spec's revision from the first step."""
    revision = p.observed.desired_revision
    reason = Reason.ROLLOUT_RESTARTED if restarted else Reason.ROLLOUT_STARTED
    previous = f" (replacing candidate {status.candidate_revision})" if restarted else ""
    message = (
        f"rolling out revision {revision}{previous} over stable {status.stable_revision} "
        f"with the {p.spec.strategy} strategy in {len(p.steps)} steps"
    )
    status = replace(
        status,
        phase=Phase.PROGRESSING,
        candidate_revision=revision,
        step_index=0,
        step_started_at=p.now,
        route_weight=0,
        canary_weight=0,
        runs=(),
        reason=str(reason),
        message=message,
        aborted_revision=None,
        stable_promoted=False,
        scale_down_at=None,
    )
    return status, [event(reason, message)]


def advance(p: Pass, status: RolloutStatus) -> Moved:
    """Go to the next step (or past the last one, where promotion begins)."""
    index = (status.step_index or 0) + 1
    status = replace(status, phase=Phase.PROGRESSING, step_index=index, step_started_at=p.now)
    if index >= len(p.steps):
        return status, []
    message = f"{p.step_label(status)} started"
    return replace(status, reason=str(Reason.STEP_STARTED), message=message), [
        event(Reason.STEP_STARTED, message)
    ]


def pause(status: RolloutStatus, reason: Reason, message: str, *, warning: bool = False) -> Moved:
    if status.phase is Phase.PAUSED and status.reason == reason:
        return replace(status, message=message), []
    status = replace(status, phase=Phase.PAUSED, reason=str(reason), message=message)
    return status, [event(reason, message, warning=warning)]


def start_promotion(p: Pass, status: RolloutStatus, why: str) -> Moved:
    """Past the last step (or told to skip them): the candidate's revision becomes stable."""
    message = f"promoting revision {status.candidate_revision} to stable: {why}"
    status = replace(
        status,
        phase=Phase.PROMOTING,
        step_index=len(p.steps),
        step_started_at=p.now,
        runs=(),
        reason=str(Reason.PROMOTING),
        message=message,
    )
    return status, [event(Reason.PROMOTING, message)]


def abort(p: Pass, status: RolloutStatus, reason: Reason, why: str) -> Moved:
    """All traffic to stable at once; the candidate to zero now or after the abort delay.

    Stable's Deployment is not touched: no action here writes it.
    """
    revision = status.candidate_revision
    delay = p.spec.abort_scale_down_delay_seconds
    message = f"rolled back revision {revision} to stable {status.stable_revision}: {why}"
    status = replace(
        status,
        runs=(),
        route_weight=0,
        canary_weight=0,
        aborted_revision=revision,
        stable_promoted=False,
        reason=str(reason),
        message=message,
    )
    actions: list[Action] = [SetRoutes(0), event(reason, message, warning=True)]
    if delay > 0:
        status = replace(
            status, phase=Phase.DEGRADED, scale_down_at=p.now + timedelta(seconds=delay)
        )
    else:
        status = replace(status, phase=Phase.ROLLED_BACK, candidate_revision=None)
        actions.insert(1, ScaleCandidate(p.role, 0))
    return status, actions
