"""Replica and weight arithmetic: pure, with worked examples.

The rule that shapes everything here: **a rollout never shrinks stable**. Stable keeps
the size its HorizontalPodAutoscaler gives it (the HPA targets only the stable
Deployment), and the candidate is sized on its own, from stable's current size, every
pass, so it follows stable when the autoscaler scales it. A rollback therefore never
leaves stable under-provisioned: it was never scaled down.
"""

from __future__ import annotations

from forecastops.rollout.spec import Strategy


def canary_replicas(stable: int, weight: int, *, exact_weights: bool) -> int:
    """Replicas for a canary that should get `weight` percent of the traffic.

    **Replica ratio** (no mesh; stable and canary pods behind one Service, which spreads
    requests evenly over ready pods): with stable at `s` replicas, the canary needs `c`
    with ``c / (s + c) >= w / 100``, so ``c = ceil(s * w / (100 - w))``. Rounding up
    guarantees the canary at least its share, so its metrics have traffic to measure;
    the share actually achieved is reported (see `achieved_weight`).

    | stable s | weight w | canary c                 | achieved |
    |----------|----------|--------------------------|----------|
    | 9        | 10       | ceil(9·10/90)  = 1       | 10 %     |
    | 10       | 10       | ceil(10·10/90) = 2       | 17 %     |
    | 3        | 25       | ceil(3·25/75)  = 1       | 25 %     |
    | 3        | 10       | ceil(3·10/90)  = 1       | 25 %     |
    | 4        | 50       | ceil(4·50/50)  = 4       | 50 %     |
    | 1        | 90       | ceil(1·90/10)  = 9       | 90 %     |
    | 4        | 100      | 4 (stable's size)        | 100 %: the Service selects only the canary |

    **Exact weights** (Gateway API HTTPRoute): the route carries the split, so the canary
    only needs the capacity for its share: ``c = ceil(s * w / 100)``, at least 1.

    | stable s | weight w | canary c                  |
    |----------|----------|---------------------------|
    | 10       | 10       | ceil(10·10/100) = 1       |
    | 10       | 25       | ceil(10·25/100) = 3       |
    | 3        | 5        | 1 (never below one pod)   |
    | 3        | 100      | 3                         |

    >>> canary_replicas(10, 10, exact_weights=False), canary_replicas(10, 10, exact_weights=True)
    (2, 1)
    >>> canary_replicas(5, 0, exact_weights=False)
    0
    """
    stable = max(stable, 1)
    if weight <= 0:
        return 0
    if weight >= 100:
        return stable
    if exact_weights:
        return max(1, _ceil_div(stable * weight, 100))
    return _ceil_div(stable * weight, 100 - weight)


def candidate_replicas(strategy: Strategy, stable: int, weight: int, *, exact_weights: bool) -> int:
    """The candidate's size: a canary by weight; a blue-green preview always at stable's size.

    >>> candidate_replicas(Strategy.BLUE_GREEN, 6, 0, exact_weights=False)
    6
    """
    if strategy is Strategy.BLUE_GREEN:
        return max(stable, 1)
    return canary_replicas(stable, weight, exact_weights=exact_weights)


def achieved_weight(
    stable_ready: int, canary_ready: int, route_weight: int, *, exact_weights: bool
) -> int:
    """The canary's real share of requests, in percent.

    At 0 and 100 the Service or route selects one side only; exact routes carry their
    weight; otherwise requests spread evenly over the ready pods of both sides.

    | stable ready | canary ready | route | exact | achieved |
    |--------------|--------------|-------|-------|----------|
    | 9            | 1            | 10    | no    | 10       |
    | 10           | 2            | 10    | no    | 17       |
    | 10           | 0            | 10    | no    | 0 (canary not ready yet) |
    | 10           | 1            | 10    | yes   | 10       |
    | 10           | 4            | 0     | no    | 0 (Service selects stable only) |
    | 0            | 3            | 100   | no    | 100      |

    >>> achieved_weight(10, 2, 10, exact_weights=False)
    17
    """
    if route_weight <= 0:
        return 0
    if route_weight >= 100 or exact_weights:
        return min(route_weight, 100)
    total = stable_ready + canary_ready
    return round(100 * canary_ready / total) if total else 0


def _ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)
