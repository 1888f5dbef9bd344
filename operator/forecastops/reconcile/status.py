"""The ForecastModel's status, rebuilt from what is observed on every pass (pure).

Ready means the stable Deployment runs the desired revision, with no replica of an older
one left and at least one available (the checks of `kubectl rollout status`, except that
a scale-up is not a rollout), never merely that the objects were created. Conditions have the metav1.Condition shape; a condition's
lastTransitionTime moves only when its status does.

The RFC 7386 merge patch below stays hand-written: json-merge-patch edits its target in place and takes only dicts, not the Mappings kopf hands us.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from forecastops.kube.kinds import SERVICE_MONITOR, VPA, Kind
from forecastops.kube.names import (
    LABEL_REVISION,
    LABEL_VERSION,
    endpoint,
    label_selector,
    selector_labels,
)
from forecastops.reconcile.delivery import Delivery
from forecastops.reconcile.events import Event, normal, warning
from forecastops.rollout.state import ABORTED_PHASES, ROLLOUT_PHASES, Phase
from forecastops.spec import ObjectRef

READY = "Ready"
PROGRESSING = "Progressing"
DEGRADED = "Degraded"
MODEL_VERIFIED = "ModelVerified"
BACKUP_HEALTHY = "BackupHealthy"
OPTIONAL_CHILD_CONDITIONS = {VPA: "VerticalPodAutoscaler", SERVICE_MONITOR: "ServiceMonitor"}
OWN_CONDITIONS = frozenset(
    {READY, PROGRESSING, DEGRADED, MODEL_VERIFIED, BACKUP_HEALTHY}
) | frozenset(OPTIONAL_CHILD_CONDITIONS.values())

OWN_FIELDS = (
    "observedGeneration",
    "phase",
    "currentRevision",
    "stableRevision",
    "version",
    "endpoint",
    "replicas",
    "availableReplicas",
    "selector",
    "conditions",
    "backup",
    "canaryRevision",
    "canaryWeight",
    "currentStepIndex",
    "lastAnalysis",
    "rollout",
)
"""The status fields written on every pass; the rollout fields (canaryRevision,
canaryWeight, currentStepIndex, lastAnalysis, rollout) come from the rollout state
machine (`delivery.Delivery.status_fields`), and are cleared without a rollout strategy."""


class RolloutState(StrEnum):
    MISSING = "Missing"
    PROGRESSING = "Progressing"
    DEADLINE_EXCEEDED = "DeadlineExceeded"
    COMPLETE = "Complete"


@dataclass(frozen=True)
class Rollout:
    """How far the stable Deployment is towards running the desired revision."""

    state: RolloutState
    message: str
    revision: str | None = None
    version: str | None = None
    replicas: int = 0
    available: int = 0


@dataclass(frozen=True)
class Condition:
    type: str
    status: str
    reason: str
    message: str


@dataclass(frozen=True)
class Failure:
    """Why this pass could not do its job: an invalid spec or a refused write."""

    reason: str
    message: str


def observe_rollout(deployment: Mapping[str, Any] | None, revision: str | None) -> Rollout:
    """The rollout of `deployment` towards `revision`, judged as `kubectl rollout status` does."""
    if deployment is None:
        return Rollout(RolloutState.MISSING, "the model-server Deployment does not exist yet")
    labels = deployment["spec"]["template"]["metadata"].get("labels", {})
    status = deployment.get("status", {})
    seen = Rollout(
        RolloutState.PROGRESSING,
        "",
        labels.get(LABEL_REVISION),
        labels.get(LABEL_VERSION),
        status.get("replicas", 0),
        status.get("availableReplicas", 0),
    )
    state, message = _rollout_progress(deployment, revision, seen)
    return Rollout(state, message, seen.revision, seen.version, seen.replicas, seen.available)


def _rollout_progress(
    deployment: Mapping[str, Any], revision: str | None, seen: Rollout
) -> tuple[RolloutState, str]:
    """Like `kubectl rollout status`, except that once no old replica is left, a scale-up
    (pods of the revision not yet available) is not a rollout: one available replica is
    enough for the revision to serve."""
    status = deployment.get("status", {})
    desired = deployment["spec"].get("replicas", 1)
    updated = status.get("updatedReplicas", 0)
    if revision is not None and seen.revision != revision:
        return (
            RolloutState.PROGRESSING,
            f"rolling out revision {revision} (running {seen.revision})",
        )
    if status.get("observedGeneration", 0) < deployment["metadata"].get("generation", 0):
        return RolloutState.PROGRESSING, "waiting for the Deployment controller to see the change"
    if any(
        c.get("type") == "Progressing" and c.get("reason") == "ProgressDeadlineExceeded"
        for c in status.get("conditions", [])
    ):
        return (
            RolloutState.DEADLINE_EXCEEDED,
            f"revision {seen.revision} exceeded its progress deadline",
        )
    if seen.replicas > updated:
        return (
            RolloutState.PROGRESSING,
            f"{updated} of {desired} replicas updated, {seen.replicas - updated} old",
        )
    if seen.available == 0:
        return RolloutState.PROGRESSING, f"0 of {desired} replicas available"
    return (
        RolloutState.COMPLETE,
        f"{seen.available}/{desired} replicas of revision {seen.revision} available",
    )


def build_conditions(
    rollout: Rollout,
    *,
    failure: Failure | None,
    checksum: str | None,
    optional_children: Mapping[Kind, bool],
    delivery: Delivery | None = None,
) -> list[Condition]:
    """The operator's conditions for one pass.

    `optional_children` maps each optional kind the spec asks for to whether the cluster
    serves it (its CRD is installed). While a rollout runs or after it was aborted, its
    state machine says what Progressing and Degraded are (Ready stays about stable).
    """
    ready = failure is None and rollout.state is RolloutState.COMPLETE
    overrides = _rollout_conditions(delivery) if failure is None and delivery else {}
    conditions = [
        _ready(rollout, failure),
        overrides.get(PROGRESSING) or _progressing(rollout, failure),
        overrides.get(DEGRADED) or _degraded(rollout, failure),
        _model_verified(ready, checksum),
    ]
    for kind, served in optional_children.items():
        conditions.append(_optional_child(kind, served))
    return conditions


def _rollout_conditions(delivery: Delivery) -> dict[str, Condition]:
    status = delivery.status
    if delivery.spec is None:
        return {}
    if status.phase in ROLLOUT_PHASES:
        reason = status.reason or "RolloutInProgress"
        return {PROGRESSING: Condition(PROGRESSING, "True", reason, status.message)}
    if status.phase in ABORTED_PHASES:
        return {
            PROGRESSING: Condition(PROGRESSING, "False", status.reason, status.message),
            DEGRADED: Condition(DEGRADED, "True", status.reason, status.message),
        }
    return {}


def _ready(rollout: Rollout, failure: Failure | None) -> Condition:
    if failure is not None:
        serving = f"; revision {rollout.revision} keeps serving" if rollout.revision else ""
        return Condition(READY, "False", failure.reason, failure.message + serving)
    if rollout.state is RolloutState.COMPLETE:
        return Condition(READY, "True", "StableAvailable", rollout.message)
    reasons = {
        RolloutState.MISSING: "Creating",
        RolloutState.PROGRESSING: "RolloutInProgress",
        RolloutState.DEADLINE_EXCEEDED: "ProgressDeadlineExceeded",
    }
    return Condition(READY, "False", reasons[rollout.state], rollout.message)


def _progressing(rollout: Rollout, failure: Failure | None) -> Condition:
    if failure is not None:
        return Condition(PROGRESSING, "False", failure.reason, "nothing is rolled out")
    if rollout.state is RolloutState.COMPLETE:
        return Condition(PROGRESSING, "False", "RolloutComplete", rollout.message)
    if rollout.state is RolloutState.DEADLINE_EXCEEDED:
        return Condition(PROGRESSING, "False", "ProgressDeadlineExceeded", rollout.message)
    return Condition(PROGRESSING, "True", "RolloutInProgress", rollout.message)


def _degraded(rollout: Rollout, failure: Failure | None) -> Condition:
    if failure is not None:
        return Condition(DEGRADED, "True", failure.reason, failure.message)
    if rollout.state is RolloutState.DEADLINE_EXCEEDED:
        return Condition(DEGRADED, "True", "ProgressDeadlineExceeded", rollout.message)
    return Condition(DEGRADED, "False", "AsExpected", "no problem found")


def _model_verified(ready: bool, checksum: str | None) -> Condition:
    """The server verifies the sha256 before it reports ready, so ready pods at the
    revision mean a verified model. Without a sha256 (file:// only) nothing is verified."""
    if checksum is None:
        return Condition(MODEL_VERIFIED, "Unknown", "NoChecksum", "a file:// model has no sha256")
    if not ready:
        return Condition(MODEL_VERIFIED, "Unknown", "AwaitingReadyPods", "no ready pod yet")
    return Condition(
        MODEL_VERIFIED,
        "True",
        "ChecksumMatched",
        f"the servers verified sha256 {checksum[:12]}... before reporting ready",
    )


def _optional_child(kind: Kind, served: bool) -> Condition:
    name = OPTIONAL_CHILD_CONDITIONS[kind]
    if served:
        return Condition(name, "True", "Applied", f"the {kind.kind} is applied")
    return Condition(
        name,
        "False",
        "CRDNotInstalled",
        f"skipped: the cluster does not serve {kind.plural}.{kind.group}",
    )


def build_status(
    ref: ObjectRef,
    *,
    revision: str | None,
    rollout: Rollout,
    conditions: Sequence[Condition],
    previous: Mapping[str, Any],
    now: datetime,
    delivery: Delivery | None = None,
) -> dict[str, Any]:
    """The owned status fields; `revision` is None when the spec is invalid."""
    managed = delivery if delivery is not None and delivery.spec is not None else None
    return {
        **(managed.status_fields() if managed else {}),
        "observedGeneration": ref.generation,
        "phase": str(phase_of(conditions, rollout, delivery)),
        "currentRevision": revision,
        "stableRevision": managed.status.stable_revision if managed else rollout.revision,
        "version": rollout.version,
        "endpoint": endpoint(ref.name, ref.namespace),
        "replicas": rollout.replicas,
        "availableReplicas": rollout.available,
        "selector": label_selector(selector_labels(ref.name)),
        "conditions": merge_conditions(
            previous.get("conditions", []), conditions, generation=ref.generation, now=now
        ),
    }


def phase_of(
    conditions: Sequence[Condition], rollout: Rollout, delivery: Delivery | None = None
) -> Phase:
    """The one place status.phase is decided: a failure of the pass or of stable's own
    rollout is Degraded; otherwise a rollout strategy's state machine says; otherwise
    stable's Deployment does."""
    by_type = {c.type: c for c in conditions}
    if delivery is not None and delivery.spec is not None:
        phase = Phase(delivery.status.phase)
        aborted = delivery.status.phase in ABORTED_PHASES
        return phase if aborted or by_type[DEGRADED].status != "True" else Phase.DEGRADED
    if by_type[DEGRADED].status == "True":
        return Phase.DEGRADED
    if by_type[READY].status == "True":
        return Phase.HEALTHY
    if rollout.state is RolloutState.MISSING:
        return Phase.PENDING
    return Phase.PROGRESSING


def merge_conditions(
    previous: Iterable[Mapping[str, Any]],
    current: Sequence[Condition],
    *,
    generation: int,
    now: datetime,
) -> list[dict[str, Any]]:
    """metav1.Conditions for `current`, keeping each lastTransitionTime unless its status
    changed, and keeping the conditions other parts of the operator own."""
    before = {c["type"]: c for c in previous}
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    merged = []
    for condition in current:
        old = before.get(condition.type)
        unchanged = old is not None and old.get("status") == condition.status
        merged.append(
            {
                "type": condition.type,
                "status": condition.status,
                "observedGeneration": generation,
                "lastTransitionTime": old["lastTransitionTime"] if unchanged else stamp,  # type: ignore[index]
                "reason": condition.reason,
                "message": condition.message,
            }
        )
    produced = {c.type for c in current}
    others = [dict(c) for t, c in before.items() if t not in OWN_CONDITIONS and t not in produced]
    return merged + others


def status_patch(previous: Mapping[str, Any], desired: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON merge patch turning the owned fields of `previous` into `desired` ({} if equal)."""
    return {
        key: merge_patch(previous.get(key), desired.get(key))
        for key in OWN_FIELDS
        if desired.get(key) != previous.get(key)
    }


def merge_patch(previous: Any, desired: Any) -> Any:
    """The RFC 7386 patch from `previous` to `desired`: objects are merged, so a key that
    is gone must be sent as null; anything else is replaced whole.

    >>> merge_patch({"a": 1, "b": {"c": 2, "d": 3}}, {"b": {"c": 2}})
    {'a': None, 'b': {'d': None}}
    """
    if not isinstance(previous, Mapping) or not isinstance(desired, Mapping):
        return desired
    patch = {key: None for key in previous if key not in desired}
    for key, value in desired.items():
        if previous.get(key) != value:
            patch[key] = merge_patch(previous.get(key), value)
    return patch


def transition_events(
    previous: Iterable[Mapping[str, Any]], current: Sequence[Condition]
) -> list[Event]:
    """Events worth a person's attention: becoming Ready, and every new kind of failure."""
    before = {c["type"]: c for c in previous}
    events = []
    for condition in current:
        old = before.get(condition.type, {})
        changed = (old.get("status"), old.get("reason")) != (condition.status, condition.reason)
        if not changed:
            continue
        if condition.type == READY and condition.status == "True":
            events.append(normal("Available", condition.message))
        elif (condition.type, condition.status) in ((DEGRADED, "True"), (BACKUP_HEALTHY, "False")):
            events.append(warning(condition.reason, condition.message))
    return events


def apply_merge_patch(target: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """`target` after the JSON merge patch `patch` (RFC 7386): what the API server stores.

    >>> apply_merge_patch({"a": 1, "b": {"c": 2, "d": 3}}, {"a": None, "b": {"d": 4}})
    {'b': {'c': 2, 'd': 4}}
    """
    result = dict(target)
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, Mapping):
            before = result.get(key)
            result[key] = apply_merge_patch(before if isinstance(before, Mapping) else {}, value)
        else:
            result[key] = value
    return result
