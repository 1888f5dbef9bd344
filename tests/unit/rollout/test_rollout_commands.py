"""User commands through the annotation: each applied once, where it makes sense."""

from __future__ import annotations

import pytest
from forecastops.rollout.observed import CommandKind, parse_command
from forecastops.rollout.state import Phase, Reason
from rollout_world import NO_DATA, World, never_ready, rollout_spec


def at_step(index: int, **spec) -> World:
    world = World.healthy(rollout_spec(**spec))
    world.desired = "rev-b"
    world.run_until(lambda w: w.status.step_index == index)
    return world


def ignored(world: World) -> list[str]:
    return [e.message for e in world.events if e.reason == Reason.COMMAND_IGNORED]


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("promote", CommandKind.PROMOTE),
        ("promote:7f3a", CommandKind.PROMOTE),
        (" Promote-Full:1 ", CommandKind.PROMOTE_FULL),
        ("abort", CommandKind.ABORT),
        ("retry:x", CommandKind.RETRY),
        ("pause", CommandKind.PAUSE),
        ("resume:2", CommandKind.RESUME),
        ("launch", None),
    ],
)
def test_given_annotation_when_parsed_then_command_and_token(value, kind):
    command = parse_command(value)
    assert command.kind is kind
    assert command.token == value.strip()


@pytest.mark.parametrize("value", [None, "", "   "])
def test_given_no_annotation_when_parsed_then_no_command(value):
    assert parse_command(value) is None


def test_given_pause_step_when_promoted_then_next_step_runs():
    world = at_step(4)
    assert world.status.phase is Phase.PAUSED
    world.command = "promote"
    world.tick()
    assert world.status.phase is Phase.PROMOTING


def test_given_timed_pause_when_promoted_then_pause_skipped():
    world = at_step(1)
    world.command = "promote:1"
    world.tick()
    assert world.status.step_index == 2


def test_given_analysis_step_when_promoted_then_analysis_skipped_and_run_stopped():
    world = at_step(2)
    world.tick()
    assert world.status.runs
    world.command = "promote:1"
    world.tick()
    assert world.status.step_index >= 3 and not world.status.runs


def test_given_same_annotation_when_seen_again_then_not_applied_twice():
    world = at_step(1)
    world.command = "promote:1"
    world.tick()
    assert world.status.step_index == 2
    for _ in range(5):  # e.g. a GitOps tool re-applies the manifest with the annotation
        world.tick()
    assert world.reasons().count(Reason.RESUMED) == 1, "promoted once, not at every pass"
    assert Reason.ANALYSIS_PASSED in world.reasons(), "the analysis step ran, not skipped"
    assert world.status.last_command == "promote:1"


def test_given_setweight_step_when_promoted_then_ignored_with_reason():
    world = never_ready(rollout_spec())
    world.command = "promote"
    world.tick()
    assert world.status.step_index == 0
    assert "not waiting for anyone" in ignored(world)[0]


def test_given_progressing_when_promote_full_then_every_step_skipped():
    world = at_step(0)
    world.command = "promote-full:1"
    world.run_until(world.phase_is(Phase.HEALTHY), passes=5)
    assert world.stable.revision == "rev-b"
    assert Reason.ANALYSIS_PASSED not in world.reasons()


def test_given_progressing_when_aborted_then_rolled_back_by_user():
    world = at_step(2)
    world.command = "abort:1"
    world.tick()
    assert world.status.phase is Phase.ROLLED_BACK
    assert world.status.reason == Reason.USER_ABORTED
    assert world.routes == 0 and world.candidate().replicas == 0


def test_given_progressing_when_paused_then_holds_until_resumed():
    world = at_step(1)
    world.command = "pause:1"
    world.tick()
    assert (world.status.phase, world.status.reason) == (Phase.PAUSED, Reason.USER_PAUSED)
    for _ in range(20):  # the 10 s pause would have ended
        world.tick()
    assert world.status.step_index == 1
    world.command = "resume:1"
    world.run_until(lambda w: w.status.step_index == 2, passes=5)


def test_given_inconclusive_pause_when_paused_command_then_ignored():
    world = World.healthy(rollout_spec())
    world.metric_fn = lambda name, revision: NO_DATA
    world.desired = "rev-b"
    world.run_until(world.phase_is(Phase.PAUSED))
    world.command = "pause"
    world.tick()
    assert world.status.reason == Reason.INCONCLUSIVE
    assert "only a progressing rollout can be paused" in ignored(world)[0]


@pytest.mark.parametrize(
    "command", ["promote", "promote-full", "abort", "pause", "resume", "retry"]
)
def test_given_healthy_when_any_command_then_ignored_with_event(command):
    world = World.healthy(rollout_spec())
    world.command = command
    world.tick()
    assert world.status.phase is Phase.HEALTHY
    assert len(ignored(world)) == 1
    assert world.status.last_command == command


def test_given_unknown_command_when_seen_then_warning_lists_known_ones():
    world = World.healthy(rollout_spec())
    world.command = "yolo"
    world.tick()
    assert "known: promote, promote-full, abort, retry, pause, resume" in ignored(world)[0]


def test_given_stable_already_written_when_aborted_then_refused():
    world = World.healthy(rollout_spec(canary={"steps": [{"setWeight": 10}]}))
    world.desired = "rev-b"
    world.broken = {"rev-b"}
    from forecastops.kube.names import Role
    from rollout_world import Deployment

    world.candidates[Role.CANARY] = Deployment("rev-b", 1, 1)
    world.run_until(lambda w: w.status.stable_promoted, passes=5)
    world.command = "abort"
    world.tick()
    assert world.status.phase is Phase.PROMOTING
    assert "revert the spec" in ignored(world)[0]


def test_given_spec_changed_after_rollback_when_retry_then_nothing_to_retry():
    world = World.healthy(rollout_spec())
    world.metric_fn = lambda name, revision: 0.9 if revision == "rev-b" else 0.0
    world.desired = "rev-b"
    world.run_until(world.phase_is(Phase.ROLLED_BACK))
    world.desired = "rev-a"
    world.command = "retry"
    world.tick()
    assert world.status.phase is Phase.HEALTHY
    assert "nothing to retry" in ignored(world)[0]


def test_given_command_when_applied_or_ignored_then_outcome_recorded_for_the_cli():
    world = at_step(4)
    world.command = "promote:1"
    world.tick()
    assert world.status.command_outcome.startswith("promote applied: ")
    world.command = "pause:2"
    world.tick()
    assert world.status.command_outcome.startswith("pause ignored: only a progressing rollout")
    world.command = "launch:3"
    world.tick()
    assert world.status.command_outcome.startswith("launch:3 ignored: unknown command")
