"""The canary state machine, pass by pass, in a simulated cluster (no I/O)."""

from __future__ import annotations

import pytest
from forecastops.kube.names import Role
from forecastops.rollout.actions import ApplyStable, Requeue, ScaleCandidate, SetRoutes
from forecastops.rollout.spec import parse_rollout
from forecastops.rollout.state import Phase, Reason, RolloutStatus
from rollout_world import (
    NO_DATA,
    QUERY_ERROR,
    Deployment,
    World,
    analysis_step_spec,
    rollout_spec,
)


def bad_canary(metric: str, value: float):
    """Metric answers: `value` for rev-b's `metric`, healthy numbers otherwise."""
    return lambda name, revision: value if (name == metric and revision == "rev-b") else 0.001


def rolled_back() -> World:
    """rev-b's canary failed error-rate (0.5) and was rolled back to stable rev-a."""
    world = World.healthy(rollout_spec(), desired="rev-b")
    world.metric_fn = bad_canary("error-rate", 0.5)
    world.run_until(world.phase_is(Phase.ROLLED_BACK))
    return world


BACKGROUND_ANALYSIS = rollout_spec(
    canary={"steps": [{"setWeight": 10}, {"pause": {}}], "analysis": {"templates": ["error-rate"]}}
)
"""A canary paused at weight 10 while error-rate is measured in the background."""


# --- the first revision, and no strategy --------------------------------------------------


def test_given_no_stable_when_reconciled_then_first_revision_is_deployed_directly():
    world = World(parse_rollout(rollout_spec()))
    decision = world.reconcile()
    assert decision.status.phase is Phase.PENDING
    assert decision.status.reason == Reason.FIRST_REVISION
    assert ApplyStable("rev-a") in decision.actions
    assert not decision.of_type(ScaleCandidate)
    world.run_until(world.phase_is(Phase.HEALTHY))
    assert world.stable.revision == "rev-a" and not world.candidates


def test_given_pending_first_revision_when_spec_fixed_then_fix_is_deployed_directly():
    world = World.healthy(rollout_spec())
    world.stable, world.status = None, RolloutStatus()
    world.broken = {"rev-a"}
    world.tick()
    world.desired = "rev-b"
    world.run_until(world.phase_is(Phase.HEALTHY))
    assert world.stable.revision == "rev-b"
    assert not world.candidates, "nothing stable to protect: no canary for a first revision"


def test_given_no_rollout_spec_when_revision_changes_then_plain_rolling_update():
    world = World.healthy(None)
    world.desired = "rev-b"
    decision = world.reconcile()
    assert decision.status.phase is Phase.PROGRESSING
    assert decision.status.reason == Reason.ROLLING_UPDATE
    assert ApplyStable("rev-b") in decision.actions
    world.run_until(world.phase_is(Phase.HEALTHY))
    assert world.stable.revision == "rev-b"


def test_given_status_lost_when_stable_exists_then_it_is_adopted_not_redeployed():
    world = World.healthy(rollout_spec())
    world.status = RolloutStatus()  # e.g. the status subresource was wiped
    world.desired = "rev-b"
    decision = world.reconcile()
    assert decision.status.stable_revision == "rev-a"
    assert decision.status.phase is Phase.PROGRESSING, "a changed spec over a stable is a rollout"
    assert not decision.of_type(ApplyStable)


# --- a healthy canary ----------------------------------------------------------------------


