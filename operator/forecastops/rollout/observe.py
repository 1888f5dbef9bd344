"""From the objects a reconcile pass gathered to the rollout's `Observed` value (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from forecastops.kube.kinds import DEPLOYMENT, ChildKey
from forecastops.kube.names import LABEL_REVISION, Role, deployment_name
from forecastops.rollout.observed import (
    COMMAND_ANNOTATION,
    DeploymentState,
    Observed,
    parse_command,
)


def observe(
    body: Mapping[str, Any],
    children: Mapping[ChildKey, Mapping[str, Any]],
    *,
    desired_revision: str,
    now: datetime,
) -> Observed:
    """The ForecastModel `body` and its `children` as the state machine sees them."""
    name = body["metadata"]["name"]
    annotations = body["metadata"].get("annotations") or {}

    def deployment(role: Role) -> DeploymentState | None:
        found = children.get(ChildKey(DEPLOYMENT.kind, deployment_name(name, role)))
        return deployment_state(found) if found else None

    return Observed(
        now=now,
        desired_revision=desired_revision,
        stable=deployment(Role.STABLE),
        canary=deployment(Role.CANARY),
        preview=deployment(Role.PREVIEW),
        command=parse_command(annotations.get(COMMAND_ANNOTATION)),
    )


def deployment_state(deployment: Mapping[str, Any]) -> DeploymentState | None:
    """A Deployment being deleted counts as gone.

    >>> deployment_state({
    ...     "metadata": {"generation": 2},
    ...     "spec": {"replicas": 3, "template": {"metadata": {"labels": {LABEL_REVISION: "a41e02"}}}},
    ...     "status": {"observedGeneration": 2, "availableReplicas": 2, "updatedReplicas": 3},
    ... })
    DeploymentState(revision='a41e02', replicas=3, ready=2, updated=3, total=0, current=True)
    """
    meta = deployment.get("metadata", {})
    if meta.get("deletionTimestamp"):
        return None
    spec, status = deployment.get("spec", {}), deployment.get("status") or {}
    labels = spec.get("template", {}).get("metadata", {}).get("labels", {})
    return DeploymentState(
        revision=labels.get(LABEL_REVISION),
        replicas=int(spec.get("replicas", 1)),
        ready=int(status.get("availableReplicas", 0)),
        updated=int(status.get("updatedReplicas", 0)),
        total=int(status.get("replicas", 0)),
        current=int(status.get("observedGeneration", 0)) >= int(meta.get("generation", 0)),
    )
