"""The Prometheus Operator ServiceMonitor (where its CRD is installed)."""

from __future__ import annotations

from typing import Any

from forecastops.builders.meta import object_meta
from forecastops.kube.names import (
    LABEL_SCRAPE,
    SERVER_PORT_NAME,
    Component,
    common_labels,
    service_name,
)
from forecastops.spec import ObjectRef, ServiceMonitorSpec
from model_server.contract import METRICS_PATH


def build_service_monitor(owner: ObjectRef, monitor: ServiceMonitorSpec) -> dict[str, Any]:
    labels = common_labels(owner.name, Component.SERVER)
    endpoint: dict[str, Any] = {"port": SERVER_PORT_NAME, "path": METRICS_PATH}
    if monitor.interval:
        endpoint["interval"] = monitor.interval
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": object_meta(owner, service_name(owner.name), {**monitor.labels, **labels}),
        "spec": {
            "selector": {"matchLabels": {**labels, LABEL_SCRAPE: "true"}},
            "endpoints": [endpoint],
        },
    }