def test_given_healthy_canary_when_it_walks_every_step_then_it_is_promoted():
    world = World.healthy(rollout_spec())
    world.desired = "rev-b"
    seen: list[tuple[Phase, int | None, int]] = []
    for _ in range(100):
        world.tick()
        seen.append((world.status.phase, world.status.step_index, world.status.route_weight))
        if world.status.phase is Phase.PAUSED and world.command is None:
            world.command = "promote:1"
        if world.status.phase is Phase.HEALTHY:
            break
    steps = [s for _, s, _ in seen]
    assert sorted({s for s in steps if s is not None}) == [0, 1, 2, 3, 4, 5]
    assert (Phase.PAUSED, 4, 50) in seen, "the indefinite pause waits at weight 50"
    assert world.stable.revision == "rev-b"
    assert not world.candidates, "one stable Deployment at the new revision remains"
    assert world.routes == 0
    assert world.reasons()[0] == Reason.ROLLOUT_STARTED
    assert world.reasons()[-1] == Reason.ROLLOUT_COMPLETED
    assert world.reasons().count(Reason.METRIC_SUCCESSFUL) == 6
    assert world.status.history, "measurements stay readable after the rollout"


def test_given_setweight_step_when_canary_not_ready_then_weight_waits_for_pods():
    world = World.healthy(rollout_spec())
    world.desired = "rev-b"
    decision = world.reconcile()
    assert decision.status.route_weight == 0
    assert ScaleCandidate(Role.CANARY, 1) in decision.actions
    assert SetRoutes(0) in decision.actions
    assert decision.status.reason == Reason.WAITING_FOR_CANDIDATE
    decision = world.reconcile()  # pods are ready now
    assert decision.status.route_weight == 10
    assert SetRoutes(10) in decision.actions


@pytest.mark.parametrize(
    ("stable", "weight", "canary", "achieved"),
    [(9, 10, 1, 10), (10, 10, 2, 17), (3, 25, 1, 25), (4, 50, 4, 50), (1, 50, 1, 50)],
    ids=lambda v: str(v),
)
def test_given_replica_ratio_when_weight_set_then_canary_sized_and_actual_weight_reported(
    stable, weight, canary, achieved
):
    world = World.healthy(rollout_spec(canary={"steps": [{"setWeight": weight}, {"pause": {}}]}))
    world.stable_size = stable
    world.stable.replicas = world.stable.ready = stable
    world.desired = "rev-b"
    world.run_until(world.phase_is(Phase.PAUSED))
    assert world.candidate().replicas == canary
    assert world.stable.replicas == stable, "the canary never shrinks stable"
    assert world.status.canary_weight == achieved


def test_given_gateway_routing_when_weight_set_then_exact_weight_and_capacity_sized():
    spec = rollout_spec(
        canary={
            "steps": [{"setWeight": 10}, {"pause": {}}],
            "trafficRouting": {"gatewayAPI": {"httpRoute": "demand"}},
        }
    )
    world = World.healthy(spec, stable_size=10)
    world.stable.replicas = world.stable.ready = 10
    world.desired = "rev-b"
    world.run_until(world.phase_is(Phase.PAUSED))
    assert world.candidate().replicas == 1
    assert world.routes == 10
    assert world.status.canary_weight == 10


def test_given_canary_when_hpa_scales_stable_then_canary_follows_and_stable_keeps_its_size():
    """flagger#869: the autoscaler must never starve stable during a canary."""
    world = World.healthy(rollout_spec(canary={"steps": [{"setWeight": 50}, {"pause": {}}]}))
    world.desired = "rev-b"
    world.run_until(world.phase_is(Phase.PAUSED))
    assert (world.stable.replicas, world.candidate().replicas) == (4, 4)
    world.stable_size = 8  # load arrives; the HPA scales stable up
    world.tick()
    world.tick()
    assert world.stable.replicas == 8
    assert world.candidate().replicas == 8, "the canary is sized on its own, from stable"
    assert all(not d.of_type(ApplyStable) for d in world.decisions[1:]), "stable never written"


def test_given_timed_pause_when_time_passes_then_next_step_starts_by_itself():
    world = World.healthy(
        rollout_spec(
            canary={"steps": [{"setWeight": 10}, {"pause": {"duration": "30s"}}, {"pause": {}}]}
        )
    )
    world.desired = "rev-b"
    world.run_until(lambda w: w.status.step_index == 1)
    started = world.now
    decision = world.reconcile()
    assert decision.of_type(Requeue)[0].after_seconds <= 30
    world.run_until(lambda w: w.status.step_index == 2, passes=100)
    assert (world.now - started).total_seconds() >= 29


