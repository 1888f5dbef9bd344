"""The HorizontalPodAutoscaler (autoscaling/v2) of the stable Deployment."""

from __future__ import annotations

from typing import Any

from forecastops.builders.meta import object_meta
from forecastops.kube.names import Component, Role, common_labels, deployment_name
from forecastops.spec import Autoscaling, ObjectRef


def build_hpa(owner: ObjectRef, autoscaling: Autoscaling) -> dict[str, Any]:
    target = deployment_name(owner.name, Role.STABLE)
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": object_meta(owner, target, common_labels(owner.name, Component.SERVER)),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
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
    }
