"""The blue-green state machine in a simulated cluster: preview, analysis, switch, delay."""

from __future__ import annotations

from typing import Any

import pytest
from forecastops.kube.names import Role
from forecastops.rollout.actions import ApplyStable, SetRoutes
from forecastops.rollout.state import Phase, Reason
from rollout_world import ERROR_RATE, NO_DATA, World, never_ready


def blue_green(**options: Any) -> dict[str, Any]:
    return {
        "strategy": "BlueGreen",
        "blueGreen": {"autoPromotion": False, "scaleDownDelaySeconds": 5, **options},
        "analysis": {"interval": "1s", "count": 2, "failureLimit": 1, "metrics": [ERROR_RATE]},
    }


def preview(world: World):
    return world.candidate(Role.PREVIEW)


def test_given_new_revision_when_rollout_starts_then_preview_at_full_size_without_traffic():
    world = World.healthy(blue_green(), stable_size=6)
    world.stable.replicas = world.stable.ready = 6
    world.desired = "rev-b"
    world.tick()
    world.tick()
    assert preview(world).replicas == 6, "the preview is at stable's full size"
    assert world.routes == 0, "the active Service still selects stable"
    assert world.status.phase is Phase.PAUSED
    assert world.status.reason == Reason.AWAITING_PROMOTION


def test_given_auto_promotion_off_when_promoted_then_switch_delay_and_old_revision_goes():
    world = World.healthy(blue_green())
    world.desired = "rev-b"
    world.run_until(world.phase_is(Phase.PAUSED))
    for _ in range(10):  # nobody promotes: it waits
        world.tick()
    assert world.status.phase is Phase.PAUSED and world.routes == 0
    world.command = "promote:1"
    world.run_until(lambda w: w.routes == 100)
    switched_at = world.now
    assert world.stable.revision == "rev-a", "the old revision stays during the delay"
    world.run_until(lambda w: w.stable.revision == "rev-b")
    assert (world.now - switched_at).total_seconds() >= 4.9, "scaleDownDelaySeconds honoured"
    world.run_until(world.phase_is(Phase.HEALTHY))
    assert world.routes == 0 and world.stable.revision == "rev-b"
    assert preview(world) is None
    assert Reason.SWITCHED in world.reasons() and Reason.ROLLOUT_COMPLETED in world.reasons()


def test_given_auto_promotion_on_when_preview_ready_then_switches_by_itself():
    world = World.healthy(blue_green(autoPromotion=True, scaleDownDelaySeconds=0))
    world.desired = "rev-b"
    world.run_until(world.phase_is(Phase.HEALTHY), passes=10)
    assert Reason.SWITCHED in world.reasons()
    assert Reason.AWAITING_PROMOTION not in world.reasons()


def test_given_auto_promotion_seconds_when_nobody_promotes_then_promoted_after_timeout():
    world = World.healthy(blue_green(autoPromotionSeconds=8))
    world.desired = "rev-b"
    world.run_until(lambda w: isinstance(w.status.step_index, int) and w.status.step_index == 1)
    waiting_since = world.now
    world.run_until(lambda w: w.routes == 100, passes=30)
    assert (world.now - waiting_since).total_seconds() >= 7.9


def test_given_pre_promotion_analysis_when_it_passes_then_waits_for_promotion():
    world = World.healthy(blue_green(prePromotionAnalysis={"templates": ["error-rate"]}))
    world.desired = "rev-b"
    world.run_until(world.phase_is(Phase.PAUSED))
    assert world.queries == ["error-rate@rev-b", "error-rate@rev-b"]
    assert world.status.reason == Reason.AWAITING_PROMOTION
    assert world.routes == 0


def test_given_pre_promotion_analysis_when_it_fails_then_preview_removed_active_untouched():
    world = World.healthy(blue_green(prePromotionAnalysis={"templates": ["error-rate"]}))
    world.metrics = {"error-rate": 0.3}
    world.desired = "rev-b"
    world.run_until(world.phase_is(Phase.ROLLED_BACK))
    assert world.routes == 0
    assert preview(world).replicas == 0
    assert "pre-promotion analysis" in world.status.message
    assert all(not d.of_type(ApplyStable) for d in world.decisions)


