"""A Deployment as the API server returns it, for the tests of code that reads one.

Imported as ``tests.unit.deployment_bodies`` (the repository root is on pytest's
pythonpath), so that tests in any folder share it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def deployment_body(
    revision: str,
    *,
    name: str = "demand",
    version: str | None = None,
    generation: int = 1,
    observed: int | None = None,
    replicas: int = 2,
    updated: int | None = None,
    total: int | None = None,
    available: int | None = None,
    conditions: Sequence[Mapping[str, Any]] = (),
    **meta: Any,
) -> dict[str, Any]:
    """A Deployment of pods at `revision` whose rollout is over unless told otherwise: its
    generation observed, every one of `replicas` updated and available, none left over.
    `meta` goes into its metadata (e.g. deletionTimestamp)."""
    labels = {"forecastops.io/revision": revision}
    if version is not None:
        labels["app.kubernetes.io/version"] = version
    return {
        "kind": "Deployment",
        "metadata": {"name": name, "generation": generation, **meta},
        "spec": {"replicas": replicas, "template": {"metadata": {"labels": labels}}},
        "status": {
            "observedGeneration": generation if observed is None else observed,
            "replicas": replicas if total is None else total,
            "updatedReplicas": replicas if updated is None else updated,
            "availableReplicas": replicas if available is None else available,
            "conditions": list(conditions),
        },
    }
