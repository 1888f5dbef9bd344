"""The PodDisruptionBudget of the model-server pods."""

from __future__ import annotations

from typing import Any

from forecastops.builders.meta import object_meta
from forecastops.kube.names import Component, common_labels, selector_labels
from forecastops.spec import ObjectRef


def build_pdb(owner: ObjectRef) -> dict[str, Any]:
    """At most one pod evicted at a time; an unhealthy pod never blocks a node drain."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": object_meta(owner, owner.name, common_labels(owner.name, Component.SERVER)),
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": selector_labels(owner.name)},
            "unhealthyPodEvictionPolicy": "AlwaysAllow",
        },
    }
