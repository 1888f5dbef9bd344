"""The rollout state machine: `decide_rollout(spec, status, observed, measurements) -> Decision`.

Pure: no I/O, no clock (the time is in `observed`), no kopf, no Kubernetes client. One
pass runs a fixed chain, then the function of the phase it lands in:

1. adopt a stable Deployment the status does not know (status lost, first sight);
2. record the measurements taken for due analysis runs (one Event each);
3. apply a user command (each annotation value once);
4. follow the spec's revision (start, restart or cancel a rollout; never re-try a
   rolled-back revision on its own);
5. the phase's function: its transitions and its steady-state actions.

| phase       | goes to      | when                                                        |
|-------------|--------------|-------------------------------------------------------------|
| Pending     | Healthy      | the first revision is complete                              |
| Healthy     | Progressing  | the spec's revision differs from stable's (and was not rolled back) |
| Progressing | Paused       | a pause step, awaiting promotion, inconclusive analysis, `pause` |
| Progressing | Promoting    | the last step is done, or `promote-full`                    |
| Progressing | Degraded / RolledBack | an analysis fails, the progress deadline passes, `abort` |
| Paused      | Progressing  | `promote` / `resume` (or a timed pause ends)                |
| Paused      | Degraded / RolledBack | a background analysis fails, `abort`               |
| Promoting   | Healthy      | stable is complete at the candidate's revision              |
| Degraded    | RolledBack   | the abort delay is over: the candidate goes to zero          |
| RolledBack  | Progressing  | the spec's revision changes again, or `retry`               |
| any         | Healthy      | the spec goes back to stable's revision (rollout cancelled) |

Every pass emits the actions its phase needs (scale, routes, stable), not only those of a
transition: they are idempotent, so a pass killed halfway is finished by the next one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import timedelta

from forecastops.analysis.measurement import Measurement, Verdict, format_value
from forecastops.kube.names import Role
from forecastops.rollout import runs as analysis_runs
from forecastops.rollout.actions import (
    Action,
    ApplyStable,
    Decision,
    DeleteCandidate,
    Requeue,
    ScaleCandidate,
    SetRoutes,
)
from forecastops.rollout.commands import apply_command
from forecastops.rollout.observed import Observed
from forecastops.rollout.replicas import achieved_weight
from forecastops.rollout.runs import RunOutcome, judge_runs
from forecastops.rollout.spec import Analysis, Pause, Preview, RolloutSpec, SetWeight, Step, Switch
from forecastops.rollout.state import (
    ABORTED_PHASES,
    HISTORY_LIMIT,
    ROLLOUT_PHASES,
    Phase,
    Reason,
    RolloutStatus,
)
from forecastops.rollout.steps import format_seconds
from forecastops.rollout.transitions import (
    Moved,
    Pass,
    abort,
    advance,
    event,
    pause,
    start,
    start_promotion,
)

READY_POLL_SECONDS = 5.0
"""How soon to look again while waiting for pods to become ready: a safety net, since a
change of a Deployment's status starts a pass of its own."""


def decide_rollout(
    spec: RolloutSpec | None,
    status: RolloutStatus,
    observed: Observed,
    measurements: Mapping[str, Measurement] | None = None,
) -> Decision:
    """The next status and the actions that realise it (see the module's table)."""
    if spec is None:
        return _rolling_update(status, observed)
    p = Pass(spec, observed, dict(measurements or {}))
    status = _adopt(status, observed)
    if status.stable_revision is None:
        return _first_revision(p, status)
    actions: list[Action] = []
    for step in (_record_measurements, apply_command, _follow_revision):
        status, emitted = step(p, status)
        actions += emitted
    status, emitted = _PHASES[status.phase](p, status)
    return _finish(p, status, actions + emitted)


# --- before the phase ----------------------------------------------------------------------


def _adopt(status: RolloutStatus, observed: Observed) -> RolloutStatus:
    """A stable Deployment exists but the status does not know it: take it as stable."""
    if status.stable_revision or observed.stable is None or not observed.stable.revision:
        return status
    return replace(status, phase=Phase.HEALTHY, stable_revision=observed.stable.revision)


def _first_revision(p: Pass, status: RolloutStatus) -> Decision:
    """No stable yet: the first revision is deployed directly, without a rollout."""
    revision = p.observed.desired_revision
    message = f"deploying the first revision {revision} directly"
    status = replace(
        status,
        phase=Phase.PENDING,
        stable_revision=revision,
        reason=str(Reason.FIRST_REVISION),
        message=message,
    )
    return _finish(p, status, [ApplyStable(revision), event(Reason.FIRST_REVISION, message)])