# --- a failing canary ------------------------------------------------------------------------


def test_given_failing_canary_when_failures_exceed_limit_then_aborted_within_limit_plus_one_intervals():
    world = World.healthy(analysis_step_spec(weight=20), desired="rev-b")
    world.metric_fn = bad_canary("error-rate", 0.34)
    world.run_until(lambda w: w.status.runs)
    analysis_started = world.now
    world.run_until(world.phase_is(Phase.ROLLED_BACK, Phase.DEGRADED))
    interval, failure_limit = 1.0, 2
    assert (world.now - analysis_started).total_seconds() <= (failure_limit + 1) * interval + 0.1
    assert world.routes == 0
    assert world.candidate().replicas == 0
    assert world.status.canary_weight == 0


def test_given_failing_canary_when_aborted_then_stable_deployment_is_not_touched():
    world = World.healthy(rollout_spec())
    world.metric_fn = bad_canary("latency-p95", 0.9)
    generation = world.stable.generation
    world.desired = "rev-b"
    world.run_until(world.phase_is(Phase.ROLLED_BACK))
    assert world.stable.generation == generation
    assert world.stable.revision == "rev-a" and world.stable.replicas == 4
    assert all(not d.of_type(ApplyStable) for d in world.decisions), "no write to stable at all"


def test_given_failing_canary_when_aborted_then_reason_names_metric_and_value():
    """argo-rollouts#404, #2276: the reason for an abort must be visible."""
    world = World.healthy(rollout_spec())
    world.metric_fn = bad_canary("error-rate", 0.34)
    world.desired = "rev-b"
    world.run_until(world.phase_is(Phase.ROLLED_BACK))
    status = world.status
    assert status.reason == Reason.ANALYSIS_FAILED
    for needle in ("error-rate", "0.34", "result > 0.01", "failureLimit 2", "rev-b", "rev-a"):
        assert needle in status.message, needle
    warning = [e for e in world.events if e.reason == Reason.ANALYSIS_FAILED]
    assert warning and warning[0].type == "Warning" and "0.34" in warning[0].message
    last = [e.measurement for e in status.history if e.measurement.metric == "error-rate"][-1]
    assert last.value == pytest.approx(0.34) and last.verdict == "Failed"


def test_given_abort_delay_when_aborted_then_traffic_leaves_at_once_and_pods_later():
    world = World.healthy(rollout_spec(abortScaleDownDelaySeconds=5))
    world.metric_fn = bad_canary("error-rate", 0.5)
    world.desired = "rev-b"
    world.run_until(world.phase_is(Phase.DEGRADED))
    degraded_at = world.now
    assert world.routes == 0, "all traffic returns to stable at once"
    assert world.candidate().replicas == 1, "the canary keeps its pods for the delay"
    world.run_until(world.phase_is(Phase.ROLLED_BACK))
    assert (world.now - degraded_at).total_seconds() >= 4.9
    assert world.candidate().replicas == 0


def test_given_background_analysis_when_metric_fails_during_pause_then_aborted():
    world = World.healthy(BACKGROUND_ANALYSIS, desired="rev-b")
    world.run_until(world.phase_is(Phase.PAUSED))
    world.metric_fn = bad_canary("error-rate", 0.2)
    world.run_until(world.phase_is(Phase.ROLLED_BACK), passes=10)
    assert "background analysis" in world.status.message


def test_given_background_analysis_when_canary_has_no_traffic_yet_then_nothing_is_measured():
    world = World.healthy(BACKGROUND_ANALYSIS, desired="rev-b")
    world.reconcile()  # canary pods not ready: route weight still 0
    assert not world.status.runs
    assert not world.queries


