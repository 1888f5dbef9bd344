"""The Service in front of every model-server pod of a ForecastModel."""

from __future__ import annotations

from typing import Any

from forecastops.builders.meta import object_meta
from forecastops.kube.names import (
    LABEL_SCRAPE,
    SERVER_PORT,
    SERVER_PORT_NAME,
    Component,
    common_labels,
    metrics_service_name,
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


def build_metrics_service(owner: ObjectRef) -> dict[str, Any]:
    """A headless Service over every model-server pod, for the ServiceMonitor only: the
    traffic Services select by role during a rollout (stable only, or the preview), and
    a pod behind two of them would be scraped twice."""
    service = build_service(owner)
    service["metadata"]["name"] = metrics_service_name(owner.name)
    service["metadata"]["labels"] = {**service["metadata"]["labels"], LABEL_SCRAPE: "true"}
    service["spec"]["clusterIP"] = "None"
    return service
