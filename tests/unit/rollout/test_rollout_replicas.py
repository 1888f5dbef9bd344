"""Replica and weight arithmetic: the worked examples of `rollout.replicas`, as tables."""

from __future__ import annotations

import pytest
from forecastops.rollout.replicas import achieved_weight, canary_replicas, candidate_replicas
from forecastops.rollout.spec import Strategy

REPLICA_RATIO = [
    # stable, weight, canary
    (9, 10, 1),
    (10, 10, 2),
    (3, 25, 1),
    (3, 10, 1),
    (4, 50, 4),
    (1, 90, 9),
    (4, 100, 4),
    (5, 0, 0),
    (0, 10, 1),  # stable at zero still gets a one-pod canary to measure
    (20, 1, 1),
    (99, 1, 1),
    (100, 1, 2),
]


@pytest.mark.parametrize(("stable", "weight", "canary"), REPLICA_RATIO)
def test_given_replica_ratio_when_sized_then_canary_gets_at_least_its_share(stable, weight, canary):
    got = canary_replicas(stable, weight, exact_weights=False)
    assert got == canary
    if 0 < weight < 100 and stable:
        assert got / (stable + got) >= weight / 100, "rounded up: never starved of traffic"


EXACT = [(10, 10, 1), (10, 25, 3), (3, 5, 1), (3, 100, 3), (4, 0, 0), (7, 50, 4)]


@pytest.mark.parametrize(("stable", "weight", "canary"), EXACT)
def test_given_exact_routing_when_sized_then_canary_has_capacity_for_its_share(
    stable, weight, canary
):
    assert canary_replicas(stable, weight, exact_weights=True) == canary


@pytest.mark.parametrize("weight", [0, 10, 50, 100])
def test_given_blue_green_when_sized_then_preview_is_always_at_stable_size(weight):
    assert candidate_replicas(Strategy.BLUE_GREEN, 6, weight, exact_weights=False) == 6


ACHIEVED = [
    # stable ready, canary ready, route, exact, achieved
    (9, 1, 10, False, 10),
    (10, 2, 10, False, 17),
    (10, 0, 10, False, 0),
    (10, 1, 10, True, 10),
    (10, 4, 0, False, 0),
    (0, 3, 100, False, 100),
    (0, 0, 50, False, 0),
    (3, 1, 25, False, 25),
]


@pytest.mark.parametrize(("stable", "canary", "route", "exact", "achieved"), ACHIEVED)
def test_given_ready_pods_and_routes_when_measured_then_actual_share_reported(
    stable, canary, route, exact, achieved
):
    assert achieved_weight(stable, canary, route, exact_weights=exact) == achieved
