"""One reconcile pass of a ForecastModel: measure, decide (pure), then act (the API writes).

`decide` turns what was observed into a Plan: which children to write, keep or delete,
the status to have, the Events to report, the traffic split and when to look again. It
validates the spec in full first, so an invalid spec never leads to a write other than
its status. A rollout's analysis is measured before deciding (`delivery.measure_due`),
so that deciding stays pure. `reconcile` carries out a plan and reports a refused write
in the status.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from forecastops.analysis.factory import ProviderFactory
from forecastops.analysis.measurement import Measurement
from forecastops.backup_status import report_backup
from forecastops.children import DesiredChildren, build_children
from forecastops.config import OperatorSettings
from forecastops.delivery import Delivery, measure_due, prepare, route
from forecastops.delivery import decide as decide_delivery
from forecastops.drift import needs_apply
from forecastops.events import Event, normal
from forecastops.kinds import BY_KIND_NAME, CRONJOB, DEPLOYMENT, Capabilities, ChildKey, Kind
from forecastops.kube import ApiError, Kube
from forecastops.names import Role, backup_cronjob_name, deployment_name
from forecastops.revision import compute_revision
from forecastops.spec import InvalidSpec, ObjectRef, parse_forecastmodel
from forecastops.status import (
    Failure,
    build_conditions,
    build_status,
    observe_rollout,
    status_patch,
    transition_events,
)
from forecastops.traffic.factory import router_for
from forecastops.traffic.router import RouteError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Observed:
    """Everything a pass decides from, gathered before deciding."""

    body: Mapping[str, Any]
    """The ForecastModel as last seen."""
    children: Mapping[ChildKey, Mapping[str, Any]]
    """The objects it owns, as last seen."""
    capabilities: Capabilities
    backup_jobs: tuple[Mapping[str, Any], ...] = ()
    """Jobs labelled as its backups; those its backup CronJob controls are reported."""


class Verb(StrEnum):
    CREATED = "Created"
    UPDATED = "Updated"
    DELETED = "Deleted"


@dataclass(frozen=True)
class Write:
    verb: Verb
    key: ChildKey
    manifest: Mapping[str, Any] | None = None
    """What to apply; None for a deletion."""


@dataclass(frozen=True)
class Plan:
    ref: ObjectRef
    writes: tuple[Write, ...] = ()
    status_patch: Mapping[str, Any] = field(default_factory=dict)
    events: tuple[Event, ...] = ()
    delivery: Delivery | None = None
    """The rollout's decision: the traffic split to set, when to look again."""
    phase: str | None = None
    """status.phase after this pass."""


@dataclass(frozen=True)
class Outcome:
    plan: Plan
    written: Mapping[str, Any] | None = None
    """The ForecastModel as the API returned it after this pass patched its status."""


def decide(
    observed: Observed,
    settings: OperatorSettings,
    *,
    now: datetime,
    failure: Failure | None = None,
    measurements: Mapping[str, Measurement] | None = None,
) -> Plan:
    """The plan for one pass. `failure` is a write refused in this pass, to be reported;
    `measurements` are the rollout analysis taken for this pass (see delivery.measure_due)."""
    body = observed.body
    ref = ObjectRef.from_body(body)
    if body["metadata"].get("deletionTimestamp"):
        return Plan(ref)  # the garbage collector takes the children
    try:
        fm = parse_forecastmodel(body, settings.server_defaults())
    except InvalidSpec as invalid:
        return _status_plan(observed, ref, now=now, failure=Failure("InvalidSpec", str(invalid)))
    revision = compute_revision(fm.spec.pod)
    preparation = prepare(body, fm.spec.rollout, now=now)
    rollout = decide_delivery(
        preparation, body, observed.children, revision=revision, measurements=measurements or {}
    )
    desired = build_children(
        fm,
        revision=revision,
        capabilities=observed.capabilities,
        pod_uid=settings.pod_uid,
        delivery=rollout,
    )
    plan = _status_plan(
        observed,
        ref,
        now=now,
        failure=failure,
        revision=revision,
        optional=desired.optional,
        checksum=fm.spec.pod.model.sha256,
        delivery=rollout,
    )
    if failure is not None:
        return plan
    writes = _writes(desired, observed.children)
    child_events = tuple(normal(w.verb, f"{w.verb} {w.key.kind} {w.key.name}") for w in writes)
    return Plan(ref, writes, plan.status_patch, child_events + plan.events, rollout, plan.phase)