def test_given_pre_promotion_without_data_when_inconclusive_then_paused_not_switched():
    world = World.healthy(
        blue_green(autoPromotion=True, prePromotionAnalysis={"templates": ["error-rate"]})
    )
    world.metrics = {"error-rate": NO_DATA}
    world.desired = "rev-b"
    world.run_until(world.phase_is(Phase.PAUSED))
    assert world.status.reason == Reason.INCONCLUSIVE
    for _ in range(10):
        world.tick()
    assert world.routes == 0, "no data never promotes, even with autoPromotion"


def test_given_post_promotion_analysis_when_it_fails_then_switches_back_to_stable():
    world = World.healthy(
        blue_green(autoPromotion=True, postPromotionAnalysis={"templates": ["error-rate"]})
    )
    world.metric_fn = lambda name, revision: 0.5 if revision == "rev-b" else 0.0
    generation = world.stable.generation
    world.desired = "rev-b"
    world.run_until(lambda w: w.routes == 100)
    world.run_until(world.phase_is(Phase.ROLLED_BACK))
    assert world.routes == 0, "the active Service selects stable again"
    assert world.stable.revision == "rev-a" and world.stable.generation == generation
    assert world.status.reason == Reason.ANALYSIS_FAILED
    assert "post-promotion analysis" in world.status.message
    assert "error-rate" in world.status.message and "0.5" in world.status.message


def test_given_abort_delay_when_post_promotion_fails_then_preview_kept_until_delay():
    spec = blue_green(autoPromotion=True, postPromotionAnalysis={"templates": ["error-rate"]})
    spec["abortScaleDownDelaySeconds"] = 3
    world = World.healthy(spec)
    world.metrics = {"error-rate": 0.5}
    world.desired = "rev-b"
    world.run_until(world.phase_is(Phase.DEGRADED))
    assert world.routes == 0 and preview(world).replicas == 4
    world.run_until(world.phase_is(Phase.ROLLED_BACK))
    assert preview(world).replicas == 0


def test_given_preview_not_ready_when_promote_full_then_switch_waits_for_preview():
    world = never_ready(blue_green())
    world.command = "promote-full:1"
    decision = world.tick()
    assert decision.status.phase is Phase.PROMOTING
    assert SetRoutes(100) not in decision.actions, "never switch to a preview that is not ready"
    assert world.routes == 0
    world.broken = set()
    world.run_until(world.phase_is(Phase.HEALTHY), passes=10)
    assert world.stable.revision == "rev-b"


def test_given_switched_when_user_aborts_during_scale_down_delay_then_switches_back():
    world = World.healthy(blue_green(autoPromotion=True, scaleDownDelaySeconds=30))
    world.desired = "rev-b"
    world.run_until(lambda w: w.routes == 100)
    world.command = "abort:1"
    world.tick()
    assert world.routes == 0 and world.status.phase is Phase.ROLLED_BACK
    assert world.status.reason == Reason.USER_ABORTED
    assert world.stable.revision == "rev-a"


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({}, ["Preview", "Pause", "Switch", "Pause"]),
        ({"autoPromotion": True, "scaleDownDelaySeconds": 0}, ["Preview", "Switch"]),
        (
            {
                "prePromotionAnalysis": {"templates": ["error-rate"]},
                "postPromotionAnalysis": {"templates": ["error-rate"]},
            },
            ["Preview", "Analysis", "Pause", "Switch", "Analysis", "Pause"],
        ),
    ],
    ids=["manual", "automatic", "with-analyses"],
)
def test_given_blue_green_spec_when_stepped_then_steps_follow_the_spec(options, expected):
    from forecastops.rollout.spec import parse_rollout
    from forecastops.rollout.steps import steps_for

    spec = parse_rollout(blue_green(**options))
    assert [type(step).__name__ for step in steps_for(spec)] == expected
