"""Object metadata shared by every child: name, namespace, labels, owner reference."""

from __future__ import annotations

from typing import Any

from forecastops.kube.names import API_VERSION, KIND
from forecastops.spec import ObjectRef


def owner_reference(owner: ObjectRef) -> dict[str, Any]:
    """The ForecastModel as the controlling owner: the garbage collector deletes the child
    with it, and foreground deletion waits for the child."""
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": owner.name,
        "uid": owner.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def object_meta(owner: ObjectRef, name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": owner.namespace,
        "labels": labels,
        "ownerReferences": [owner_reference(owner)],
    }
