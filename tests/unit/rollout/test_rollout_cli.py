"""`forecastctl` for rollouts: the status view and the commands (no cluster)."""

from __future__ import annotations

import argparse

import pytest
from forecastops.cli.rollout import add_commands, command_token, render_text
from forecastops.rollout.observed import CommandKind, parse_command
from forecastops.rollout.state import Phase, to_dict
from rollout_world import World, rollout_spec


def fm_of(world: World, raw_spec: dict) -> dict:
    return {
        "metadata": {"name": "demand", "namespace": "retail"},
        "spec": {"rollout": raw_spec},
        "status": {"rollout": to_dict(world.status)},
    }


def lines_of(text: str) -> list[str]:
    return [line.rstrip() for line in text.splitlines() if line.strip()]


def test_given_canary_at_analysis_when_viewed_then_steps_progress_and_measurements_shown():
    raw = rollout_spec()
    world = World.healthy(raw)
    world.desired = "rev-b"
    world.run_until(lambda w: w.status.step_index == 2 and len(w.status.history) >= 2)
    text = render_text(fm_of(world, raw), now=world.now)
    lines = lines_of(text)
    assert lines[0].startswith("Rollout:") and "Progressing  (Canary)" in lines[0]
    assert "stable rev-a  →  candidate rev-b" in text
    assert "20% to the candidate (routes set to 10%)" in text
    steps = [line for line in lines if line.lstrip()[:1] in "✔▶·"]
    assert [s.split()[0] for s in steps] == ["✔", "✔", "▶", "·", "·"]
    assert "error-rate 1/3 passed" in steps[2]
    assert "step-3" in text and "Successful" in text


def test_given_rolled_back_when_viewed_then_the_reason_names_metric_value_and_step():
    raw = rollout_spec()
    world = World.healthy(raw)
    world.metric_fn = lambda name, revision: 0.3 if name == "error-rate" else 0.0
    world.desired = "rev-b"
    world.run_until(world.phase_is(Phase.ROLLED_BACK))
    text = render_text(fm_of(world, raw), now=world.now, width=200)
    assert "RolledBack" in text
    assert "(rolled back: rev-b)" in text
    why = next(line for line in text.splitlines() if line.startswith("Why:"))
    assert "AnalysisFailed" in why and "error-rate" in why and "0.3" in why
    assert any(line.lstrip().startswith("✘   3") for line in text.splitlines())
    assert "Failed" in text


def test_given_paused_with_command_when_viewed_then_last_command_and_outcome_shown():
    raw = rollout_spec()
    world = World.healthy(raw)
    world.desired = "rev-b"
    world.run_until(lambda w: w.status.step_index == 1)
    world.command = "pause:abc"
    world.tick()
    text = render_text(fm_of(world, raw), now=world.now, width=200)
    assert "⏸" in text and "UserPaused" in text
    assert "pause:abc: pause applied" in text


def test_given_no_rollout_when_viewed_then_nothing_added():
    assert (
        render_text(
            {"metadata": {"name": "d"}, "spec": {}, "status": {}}, now=World.healthy(None).now
        )
        == ""
    )


def test_given_invalid_rollout_spec_when_viewed_then_said_not_crashed():
    fm = {"metadata": {"name": "d"}, "spec": {"rollout": {"strategy": "Linear"}}, "status": {}}
    assert "invalid spec.rollout" in render_text(fm, now=World.healthy(None).now)


@pytest.mark.parametrize(
    ("argv", "command", "full"),
    [
        (["promote", "demand"], "promote", False),
        (["promote", "demand", "--full"], "promote", True),
        (["abort", "demand", "-n", "retail"], "abort", False),
        (["retry", "demand", "--wait", "0"], "retry", False),
        (["pause", "demand"], "pause", False),
        (["resume", "demand", "--context", "prod"], "resume", False),
    ],
)
def test_given_command_line_when_parsed_then_command_and_options(argv, command, full):
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest="command")

    def cluster_options(p):
        p.add_argument("-n", "--namespace")
        p.add_argument("--kubeconfig")
        p.add_argument("--context")

    add_commands(commands, cluster_options, lambda kubeconfig, context: "default")
    args = parser.parse_args(argv)
    assert (args.command, getattr(args, "full", False), args.name) == (command, full, "demand")
    assert callable(args.run)


@pytest.mark.parametrize("kind", list(CommandKind))
def test_given_token_when_written_then_the_operator_parses_it_back(kind):
    token = command_token(kind)
    parsed = parse_command(token)
    assert parsed.kind is kind and parsed.token == token
    assert command_token(kind) != token, "a fresh nonce each time"
