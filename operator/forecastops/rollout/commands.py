"""User commands (`forecastctl promote`, or the `forecastops.io/command` annotation).

Each annotation value is applied once: status remembers the last value seen, so a GitOps
tool re-applying the same manifest does not repeat the command; `forecastctl` adds a
nonce (`promote:7f3a`) so a person can give the same command again. A command that does
not apply to the current phase is ignored with an Event that says why.

| command      | applies in                          | does                                       |
|--------------|-------------------------------------|--------------------------------------------|
| promote      | Progressing/Paused, at a pause or analysis step | finishes that step             |
| promote-full | Progressing/Paused                  | skips every step and analysis; promotes    |
| abort        | Progressing/Paused, Promoting before stable is written | rolls back          |
| retry        | Degraded/RolledBack, spec still at the rolled-back revision | starts it again |
| pause        | Progressing                         | holds (analysis keeps guarding)            |
| resume       | Paused                              | continues; after an inconclusive pause the streak starts over; at a pause step, finishes it |
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from forecastops.rollout import runs as analysis_runs
from forecastops.rollout.observed import CommandKind
from forecastops.rollout.spec import Analysis, Pause
from forecastops.rollout.state import ABORTED_PHASES, Phase, Reason, RolloutStatus
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

_LIVE = (Phase.PROGRESSING, Phase.PAUSED)


def apply_command(p: Pass, status: RolloutStatus) -> Moved:
    command = p.observed.command
    if command is None or command.token == status.last_command:
        return status, []
    status = replace(status, last_command=command.token)
    if command.kind is None:
        known = ", ".join(str(kind) for kind in CommandKind)
        return _ignored(status, f"{command.token} ignored: unknown command; known: {known}")
    outcome = _COMMANDS[command.kind](p, status)
    if isinstance(outcome, str):
        return _ignored(status, f"{command.kind} ignored: {outcome}")
    status, actions = outcome
    return replace(status, command_outcome=f"{command.kind} applied: {status.message}"), actions


def _ignored(status: RolloutStatus, why: str) -> Moved:
    status = replace(status, command_outcome=why)
    return status, [event(Reason.COMMAND_IGNORED, why, warning=True)]


def _promote(p: Pass, status: RolloutStatus) -> Moved | str:
    if status.phase not in _LIVE:
        return f"no step to promote while the rollout is {status.phase}"
    step = p.current_step(status)
    if not isinstance(step, Pause | Analysis):
        return f"{p.step_label(status)} is not waiting for anyone; promote-full skips every step"
    return _finish_step(p, status, "promoted")


def _promote_full(p: Pass, status: RolloutStatus) -> Moved | str:
    if status.phase not in _LIVE:
        return f"nothing to promote while the rollout is {status.phase}"
    return start_promotion(p, status, "promote-full by a user, remaining steps skipped")


def _abort(p: Pass, status: RolloutStatus) -> Moved | str:
    if status.phase is Phase.PROMOTING and status.stable_promoted:
        return "stable already runs the new revision; revert the spec to go back"
    if status.phase not in (*_LIVE, Phase.PROMOTING):
        return f"no rollout to abort while the rollout is {status.phase}"
    return abort(p, status, Reason.USER_ABORTED, "aborted by a user")


def _retry(p: Pass, status: RolloutStatus) -> Moved | str:
    revision = p.observed.desired_revision
    if status.phase not in ABORTED_PHASES or status.aborted_revision != revision:
        return f"revision {revision} was not rolled back; nothing to retry"
    status, actions = start(p, replace(status, aborted_revision=None), restarted=False)
    return status, [event(Reason.RETRY, f"retrying revision {revision}"), *actions]


def _pause(p: Pass, status: RolloutStatus) -> Moved | str:
    if status.phase is not Phase.PROGRESSING:
        return f"only a progressing rollout can be paused, not one that is {status.phase}"
    return pause(status, Reason.USER_PAUSED, f"paused by a user at {p.step_label(status)}")


def _resume(p: Pass, status: RolloutStatus) -> Moved | str:
    if status.phase is not Phase.PAUSED:
        return f"nothing to resume while the rollout is {status.phase}"
    if status.reason in (Reason.PAUSE_STEP, Reason.AWAITING_PROMOTION):
        return _finish_step(p, status, "resumed")
    if status.reason == Reason.INCONCLUSIVE:
        status = replace(
            status, runs=tuple(analysis_runs.forgive_inconclusive(r) for r in status.runs)
        )
    message = f"resumed by a user at {p.step_label(status)}"
    status = replace(status, phase=Phase.PROGRESSING, reason=str(Reason.RESUMED), message=message)
    return status, [event(Reason.RESUMED, message)]


def _finish_step(p: Pass, status: RolloutStatus, how: str) -> Moved:
    """The current step counts as done: its analysis run (if any) stops, the next step runs."""
    label = p.step_label(status)
    run = analysis_runs.step_run_name(status.step_index or 0)
    status = replace(status, runs=tuple(r for r in status.runs if r.name != run))
    status, actions = advance(p, status)
    return status, [event(Reason.RESUMED, f"{label} {how} by a user"), *actions]


_COMMANDS: dict[CommandKind, Callable[[Pass, RolloutStatus], Moved | str]] = {
    CommandKind.PROMOTE: _promote,
    CommandKind.PROMOTE_FULL: _promote_full,
    CommandKind.ABORT: _abort,
    CommandKind.RETRY: _retry,
    CommandKind.PAUSE: _pause,
    CommandKind.RESUME: _resume,
}