def _status_plan(
    observed: Observed,
    ref: ObjectRef,
    *,
    now: datetime,
    failure: Failure | None,
    revision: str | None = None,
    optional: Mapping[Kind, bool] | None = None,
    checksum: str | None = None,
    delivery: Delivery | None = None,
) -> Plan:
    """A plan that writes only the status (and its Events)."""
    previous = observed.body.get("status") or {}
    stable = ChildKey(DEPLOYMENT.kind, deployment_name(ref.name, Role.STABLE))
    if delivery is not None and delivery.spec is not None:
        revision_of_stable = delivery.stable_target  # during a rollout, stable keeps its own
    else:
        revision_of_stable = revision
    rollout = observe_rollout(observed.children.get(stable), revision_of_stable)
    conditions = build_conditions(
        rollout,
        failure=failure,
        checksum=checksum,
        optional_children=optional or {},
        delivery=delivery,
    )
    backup = report_backup(
        observed.children.get(ChildKey(CRONJOB.kind, backup_cronjob_name(ref.name))),
        observed.backup_jobs,
        previous.get("backup"),
    )
    conditions = [*conditions, *backup.conditions]
    status = build_status(
        ref,
        revision=revision,
        rollout=rollout,
        conditions=conditions,
        previous=previous,
        now=now,
        delivery=delivery,
    )
    told = tuple(delivery.events) if delivery else ()
    events = told + tuple(
        e for e in transition_events(previous.get("conditions", []), conditions) if e not in told
    )
    status["backup"] = backup.status
    return Plan(ref, (), status_patch(previous, status), events, phase=status["phase"])


def _writes(
    desired: DesiredChildren, observed: Mapping[ChildKey, Mapping[str, Any]]
) -> tuple[Write, ...]:
    writes = [
        Write(Verb.CREATED if key not in observed else Verb.UPDATED, key, manifest)
        for key, manifest in desired.manifests.items()
        if needs_apply(manifest, observed.get(key))
    ]
    writes += [
        Write(Verb.DELETED, key)
        for key, child in sorted(observed.items())
        if key not in desired.manifests
        and key not in desired.kept
        and not child["metadata"].get("deletionTimestamp")
    ]
    return tuple(writes)


async def reconcile(
    kube: Kube,
    observed: Observed,
    settings: OperatorSettings,
    *,
    now: datetime,
    providers: ProviderFactory,
) -> Outcome:
    """Measure, decide and act; the plan carried out. Raises ApiError: transient ones to
    retry, others after reporting them in the status."""
    measurements = await measure_due(observed.body, providers, now=now)
    plan = decide(observed, settings, now=now, measurements=measurements)
    try:
        return Outcome(plan, await act(kube, plan))
    except ApiError as error:
        if error.namespace_terminating:
            return Outcome(Plan(plan.ref))
        if error.transient:
            raise
        reason = "Forbidden" if error.status == 403 else "ApplyFailed"
        failure = Failure(reason, str(error))
        await act(
            kube, decide(observed, settings, now=now, failure=failure, measurements=measurements)
        )
        raise
    except RouteError as error:
        failure = Failure("TrafficRoutingFailed", str(error))
        failed = decide(observed, settings, now=now, failure=failure, measurements=measurements)
        return Outcome(failed, await act(kube, failed))


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