def test_given_canary_never_ready_when_progress_deadline_passes_then_aborted():
    world = World.healthy(rollout_spec(progressDeadlineSeconds=10))
    world.broken = {"rev-b"}
    world.desired = "rev-b"
    world.run_until(world.phase_is(Phase.ROLLED_BACK), passes=50)
    assert world.status.reason == Reason.PROGRESS_DEADLINE
    assert "0/1 canary replica(s)" in world.status.message
    assert world.stable.revision == "rev-a"


# --- inconclusive analysis -------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer", [NO_DATA, QUERY_ERROR, float("nan")], ids=["no-data", "error", "nan"]
)
def test_given_no_data_when_inconclusive_limit_passed_then_paused_never_promoted_nor_rolled_back(
    answer,
):
    """argo-rollouts#1905, #1466: missing data is not a failure."""
    world = World.healthy(rollout_spec())
    world.metric_fn = lambda name, revision: answer
    world.desired = "rev-b"
    world.run_until(world.phase_is(Phase.PAUSED))
    assert world.status.reason == Reason.INCONCLUSIVE
    assert "inconclusiveLimit 3" in world.status.message
    assert "error-rate" in world.status.message
    for _ in range(30):  # left alone, it stays paused: no promotion, no rollback
        world.tick()
    assert world.status.phase is Phase.PAUSED
    assert world.status.aborted_revision is None
    assert world.stable.revision == "rev-a"
    assert world.candidate().replicas == 1 and world.routes == 10


def test_given_every_measurement_errored_when_run_ends_then_it_never_passes():
    """argo-rollouts#4479: a run whose every measurement errored is not a success."""
    spec = rollout_spec(analysis={**rollout_spec()["analysis"], "inconclusiveLimit": 100})
    world = World.healthy(spec)
    world.metric_fn = lambda name, revision: QUERY_ERROR
    world.desired = "rev-b"
    for _ in range(60):
        world.tick()
    assert world.status.step_index == 2, "stuck at the analysis step, never past it"
    assert Reason.ANALYSIS_PASSED not in world.reasons()
    assert world.status.phase is Phase.PROGRESSING


def test_given_inconclusive_pause_when_metric_recovers_and_resumed_then_rollout_continues():
    world = World.healthy(rollout_spec())
    world.metric_fn = lambda name, revision: NO_DATA
    world.desired = "rev-b"
    world.run_until(world.phase_is(Phase.PAUSED))
    world.metric_fn = None  # traffic arrives: healthy numbers
    world.command = "resume:1"
    world.run_until(lambda w: w.status.step_index == 4)
    assert world.status.phase is Phase.PAUSED and world.status.reason == Reason.PAUSE_STEP


def test_given_inconclusive_then_success_when_streak_broken_then_no_pause():
    answers = iter([NO_DATA, NO_DATA, NO_DATA, 0.0, NO_DATA, NO_DATA, NO_DATA] + [0.0] * 50)
    world = World.healthy(analysis_step_spec(), desired="rev-b")
    world.metric_fn = lambda name, revision: next(answers)
    world.run_until(world.phase_is(Phase.PAUSED))
    assert world.status.reason == Reason.PAUSE_STEP, "three in a row never exceeded the limit"


# --- after a rollback -------------------------------------------------------------------------


def test_given_rolled_back_when_gitops_reapplies_same_spec_then_no_new_rollout():
    """argo-rollouts#3578: a re-sync of the bad spec must not start the same rollout again."""
    world = rolled_back()
    for _ in range(20):
        world.tick()
    assert world.status.phase is Phase.ROLLED_BACK
    assert world.reasons().count(Reason.ROLLOUT_STARTED) == 1
    assert world.status.aborted_revision == "rev-b"
    assert world.candidate().replicas == 0
    assert all(not d.of_type(ApplyStable) for d in world.decisions)