def _record_measurements(p: Pass, status: RolloutStatus) -> Moved:
    """Count this pass's measurements in the runs that asked for them; an Event for each."""
    if status.phase not in (Phase.PROGRESSING, Phase.PAUSED) or not p.measurements:
        return status, []
    runs, entries = analysis_runs.record(
        status.runs, p.measurements, p.now, p.spec.analysis.interval_seconds
    )
    history = (status.history + entries)[-HISTORY_LIMIT:]
    return replace(status, runs=runs, history=history), [
        _measurement_event(entry.run, entry.measurement) for entry in entries
    ]


def _measurement_event(run: str, m: Measurement) -> Action:
    reason = {
        Verdict.SUCCESSFUL: Reason.METRIC_SUCCESSFUL,
        Verdict.FAILED: Reason.METRIC_FAILED,
        Verdict.INCONCLUSIVE: Reason.METRIC_INCONCLUSIVE,
    }[m.verdict]
    value = format_value(m.value) if m.value is not None else "no value"
    message = f"{run}: {m.metric} = {value} ({m.verdict}): {m.message}"
    return event(reason, message, warning=m.verdict is not Verdict.SUCCESSFUL)


def _follow_revision(p: Pass, status: RolloutStatus) -> Moved:
    """Start, restart or cancel a rollout when the spec's revision moves."""
    desired = p.observed.desired_revision
    if status.phase is Phase.PENDING:
        return status, []  # nothing stable to protect yet: `_pending` deploys it directly
    if desired == status.stable_revision:
        return _back_to_stable(status) if status.phase is not Phase.HEALTHY else (status, [])
    if status.phase in ABORTED_PHASES and desired == status.aborted_revision:
        return status, []  # a GitOps re-sync of the rolled-back spec must not loop
    if status.phase in ROLLOUT_PHASES | ABORTED_PHASES and desired == status.candidate_revision:
        return status, []
    if status.phase is Phase.PROMOTING and status.stable_promoted:
        # Stable's Deployment already runs the candidate's revision: it is stable now.
        status = replace(status, stable_revision=status.candidate_revision, candidate_revision=None)
        return start(p, status, restarted=False)
    return start(p, status, restarted=status.phase in ROLLOUT_PHASES)


def _back_to_stable(status: RolloutStatus) -> Moved:
    """The spec went back to stable's revision: drop the candidate, nothing to roll back."""
    message = f"the spec is at stable revision {status.stable_revision} again"
    if status.phase in ROLLOUT_PHASES:
        message += f"; candidate {status.candidate_revision} removed"
    status = status.settled(
        Reason.ROLLOUT_CANCELLED, message, aborted_revision=None, scale_down_at=None
    )
    return status, [event(Reason.ROLLOUT_CANCELLED, message)]


# --- one function per phase ----------------------------------------------------------------


def _pending(p: Pass, status: RolloutStatus) -> Moved:
    """The first revision (or a fix of it) is written directly until it is complete."""
    revision = p.observed.desired_revision
    status = replace(status, stable_revision=revision)
    if p.observed.stable and p.observed.stable.complete_at(revision):
        message = f"revision {revision} is available"  # the Ready condition reports it too
        status = replace(
            status, phase=Phase.HEALTHY, reason=str(Reason.STABLE_AVAILABLE), message=message
        )
    return status, [ApplyStable(revision), SetRoutes(0)]


def _healthy(p: Pass, status: RolloutStatus) -> Moved:
    """Stable serves the spec's revision: keep it as the spec says (restores hand edits)."""
    assert status.stable_revision is not None
    return status, [ApplyStable(status.stable_revision), SetRoutes(0)]


def _progressing(p: Pass, status: RolloutStatus) -> Moved:
    verdicts = judge_runs(status.runs, p.spec.analysis)
    for outcome, handle in (
        (RunOutcome.FAILED, _analysis_failed),
        (RunOutcome.INCONCLUSIVE, _inconclusive),
    ):
        messages = [v.message for v in verdicts.values() if v.outcome is outcome]
        if messages:
            return handle(p, status, messages[0])
    return _run_steps(p, status)


def _paused(p: Pass, status: RolloutStatus) -> Moved:
    """Waiting for a person; analysis still guards the candidate while it serves."""
    verdicts = judge_runs(status.runs, p.spec.analysis)
    failed = [v.message for v in verdicts.values() if v.outcome is RunOutcome.FAILED]
    if failed:
        return _analysis_failed(p, status, failed[0])
    if status.reason in (Reason.PAUSE_STEP, Reason.AWAITING_PROMOTION) and p.current_step(
        status
    ) != Pause(None):
        return _run_steps(p, replace(status, phase=Phase.PROGRESSING))  # the steps were edited
    return status, _hold(p, status)


