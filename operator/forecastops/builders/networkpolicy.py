"""The NetworkPolicy of the model-server pods: only the serving (and metrics) port is open."""

from __future__ import annotations

from typing import Any

from forecastops.builders.meta import object_meta
from forecastops.kube.names import SERVER_PORT, Component, common_labels, selector_labels
from forecastops.spec import NetworkPolicySpec, ObjectRef


def build_network_policy(owner: ObjectRef, policy: NetworkPolicySpec) -> dict[str, Any]:
    """Ingress to port 8000 only, which serves predictions and /metrics alike; from the
    peers in `policy.ingress_from`, or from anywhere when there are none."""
    rule: dict[str, Any] = {"ports": [{"protocol": "TCP", "port": SERVER_PORT}]}
    if policy.ingress_from:
        rule["from"] = [dict(peer) for peer in policy.ingress_from]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": object_meta(owner, owner.name, common_labels(owner.name, Component.SERVER)),
        "spec": {
            "podSelector": {"matchLabels": selector_labels(owner.name)},
            "policyTypes": ["Ingress"],
            "ingress": [rule],
        },
    }
