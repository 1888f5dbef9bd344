"""The operator's rollout counters, exported from decisions, and the phase gauge."""

from __future__ import annotations

from forecastops.rollout.state import Phase
from forecastops.telemetry.prometheus import PrometheusMetrics
from forecastops.telemetry.rollout import RolloutCounters, new_measurements
from prometheus_client import CollectorRegistry
from rollout_world import World, analysis_step_spec, rollout_spec

LABELS = {"namespace": "retail", "name": "demand"}


def sample(registry: CollectorRegistry, metric_name: str, **labels: str) -> float | None:
    return registry.get_sample_value(metric_name, labels)


def drive(world: World, counters: RolloutCounters, until, passes: int = 200) -> None:
    for _ in range(passes):
        before = world.status
        counters.observe("retail", "demand", before, world.tick())
        if until(world):
            return
    raise AssertionError("not reached")


def test_given_failing_rollout_when_observed_then_verdicts_and_one_abort_counted():
    registry = CollectorRegistry()
    counters = RolloutCounters(registry)
    world = World.healthy(rollout_spec())
    world.metric_fn = lambda name, revision: 0.5 if name == "error-rate" else 0.0
    world.desired = "rev-b"
    drive(world, counters, world.phase_is(Phase.ROLLED_BACK))
    runs = "forecastops_analysis_runs_total"
    assert sample(registry, runs, **LABELS, metric="error-rate", verdict="Failed") == 3
    assert sample(registry, runs, **LABELS, metric="latency-p95", verdict="Successful") == 3
    assert sample(registry, "forecastops_rollout_aborted_total", **LABELS) == 1
    for _ in range(5):  # staying rolled back is not another abort
        before = world.status
        counters.observe("retail", "demand", before, world.tick())
    assert sample(registry, "forecastops_rollout_aborted_total", **LABELS) == 1


def test_given_no_abort_yet_when_observed_then_abort_counter_exists_at_zero():
    """So that increase() in the alert rules sees the first abort."""
    registry = CollectorRegistry()
    world = World.healthy(rollout_spec())
    RolloutCounters(registry).observe("retail", "demand", world.status, world.tick())
    assert sample(registry, "forecastops_rollout_aborted_total", **LABELS) == 0


def test_given_bounded_history_when_compared_then_only_new_entries_counted():
    world = World.healthy(analysis_step_spec(), desired="rev-b")
    world.run_until(lambda w: len(w.status.history) >= 2)
    before = world.status
    after = world.tick().status
    assert new_measurements(before, after) == after.history[len(before.history) :]
    assert new_measurements(after, after) == ()


def test_given_status_when_observed_then_phase_gauge_follows_status_phase_including_promoting():
    metrics = PrometheusMetrics()
    metrics.observe_status(("retail", "demand"), {"phase": "Promoting", "canaryWeight": 50})
    value = metrics.registry.get_sample_value
    assert value("forecastops_rollout_phase", {**LABELS, "phase": "Promoting"}) == 1
    assert value("forecastops_rollout_phase", {**LABELS, "phase": "Healthy"}) == 0
    assert value("forecastops_canary_weight", LABELS) == 50
