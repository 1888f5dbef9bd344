"""Progressive delivery inside one reconcile pass, decided (pure; no I/O here):

1. `prepare(body, spec, now)`: the rollout status from `status.rollout`, the metrics due
   and the query variables; the pipeline measures the due metrics;
2. `decide_delivery(preparation, body, children, revision=..., measurements=...)`: the
   Delivery, a frozen value holding the state machine's Decision and what it means for
   the children (which Deployments to write, keep or delete; which Services); the
   pipeline then moves the split outside the children (`pipeline.route`).

A Deployment no action mentions is *kept*: neither written nor deleted. That is how
stable stays untouched during a rollout (its generation does not move) and how an
aborted candidate keeps its pods for the abort delay.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from forecastops.analysis.measurement import Measurement
from forecastops.analysis.spec import MetricSpec
from forecastops.kube.kinds import DEPLOYMENT, ChildKey
from forecastops.kube.names import Role, deployment_name
from forecastops.reconcile.events import Event
from forecastops.rollout.actions import (
    ApplyStable,
    Decision,
    DeleteCandidate,
    Emit,
    Requeue,
    ScaleCandidate,
)
from forecastops.rollout.decide import decide_rollout
from forecastops.rollout.observe import observe
from forecastops.rollout.runs import due_metrics, template_variables
from forecastops.rollout.spec import RolloutSpec, Strategy
from forecastops.rollout.state import (
    Phase,
    RolloutStatus,
    from_dict,
    summary_fields,
    to_dict,
)
from forecastops.spec import ObjectRef
from forecastops.traffic.factory import router_type
from forecastops.traffic.router import Routes, RouteTarget


@dataclass(frozen=True)
class Preparation:
    """What is known before measuring: the spec, the remembered status, the due metrics."""

    ref: ObjectRef
    spec: RolloutSpec | None
    status: RolloutStatus
    now: datetime
    due: tuple[MetricSpec, ...]
    variables: dict[str, str]


def prepare(body: Mapping[str, Any], spec: RolloutSpec | None, *, now: datetime) -> Preparation:
    ref = ObjectRef.from_body(body)
    status = from_dict((body.get("status") or {}).get("rollout"))
    if spec is None:
        return Preparation(ref, None, status, now, (), {})
    due = tuple(spec.analysis.metric(name) for name in due_metrics(status, now))
    variables = template_variables(ref.name, ref.namespace, status, spec.analysis)
    return Preparation(ref, spec, status, now, due, variables)


class Keep(Enum):
    """A Deployment to leave exactly as it is."""

    KEEP = "keep"


KEEP = Keep.KEEP


@dataclass(frozen=True)
class Delivery:
    spec: RolloutSpec | None
    before: RolloutStatus
    decision: Decision
    target: RouteTarget

    @property
    def status(self) -> RolloutStatus:
        return self.decision.status

    @property
    def routes(self) -> Routes:
        return Routes.to_canary(self.status.route_weight)

    @property
    def stable_revision(self) -> str | None:
        """The revision to write to the stable Deployment, or None to keep it as it is."""
        applies = self.decision.of_type(ApplyStable)
        return applies[-1].revision if applies else None

    def candidate_replicas(self, role: Role) -> int | Keep | None:
        """Replicas to write for `role`'s Deployment; None: delete it; KEEP: leave it."""
        for action in reversed(self.decision.actions):
            match action:
                case ScaleCandidate(role=r, replicas=replicas) if r is role:
                    return replicas
                case DeleteCandidate(role=r) if r is role:
                    return None
        return KEEP

    def kept(self) -> frozenset[ChildKey]:
        """Deployments to neither write nor delete in this pass."""
        name = self.target.owner.name
        keys = set()
        if self.stable_revision is None:
            keys.add(ChildKey(DEPLOYMENT.kind, deployment_name(name, Role.STABLE)))
        for role in (Role.CANARY, Role.PREVIEW):
            if self.candidate_replicas(role) is KEEP:
                keys.add(ChildKey(DEPLOYMENT.kind, deployment_name(name, role)))
        return frozenset(keys)

    def services(self) -> list[dict[str, Any]]:
        return router_type(self.spec).services(self.target, self.routes)

    @property
    def events(self) -> list[Event]:
        return [Event(e.type.value, e.reason, e.message) for e in self.decision.of_type(Emit)]

    @property
    def requeue_after(self) -> float | None:
        requeues = self.decision.of_type(Requeue)
        return min(r.after_seconds for r in requeues) if requeues else None

    def status_fields(self) -> dict[str, Any]:
        """`status.rollout` and the top-level rollout fields the CRD shows."""
        return {**summary_fields(self.status), "rollout": to_dict(self.status)}

    @property
    def stable_target(self) -> str | None:
        """The revision the stable Deployment should run now (being written when promoting)."""
        status = self.status
        if status.phase is Phase.PROMOTING and status.stable_promoted:
            return status.candidate_revision
        return status.stable_revision


def decide_delivery(
    preparation: Preparation,
    body: Mapping[str, Any],
    children: Mapping[ChildKey, Mapping[str, Any]],
    *,
    revision: str,
    measurements: Mapping[str, Measurement],
) -> Delivery:
    """The state machine's decision for this pass, and the children it implies (pure)."""
    spec = preparation.spec
    observed = observe(body, children, desired_revision=revision, now=preparation.now)
    decision = decide_rollout(spec, preparation.status, observed, measurements)
    candidate = Role.PREVIEW if spec and spec.strategy is Strategy.BLUE_GREEN else Role.CANARY
    http_route = spec.canary.http_route if spec and spec.canary else None
    target = RouteTarget(preparation.ref, candidate, http_route)
    return Delivery(spec, preparation.status, decision, target)
