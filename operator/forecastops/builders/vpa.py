"""The VerticalPodAutoscaler of the stable Deployment (where the VPA CRD is installed)."""

from __future__ import annotations

from typing import Any

from forecastops.builders.deployment import CONTAINER
from forecastops.builders.meta import object_meta
from forecastops.kube.names import Component, Role, common_labels, deployment_name
from forecastops.spec import ObjectRef, VpaUpdateMode


def build_vpa(owner: ObjectRef, update_mode: VpaUpdateMode) -> dict[str, Any]:
    """Controls memory only: CPU belongs to the HorizontalPodAutoscaler, and the two must
    not act on the same resource."""
    target = deployment_name(owner.name, Role.STABLE)
    return {
        "apiVersion": "autoscaling.k8s.io/v1",
        "kind": "VerticalPodAutoscaler",
        "metadata": object_meta(owner, target, common_labels(owner.name, Component.SERVER)),
        "spec": {
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
            "updatePolicy": {"updateMode": str(update_mode)},
            "resourcePolicy": {
                "containerPolicies": [
                    {"containerName": CONTAINER, "controlledResources": ["memory"]}
                ]
            },
        },
    }
