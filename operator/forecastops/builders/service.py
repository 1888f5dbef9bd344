"""The Service in front of every model-server pod of a ForecastModel."""

from __future__ import annotations

from typing import Any

from forecastops.builders.meta import object_meta
from forecastops.names import (
    SERVER_PORT,
    SERVER_PORT_NAME,
    Component,
    common_labels,
    selector_labels,
    service_name,
)
from forecastops.spec import ObjectRef


def build_service(owner: ObjectRef) -> dict[str, Any]:
    """Selects pods by ForecastModel, not by revision or role: during a canary rollout the
    stable and canary pods share the traffic in proportion to their replicas."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": object_meta(
            owner, service_name(owner.name), common_labels(owner.name, Component.SERVER)
        ),
        "spec": {
            "type": "ClusterIP",
            "selector": selector_labels(owner.name),
            "ports": [
                {
                    "name": SERVER_PORT_NAME,
                    "port": SERVER_PORT,
                    "targetPort": SERVER_PORT_NAME,
                    "protocol": "TCP",
                }
            ],
        },
    }