def test_given_rolled_back_when_spec_changes_then_new_revision_rolls_out():
    world = rolled_back()
    world.desired = "rev-c"
    decision = world.reconcile()
    assert decision.status.phase is Phase.PROGRESSING
    assert decision.status.candidate_revision == "rev-c"
    assert decision.status.aborted_revision is None


def test_given_rolled_back_when_user_retries_then_same_revision_rolls_out_again():
    world = rolled_back()
    world.metric_fn = None  # fixed outside the spec (e.g. a feature store)
    world.command = "retry:1"
    decision = world.reconcile()
    assert decision.status.phase is Phase.PROGRESSING
    assert decision.status.candidate_revision == "rev-b"
    assert Reason.RETRY in world.reasons()


def test_given_rolled_back_when_spec_reverted_to_stable_then_healthy_and_candidate_removed():
    world = rolled_back()
    world.desired = "rev-a"
    world.tick()
    world.tick()
    assert world.status.phase is Phase.HEALTHY
    assert world.status.aborted_revision is None
    assert not world.candidates


# --- the spec moves during a rollout ----------------------------------------------------------


def test_given_canary_in_progress_when_spec_changes_again_then_restarts_with_new_revision():
    world = World.healthy(rollout_spec())
    world.desired = "rev-b"
    world.run_until(lambda w: w.status.step_index == 2)
    world.desired = "rev-c"
    decision = world.reconcile()
    restarted = [
        e for e in decision.actions if getattr(e, "reason", None) == Reason.ROLLOUT_RESTARTED
    ]
    assert restarted and "replacing candidate rev-b" in restarted[0].message
    assert decision.status.candidate_revision == "rev-c"
    assert decision.status.step_index == 0 and decision.status.route_weight == 0
    assert not decision.status.runs
    world.act(decision)
    assert world.stable.revision == "rev-a"


def test_given_canary_in_progress_when_spec_reverted_then_cancelled_without_rollback():
    world = World.healthy(rollout_spec())
    world.desired = "rev-b"
    world.run_until(lambda w: w.status.step_index == 2)
    world.desired = "rev-a"
    world.tick()
    assert world.status.phase is Phase.HEALTHY
    assert world.status.reason == Reason.ROLLOUT_CANCELLED
    assert world.status.aborted_revision is None
    assert not world.candidates and world.routes == 0


def test_given_promotion_written_to_stable_when_spec_changes_then_new_rollout_over_promoted_stable():
    world = World.healthy(rollout_spec(canary={"steps": [{"setWeight": 10}]}))
    world.desired = "rev-b"
    world.broken = {"rev-b"}  # keep stable mid-update at rev-b
    world.candidates[Role.CANARY] = Deployment("rev-b", 1, 1)
    world.run_until(lambda w: w.status.stable_promoted, passes=5)
    world.broken = set()
    world.desired = "rev-c"
    decision = world.reconcile()
    assert decision.status.stable_revision == "rev-b", "stable's Deployment already runs rev-b"
    assert decision.status.candidate_revision == "rev-c"


# --- kill at any moment ----------------------------------------------------------------------


@pytest.mark.parametrize("crash_pass", range(1, 25))
def test_given_operator_killed_after_status_write_when_restarted_then_same_end_state(crash_pass):
    """A pass that persisted its status but died before acting is finished by the next one."""
    world = World.healthy(rollout_spec())
    world.desired = "rev-b"
    for n in range(1, 200):
        world.tick(act=(n != crash_pass))
        if world.status.phase is Phase.PAUSED and world.status.reason == Reason.PAUSE_STEP:
            world.command = world.command or "promote:1"
        if world.status.phase is Phase.HEALTHY:
            break
    world.tick()  # the restarted operator's next pass
    assert world.status.phase is Phase.HEALTHY
    assert world.stable.revision == "rev-b"
    assert not world.candidates and world.routes == 0