def _promoting(p: Pass, status: RolloutStatus) -> Moved:
    """Write the candidate's revision to stable; when stable is complete, the candidate goes."""
    actions: list[Action] = []
    if p.role is Role.PREVIEW and status.route_weight < 100:
        status, actions = _switch_when_ready(p, status)
        if status.phase in ABORTED_PHASES:
            return status, actions
        if status.route_weight < 100:
            return status, actions + _hold(p, status)
    revision = status.candidate_revision
    assert revision is not None
    status = replace(status, stable_promoted=True)
    actions += [ApplyStable(revision), *_hold(p, status)]
    if not (p.observed.stable and p.observed.stable.complete_at(revision)):
        return replace(status, message=f"waiting for stable to run revision {revision}"), actions
    message = (
        f"revision {revision} is stable; the previous revision {status.stable_revision} is gone"
    )
    status = status.settled(Reason.ROLLOUT_COMPLETED, message, stable_revision=revision)
    return status, [
        ApplyStable(revision),
        SetRoutes(0),
        DeleteCandidate(p.role),
        event(Reason.ROLLOUT_COMPLETED, message),
    ]


def _degraded(p: Pass, status: RolloutStatus) -> Moved:
    """Aborted: stable has all the traffic; the candidate keeps its pods until the delay ends."""
    if status.scale_down_at is not None and p.now < status.scale_down_at:
        return status, [SetRoutes(0)]
    message = f"revision {status.aborted_revision} scaled to zero; {status.message}"
    status = replace(
        status,
        phase=Phase.ROLLED_BACK,
        candidate_revision=None,
        scale_down_at=None,
        message=message,
    )
    return status, [SetRoutes(0), ScaleCandidate(p.role, 0), event(Reason.ROLLED_BACK, message)]


def _rolled_back(p: Pass, status: RolloutStatus) -> Moved:
    """Stable serves; the rolled-back revision waits at zero for a new spec or `retry`."""
    return status, [SetRoutes(0), ScaleCandidate(p.role, 0)]


_PHASES: dict[Phase, Callable[[Pass, RolloutStatus], Moved]] = {
    Phase.PENDING: _pending,
    Phase.HEALTHY: _healthy,
    Phase.PROGRESSING: _progressing,
    Phase.PAUSED: _paused,
    Phase.PROMOTING: _promoting,
    Phase.DEGRADED: _degraded,
    Phase.ROLLED_BACK: _rolled_back,
}


# --- steps -----------------------------------------------------------------------------------


def _run_steps(p: Pass, status: RolloutStatus) -> Moved:
    """Run the current step; while steps complete at once, run the next one too."""
    actions: list[Action] = []
    for _ in range(len(p.steps) + 1):
        status, emitted = _sync_background(p, status)
        actions += emitted
        step = p.current_step(status)
        if step is None:
            status, emitted = start_promotion(p, status, "every step is done")
            status, promoted = _promoting(p, status)
            return status, actions + emitted + promoted
        status, emitted, done = _STEPS[type(step)](p, status, step)
        actions += emitted
        if status.phase is not Phase.PROGRESSING or not done:
            break
        status, emitted = advance(p, status)
        actions += emitted
    if status.phase in ABORTED_PHASES:
        return status, actions
    return status, actions + _hold(p, status)


StepResult = tuple[RolloutStatus, list[Action], bool]


def _set_weight(p: Pass, status: RolloutStatus, step: Step) -> StepResult:
    """Scale the canary for the weight, and route the weight once its pods are ready."""
    assert isinstance(step, SetWeight)
    replicas = p.candidate_size(status)
    ready = p.candidate.ready if p.candidate else 0
    if replicas and not (p.candidate and p.candidate.ready_at(status.candidate_revision, replicas)):
        return _wait_for_candidate(p, status, replicas, ready)
    message = f"{p.step_label(status)}: canary weight {step.weight}% with {replicas} replica(s)"
    status = replace(
        status, route_weight=step.weight, reason=str(Reason.WEIGHT_SET), message=message
    )
    return status, [SetRoutes(step.weight), event(Reason.WEIGHT_SET, message)], True


def _preview(p: Pass, status: RolloutStatus, step: Step) -> StepResult:
    """Blue-green: the preview comes up at stable's size, with no production traffic."""
    replicas = p.candidate_size(status)
    if not (p.candidate and p.candidate.ready_at(status.candidate_revision, replicas)):
        return _wait_for_candidate(p, status, replicas, p.candidate.ready if p.candidate else 0)
    return status, [], True


