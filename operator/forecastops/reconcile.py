"""One reconcile pass of a ForecastModel: decide (pure), then act (the API writes).

`decide` turns what was observed into a Plan: which children to write or delete, the
status to have, the Events to report. It validates the spec in full first, so an
invalid spec never leads to a write other than its status. `reconcile` carries out a
plan and reports a refused write in the status.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from forecastops.backup_status import report_backup
from forecastops.children import DesiredChildren, build_children
from forecastops.config import OperatorSettings
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


def decide(
    observed: Observed,
    settings: OperatorSettings,
    *,
    now: datetime,
    failure: Failure | None = None,
) -> Plan:
    """The plan for one pass. `failure` is a write refused in this pass, to be reported."""
    body = observed.body
    ref = ObjectRef.from_body(body)
    if body["metadata"].get("deletionTimestamp"):
        return Plan(ref)  # the garbage collector takes the children
    try:
        fm = parse_forecastmodel(body, settings.server_defaults())
    except InvalidSpec as invalid:
        return _status_plan(observed, ref, now=now, failure=Failure("InvalidSpec", str(invalid)))
    revision = compute_revision(fm.spec.pod)
    desired = build_children(
        fm, revision=revision, capabilities=observed.capabilities, pod_uid=settings.pod_uid
    )
    plan = _status_plan(
        observed,
        ref,
        now=now,
        failure=failure,
        revision=revision,
        optional=desired.optional,
        checksum=fm.spec.pod.model.sha256,
    )
    if failure is not None:
        return plan
    writes = _writes(desired, observed.children)
    child_events = tuple(normal(w.verb, f"{w.verb} {w.key.kind} {w.key.name}") for w in writes)
    return Plan(ref, writes, plan.status_patch, child_events + plan.events)


def _status_plan(
    observed: Observed,
    ref: ObjectRef,
    *,
    now: datetime,
    failure: Failure | None,
    revision: str | None = None,
    optional: Mapping[Kind, bool] | None = None,
    checksum: str | None = None,
) -> Plan:
    """A plan that writes only the status (and its Events)."""
    previous = observed.body.get("status") or {}
    stable = ChildKey(DEPLOYMENT.kind, deployment_name(ref.name, Role.STABLE))
    rollout = observe_rollout(observed.children.get(stable), revision)
    conditions = build_conditions(
        rollout, failure=failure, checksum=checksum, optional_children=optional or {}
    )
    backup = report_backup(
        observed.children.get(ChildKey(CRONJOB.kind, backup_cronjob_name(ref.name))),
        observed.backup_jobs,
        previous.get("backup"),
    )
    conditions = [*conditions, *backup.conditions]
    status = build_status(
        ref, revision=revision, rollout=rollout, conditions=conditions, previous=previous, now=now
    )
    events = transition_events(previous.get("conditions", []), conditions)
    status["backup"] = backup.status
    return Plan(ref, (), status_patch(previous, status), tuple(events))


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
        if key not in desired.manifests and not child["metadata"].get("deletionTimestamp")
    ]
    return tuple(writes)


async def reconcile(
    kube: Kube, observed: Observed, settings: OperatorSettings, *, now: datetime
) -> Plan:
    """Decide and act; the plan carried out. Raises ApiError: transient ones to retry,
    others after reporting them in the status."""
    plan = decide(observed, settings, now=now)
    try:
        await act(kube, plan)
    except ApiError as error:
        if error.namespace_terminating:
            return Plan(plan.ref)
        if error.transient:
            raise
        reason = "Forbidden" if error.status == 403 else "ApplyFailed"
        failed = decide(observed, settings, now=now, failure=Failure(reason, str(error)))
        await act(kube, failed)
        raise
    return plan


async def act(kube: Kube, plan: Plan) -> None:
    ref = plan.ref
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
    if plan.status_patch:
        await kube.patch_status(ref, dict(plan.status_patch))
        log.info(
            "Updated status namespace=%s name=%s fields=%s",
            ref.namespace,
            ref.name,
            ",".join(sorted(plan.status_patch)),
        )
    for event in plan.events:
        await kube.post_event(ref, event)
