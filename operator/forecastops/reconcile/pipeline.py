"""One reconcile pass of a ForecastModel: gather, decide (pure), act.

1. `gather`: the spec read once (`decide.read_pass`), and the rollout's due metrics
   measured, in a worker thread (the queries block);
2. `decide.decide_pass`: the Plan;
3. `act`: the writes, the traffic split outside the children, the status, the Events.
A refused write is reported in the status by deciding again from the same input.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from forecastops.analysis.factory import ProviderFactory
from forecastops.analysis.measurement import Measurement, measure
from forecastops.kube.api import ApiError, Kube
from forecastops.kube.kinds import BY_KIND_NAME
from forecastops.reconcile.decide import PassInput, Plan, Snapshot, decide_pass, read_pass
from forecastops.reconcile.delivery import Delivery, Preparation
from forecastops.reconcile.status import Failure
from forecastops.rollout.state import ROLLOUT_PHASES, Phase
from forecastops.runtime.config import OperatorSettings
from forecastops.traffic.factory import router_for
from forecastops.traffic.router import RouteError, TrafficRouter

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PassResult:
    plan: Plan
    written: Mapping[str, Any] | None = None
    """The ForecastModel as the API returned it after this pass patched its status."""


async def gather(
    snapshot: Snapshot, settings: OperatorSettings, *, now: datetime, providers: ProviderFactory
) -> PassInput:
    """The pass's input: the spec read once, and the measurements due taken."""
    given = read_pass(snapshot, settings, now=now)
    if given.preparation is None or not given.preparation.due:
        return given
    measurements = await asyncio.to_thread(measure_due, given.preparation, providers)
    return replace(given, measurements=measurements)


def measure_due(preparation: Preparation, factory: ProviderFactory) -> dict[str, Measurement]:
    """Query every due metric; never raises for a bad answer (it is inconclusive)."""
    return {
        metric.name: measure(
            metric, factory.provider_for(metric.source), preparation.variables, preparation.now
        )
        for metric in preparation.due
    }


async def reconcile(
    kube: Kube,
    snapshot: Snapshot,
    settings: OperatorSettings,
    *,
    now: datetime,
    providers: ProviderFactory,
) -> PassResult:
    """Gather, decide and act; the plan carried out. Raises ApiError: transient ones to
    retry, others after reporting them in the status."""
    given = await gather(snapshot, settings, now=now, providers=providers)
    plan = decide_pass(given)
    try:
        return PassResult(plan, await act(kube, plan))
    except ApiError as error:
        if error.namespace_terminating:
            return PassResult(Plan(plan.ref))
        if error.transient:
            raise
        reason = "Forbidden" if error.status == 403 else "ApplyFailed"
        await act(kube, decide_pass(given, Failure(reason, str(error))))
        raise
    except RouteError as error:
        failed = decide_pass(given, Failure("TrafficRoutingFailed", str(error)))
        return PassResult(failed, await act(kube, failed))


async def act(kube: Kube, plan: Plan) -> Mapping[str, Any] | None:
    """Children first, then the traffic split outside them, then status and Events.
    Returns the ForecastModel as written when its status was patched."""
    ref = plan.ref
    written = None
    for write in plan.writes:
        if write.manifest is None:
            await kube.delete(BY_KIND_NAME[write.key.kind], ref.namespace, write.key.name)
        else:
            await kube.apply(dict(write.manifest))
        log.info(
            "%s %s name=%s namespace=%s owner=%s",
            write.verb,
            write.key.kind,
            write.key.name,
            ref.namespace,
            ref.name,
        )
    if plan.delivery is not None:
        await route(router_for(plan.delivery.spec, kube), plan.delivery)
    if plan.status_patch:
        written = await kube.patch_status(ref, dict(plan.status_patch))
        log.info(
            "Updated status namespace=%s name=%s fields=%s",
            ref.namespace,
            ref.name,
            ",".join(sorted(plan.status_patch)),
        )
    for event in plan.events:
        await kube.post_event(ref, event)
    return written


async def route(router: TrafficRouter, delivery: Delivery) -> None:
    """Move traffic outside the children: while a candidate may serve, set the split;
    otherwise take the candidate out of the routes for good."""
    phase = delivery.status.phase
    if phase in ROLLOUT_PHASES or phase is Phase.DEGRADED:
        await router.set_routes(delivery.target, delivery.routes)
    else:
        await router.finalize(delivery.target)