def _switch(p: Pass, status: RolloutStatus, step: Step) -> StepResult:
    status, actions = _switch_when_ready(p, status)
    return status, actions, status.route_weight == 100


def _pause_step(p: Pass, status: RolloutStatus, step: Step) -> StepResult:
    assert isinstance(step, Pause)
    if step.seconds is None:
        reason = Reason.AWAITING_PROMOTION if p.role is Role.PREVIEW else Reason.PAUSE_STEP
        status, actions = pause(status, reason, f"{p.step_label(status)}: waiting for promote")
        return status, actions, False
    ends = (status.step_started_at or p.now) + timedelta(seconds=step.seconds)
    if p.now >= ends:
        return status, [], True
    left = format_seconds((ends - p.now).total_seconds())
    return replace(status, message=f"{p.step_label(status)}: {left} left"), [], False


def _analysis_step(p: Pass, status: RolloutStatus, step: Step) -> StepResult:
    """Measure until every metric has passed `count` times; failures are judged earlier."""
    assert isinstance(step, Analysis)
    name = analysis_runs.step_run_name(status.step_index or 0)
    run = status.run(name)
    if run is None:
        label = p.step_label(status)
        run = analysis_runs.start_run(name, label, step.templates, p.now, finite=True)
        status = replace(status, runs=(*status.runs, run))
    verdict = analysis_runs.judge_run(run, p.spec.analysis)
    if verdict.outcome is RunOutcome.SUCCESSFUL:
        status = replace(
            status,
            runs=tuple(r for r in status.runs if r.name != name),
            reason=str(Reason.ANALYSIS_PASSED),
            message=verdict.message,
        )
        return status, [event(Reason.ANALYSIS_PASSED, verdict.message)], True
    progress = analysis_runs.progress(run, p.spec.analysis)
    return replace(status, message=f"{p.step_label(status)}: {progress}"), [], False


_STEPS: dict[type, Callable[[Pass, RolloutStatus, Step], StepResult]] = {
    SetWeight: _set_weight,
    Pause: _pause_step,
    Analysis: _analysis_step,
    Preview: _preview,
    Switch: _switch,
}


def _wait_for_candidate(p: Pass, status: RolloutStatus, replicas: int, ready: int) -> StepResult:
    """Waiting for pods; past the progress deadline the rollout is aborted."""
    waited = (p.now - (status.step_started_at or p.now)).total_seconds()
    what = f"{ready}/{replicas} {p.role} replica(s) of revision {status.candidate_revision} ready"
    if waited > p.spec.progress_deadline_seconds:
        limit = format_seconds(p.spec.progress_deadline_seconds)
        status, actions = abort(p, status, Reason.PROGRESS_DEADLINE, f"only {what} after {limit}")
        return status, actions, False
    message = f"{p.step_label(status)}: waiting, {what}"
    return replace(status, reason=str(Reason.WAITING_FOR_CANDIDATE), message=message), [], False


def _switch_when_ready(p: Pass, status: RolloutStatus) -> Moved:
    """Blue-green: the active Service moves to the preview, only when it is ready in full."""
    replicas = p.candidate_size(status)
    if not (p.candidate and p.candidate.ready_at(status.candidate_revision, replicas)):
        status, actions, _ = _wait_for_candidate(
            p, status, replicas, p.candidate.ready if p.candidate else 0
        )
        return status, actions
    message = f"the active Service now selects revision {status.candidate_revision}"
    status = replace(status, route_weight=100, reason=str(Reason.SWITCHED), message=message)
    return status, [SetRoutes(100), event(Reason.SWITCHED, message)]


def _sync_background(p: Pass, status: RolloutStatus) -> Moved:
    """The background analysis runs once the canary has traffic, from its starting step."""
    background = p.spec.canary.background if p.spec.canary else None
    if background is None or status.run(analysis_runs.BACKGROUND):
        return status, []
    if (status.step_index or 0) < background.starting_step or status.route_weight == 0:
        return status, []  # no traffic yet: measuring now would only find no data
    run = analysis_runs.start_run(
        analysis_runs.BACKGROUND, "background analysis", background.templates, p.now, finite=False
    )
    message = f"background analysis of {', '.join(background.templates)} started"
    return replace(status, runs=(*status.runs, run)), [event(Reason.STEP_STARTED, message)]


