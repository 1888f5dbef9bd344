"""The HorizontalPodAutoscaler (autoscaling/v2) of the stable Deployment."""

from __future__ import annotations

from typing import Any

from forecastops.builders.meta import object_meta
from forecastops.kube.names import Component, Role, common_labels, deployment_name
from forecastops.spec import Autoscaling, ObjectRef


def build_hpa(owner: ObjectRef, autoscaling: Autoscaling) -> dict[str, Any]:
    return build_stable_autoscaler(
        owner,
        api_version="autoscaling/v2",
        kind="HorizontalPodAutoscaler",
        target_field="scaleTargetRef",
        spec={
            "minReplicas": autoscaling.min_replicas,
            "maxReplicas": autoscaling.max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {
                            "type": "Utilization",
                            "averageUtilization": autoscaling.target_cpu_utilization,
                        },
                    },
                }
            ],
        },
    )


def build_stable_autoscaler(
    owner: ObjectRef, *, api_version: str, kind: str, target_field: str, spec: dict[str, Any]
) -> dict[str, Any]:
    """An autoscaler (HPA or VPA) named after the stable Deployment it targets at
    `spec[target_field]`, with the server's labels; `spec` holds the rest of its spec."""
    target = deployment_name(owner.name, Role.STABLE)
    return {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": object_meta(owner, target, common_labels(owner.name, Component.SERVER)),
        "spec": {
            target_field: {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
            **spec,
        },
    }
