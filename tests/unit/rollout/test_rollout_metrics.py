"""The operator's rollout metrics, exported from decisions."""

from __future__ import annotations

from forecastops.rollout.metrics import RolloutMetrics
from forecastops.rollout.state import Phase
from prometheus_client import CollectorRegistry
from rollout_world import World, rollout_spec


def sample(registry: CollectorRegistry, metric_name: str, **labels: str) -> float | None:
    return registry.get_sample_value(metric_name, labels)


def drive(world: World, metrics: RolloutMetrics, until) -> None:
    for _ in range(200):
        before = world.status
        decision = world.tick()
        metrics.observe("retail", "demand", before, decision)
        if until(world):
            return
    raise AssertionError("not reached")


def test_given_failing_rollout_when_observed_then_measurements_phase_weight_and_abort_exported():
    registry = CollectorRegistry()
    metrics = RolloutMetrics(registry)
    world = World.healthy(rollout_spec())
    world.metric_fn = lambda name, revision: 0.5 if name == "error-rate" else 0.0
    world.desired = "rev-b"
    drive(world, metrics, world.phase_is(Phase.ROLLED_BACK))
    labels = {"namespace": "retail", "name": "demand"}
    assert (
        sample(
            registry,
            "forecastops_analysis_runs_total",
            **labels,
            metric="error-rate",
            verdict="Failed",
        )
        == 3
    )
    assert (
        sample(
            registry,
            "forecastops_analysis_runs_total",
            **labels,
            metric="latency-p95",
            verdict="Successful",
        )
        == 3
    )
    assert sample(registry, "forecastops_rollout_phase", **labels, phase="RolledBack") == 1
    assert sample(registry, "forecastops_rollout_phase", **labels, phase="Progressing") == 0
    assert sample(registry, "forecastops_canary_weight", **labels) == 0
    assert (
        sample(
            registry,
            "forecastops_rollout_aborted_total",
            **labels,
        )
        == 1
    )
    for _ in range(5):  # staying rolled back is not another abort
        before = world.status
        metrics.observe("retail", "demand", before, world.tick())
    assert (
        sample(
            registry,
            "forecastops_rollout_aborted_total",
            **labels,
        )
        == 1
    )


def test_given_canary_at_weight_when_observed_then_weight_gauge_reports_achieved_share():
    registry = CollectorRegistry()
    metrics = RolloutMetrics(registry)
    world = World.healthy(rollout_spec())
    world.desired = "rev-b"
    drive(world, metrics, lambda w: w.status.route_weight == 10)
    assert sample(registry, "forecastops_canary_weight", namespace="retail", name="demand") == 20


def test_given_no_abort_yet_when_observed_then_abort_counter_exists_at_zero():
    """So that increase() in the alert rules sees the first abort."""
    registry = CollectorRegistry()
    metrics = RolloutMetrics(registry)
    world = World.healthy(rollout_spec())
    metrics.observe("retail", "demand", world.status, world.tick())
    assert (
        sample(registry, "forecastops_rollout_aborted_total", namespace="retail", name="demand")
        == 0
    )


def test_given_deleted_model_when_forgotten_then_gauges_gone():
    registry = CollectorRegistry()
    metrics = RolloutMetrics(registry)
    world = World.healthy(rollout_spec())
    metrics.observe("retail", "demand", world.status, world.tick())
    metrics.forget("retail", "demand")
    metrics.forget("retail", "demand")  # twice is fine
    assert (
        sample(
            registry,
            "forecastops_rollout_phase",
            namespace="retail",
            name="demand",
            phase="Healthy",
        )
        is None
    )