def _analysis_failed(p: Pass, status: RolloutStatus, why: str) -> Moved:
    return abort(p, status, Reason.ANALYSIS_FAILED, why)


def _inconclusive(p: Pass, status: RolloutStatus, why: str) -> Moved:
    """Not enough evidence either way: hold, say why, and wait for a person."""
    message = f"{why}; neither promoting nor rolling back: fix the metric and `resume`, or `promote`/`abort`"
    status, actions = pause(status, Reason.INCONCLUSIVE, message, warning=True)
    return status, actions + _hold(p, status)


def _hold(p: Pass, status: RolloutStatus) -> list[Action]:
    """The candidate at its size and the routes as set: what every live phase keeps true."""
    return [ScaleCandidate(p.role, p.candidate_size(status)), SetRoutes(status.route_weight)]


# --- after the phase -------------------------------------------------------------------------


def _finish(p: Pass, status: RolloutStatus, actions: list[Action]) -> Decision:
    """Report the achieved weight, clear leftovers, and say when to look again."""
    status = replace(status, canary_weight=_achieved(p, status))
    for role in (Role.CANARY, Role.PREVIEW):
        leftover = role is not p.role or status.phase in (Phase.HEALTHY, Phase.PENDING)
        if leftover and p.observed.candidate(role) is not None:
            actions.append(DeleteCandidate(role))
    after = _wake_after(p, status)
    if after is not None:
        actions.append(Requeue(after))
    return Decision(status, tuple(_dedupe(actions)))


def _achieved(p: Pass, status: RolloutStatus) -> int:
    if status.phase not in ROLLOUT_PHASES:
        return 0
    stable_ready = p.observed.stable.ready if p.observed.stable else 0
    candidate_ready = p.candidate.ready if p.candidate else 0
    return achieved_weight(
        stable_ready, candidate_ready, status.route_weight, exact_weights=p.spec.exact_weights
    )


def _wake_after(p: Pass, status: RolloutStatus) -> float | None:
    """Seconds until something is due: a measurement, the end of a pause, a delay, pods."""
    moments = [run.next_at for run in status.runs]
    step = p.current_step(status)
    if status.phase is Phase.PROGRESSING and isinstance(step, Pause) and step.seconds is not None:
        moments.append((status.step_started_at or p.now) + timedelta(seconds=step.seconds))
    if status.scale_down_at is not None:
        moments.append(status.scale_down_at)
    if status.phase in (Phase.PENDING, Phase.PROGRESSING, Phase.PROMOTING):
        moments.append(p.now + timedelta(seconds=READY_POLL_SECONDS))
    if not moments:
        return None
    return max(0.0, (min(moments) - p.now).total_seconds())


def _dedupe(actions: list[Action]) -> list[Action]:
    """Keep the last of repeated steady-state actions (e.g. two SetRoutes in one pass)."""
    last_of_kind: dict[object, int] = {}
    for i, action in enumerate(actions):
        key = _dedupe_key(action)
        if key is not None:
            last_of_kind[key] = i
    return [
        a for i, a in enumerate(actions) if (k := _dedupe_key(a)) is None or last_of_kind[k] == i
    ]


def _dedupe_key(action: Action) -> object | None:
    match action:
        case SetRoutes():
            return SetRoutes
        case ScaleCandidate(role=role) | DeleteCandidate(role=role):
            return ("candidate", role)
        case ApplyStable():
            return ApplyStable
    return None


# --- without a rollout strategy ------------------------------------------------------------


def _rolling_update(status: RolloutStatus, observed: Observed) -> Decision:
    """No `spec.rollout`: stable follows the spec directly, as a plain rolling update."""
    revision = observed.desired_revision
    complete = observed.stable is not None and observed.stable.complete_at(revision)
    phase = Phase.HEALTHY if complete else Phase.PROGRESSING
    reason = Reason.STABLE_AVAILABLE if complete else Reason.ROLLING_UPDATE
    message = f"revision {revision} is available" if complete else f"rolling update to {revision}"
    actions: list[Action] = [ApplyStable(revision), SetRoutes(0)]
    actions += [DeleteCandidate(r) for r in (Role.CANARY, Role.PREVIEW) if observed.candidate(r)]
    if not complete:
        actions.append(Requeue(READY_POLL_SECONDS))
    new = RolloutStatus(
        phase=phase,
        stable_revision=revision,
        history=status.history,
        reason=str(reason),
        message=message,
        last_command=status.last_command,
        command_outcome=status.command_outcome,
    )
    if phase is not status.phase and status.stable_revision is not None:
        actions.append(event(reason, message))
    return Decision(new, tuple(actions))
