"""The VerticalPodAutoscaler of the stable Deployment (where the VPA CRD is installed)."""

from __future__ import annotations

from typing import Any

from forecastops.builders.deployment import CONTAINER
from forecastops.builders.hpa import build_stable_autoscaler
from forecastops.spec import ObjectRef, VpaUpdateMode


def build_vpa(owner: ObjectRef, update_mode: VpaUpdateMode) -> dict[str, Any]:
    """Controls memory only: CPU belongs to the HorizontalPodAutoscaler, and the two must
    not act on the same resource."""
    return build_stable_autoscaler(
        owner,
        api_version="autoscaling.k8s.io/v1",
        kind="VerticalPodAutoscaler",
        target_field="targetRef",
        spec={
            "updatePolicy": {"updateMode": str(update_mode)},
            "resourcePolicy": {
                "containerPolicies": [
                    {"containerName": CONTAINER, "controlledResources": ["memory"]}
                ]
            },
        },
    )
