"""One reconcile pass decided: what to write, keep or delete, the status and the Events.

Pure: `read_pass` parses and validates the spec and prepares the rollout once; the
pipeline (`reconcile.pipeline`) adds the measurements that are due and hands the
`PassInput` to `decide_pass`, which returns a `Plan`. An invalid spec never leads to a
write other than its status.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from forecastops.analysis.measurement import Measurement
from forecastops.builders.deployment import env_conflicts
from forecastops.kube.kinds import CRONJOB, DEPLOYMENT, Capabilities, ChildKey, Kind
from forecastops.kube.names import Role, backup_cronjob_name, deployment_name
from forecastops.kube.revision import compute_revision
from forecastops.reconcile.backup_status import report_backup
from forecastops.reconcile.children import DesiredChildren, build_children
from forecastops.reconcile.delivery import Delivery, Preparation, decide_delivery, prepare
from forecastops.reconcile.drift import needs_apply
from forecastops.reconcile.events import Event, normal
from forecastops.reconcile.status import (
    Failure,
    build_conditions,
    build_status,
    observe_rollout,
    status_patch,
    transition_events,
)
from forecastops.runtime.config import OperatorSettings
from forecastops.spec import ForecastModel, InvalidSpec, ObjectRef, parse_forecastmodel


@dataclass(frozen=True)
class Snapshot:
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
class PassInput:
    """Everything one pass decides from, read once: the snapshot, the spec parsed and
    validated, the rollout's preparation and the measurements taken for it."""

    snapshot: Snapshot
    ref: ObjectRef
    now: datetime
    pod_uid: int
    fm: ForecastModel | None = None
    """None when the spec is invalid (`invalid` says why) or the resource is being deleted."""
    invalid: str | None = None
    revision: str | None = None
    preparation: Preparation | None = None
    measurements: Mapping[str, Measurement] = field(default_factory=dict)

    @property
    def deleting(self) -> bool:
        return bool(self.snapshot.body["metadata"].get("deletionTimestamp"))


def read_pass(snapshot: Snapshot, settings: OperatorSettings, *, now: datetime) -> PassInput:
    """Parse and validate the spec and prepare its rollout, once per pass (no I/O).
    The measurements the preparation says are due are taken by the pipeline."""
    body = snapshot.body
    ref = ObjectRef.from_body(body)
    given = PassInput(snapshot, ref, now, settings.pod_uid)
    if given.deleting:
        return given
    try:
        fm = read_forecastmodel(body, settings)
    except InvalidSpec as invalid:
        return replace(given, invalid=str(invalid))
    preparation = prepare(body, fm.spec.rollout, now=now)
    return replace(given, fm=fm, revision=compute_revision(fm.spec.pod), preparation=preparation)


def read_forecastmodel(body: Mapping[str, Any], settings: OperatorSettings) -> ForecastModel:
    """The spec parsed and validated (`spec.parse_forecastmodel`), and its extra
    environment checked against what the Deployment builder sets itself: a question only
    the builder can answer (`env_conflicts`), and the spec module sits below it."""
    fm = parse_forecastmodel(body, settings.server_defaults())
    if conflicts := env_conflicts(fm.ref, fm.spec.pod):
        raise InvalidSpec(conflicts)
    return fm


def decide_pass(given: PassInput, failure: Failure | None = None) -> Plan:
    """The plan for one pass. `failure` is a write refused in this pass, to be reported."""
    snapshot, ref, now = given.snapshot, given.ref, given.now
    if given.deleting:
        return Plan(ref)  # the garbage collector takes the children
    if given.fm is None:
        return _status_plan(
            snapshot, ref, now=now, failure=Failure("InvalidSpec", given.invalid or "")
        )
    fm, revision = given.fm, given.revision
    assert revision is not None and given.preparation is not None
    rollout = decide_delivery(
        given.preparation,
        snapshot.body,
        snapshot.children,
        revision=revision,
        measurements=given.measurements,
    )
    desired = build_children(
        fm,
        revision=revision,
        capabilities=snapshot.capabilities,
        pod_uid=given.pod_uid,
        delivery=rollout,
    )
    plan = _status_plan(
        snapshot,
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
    writes = _writes(desired, snapshot.children)
    child_events = tuple(normal(w.verb, f"{w.verb} {w.key.kind} {w.key.name}") for w in writes)
    return Plan(ref, writes, plan.status_patch, child_events + plan.events, rollout, plan.phase)


def _status_plan(
    snapshot: Snapshot,
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
    previous = snapshot.body.get("status") or {}
    stable = ChildKey(DEPLOYMENT.kind, deployment_name(ref.name, Role.STABLE))
    if delivery is not None and delivery.spec is not None:
        revision_of_stable = delivery.stable_target  # during a rollout, stable keeps its own
    else:
        revision_of_stable = revision
    rollout = observe_rollout(snapshot.children.get(stable), revision_of_stable)
    conditions = build_conditions(
        rollout,
        failure=failure,
        checksum=checksum,
        optional_children=optional or {},
        delivery=delivery,
    )
    backup = report_backup(
        snapshot.children.get(ChildKey(CRONJOB.kind, backup_cronjob_name(ref.name))),
        snapshot.backup_jobs,
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
