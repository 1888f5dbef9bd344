"""The HorizontalPodAutoscaler (autoscaling/v2) of the stable Deployment."""

from __future__ import annotations

from typing import Any

from forecastops.builders.meta import object_meta
from forecastops.kube.names import Component, Role, common_labels, deployment_name
from forecastops.spec import Autoscaling, ObjectRef, ScalingBehavior, ScalingRules


def build_hpa(owner: ObjectRef, autoscaling: Autoscaling) -> dict[str, Any]:
    hpa = build_stable_autoscaler(
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
    if autoscaling.behavior:
        hpa["spec"]["behavior"] = build_behavior(autoscaling.behavior)
    return hpa


def build_behavior(behavior: ScalingBehavior) -> dict[str, Any]:
    """``spec.behavior``: only the directions and fields set; the HPA defaults the rest."""
    built = {}
    for key, rules in (("scaleUp", behavior.scale_up), ("scaleDown", behavior.scale_down)):
        if rules is not None:
            built[key] = _rules(rules)
    return built


def _rules(rules: ScalingRules) -> dict[str, Any]:
    built: dict[str, Any] = {}
    if rules.stabilization_window_seconds is not None:
        built["stabilizationWindowSeconds"] = rules.stabilization_window_seconds
    if rules.select_policy is not None:
        built["selectPolicy"] = str(rules.select_policy)
    if rules.policies:
        built["policies"] = [
            {"type": str(p.type), "value": p.value, "periodSeconds": p.period_seconds}
            for p in rules.policies
        ]
    return built


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
