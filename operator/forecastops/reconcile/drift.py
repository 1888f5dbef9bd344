"""Does a child need writing? (pure)

A child is written when it is missing, when its input hash changed (the operator wants
something else, including fewer fields), or when it no longer holds what the operator
applied (someone edited it by hand). Fields others add (defaults, the HPA's replica
count, a controller's annotations) are not drift.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from forecastops.kube.names import ANNOTATION_INPUT_HASH
from forecastops.kube.revision import input_hash
from forecastops.quantity import same_quantity


def with_input_hash(manifest: dict[str, Any]) -> dict[str, Any]:
    """`manifest` annotated with the hash of itself."""
    meta = manifest["metadata"]
    annotations = {**meta.get("annotations", {}), ANNOTATION_INPUT_HASH: input_hash(manifest)}
    return {**manifest, "metadata": {**meta, "annotations": annotations}}


def needs_apply(desired: Mapping[str, Any], observed: Mapping[str, Any] | None) -> bool:
    return observed is None or not contains(observed, desired)


def contains(observed: Any, desired: Any) -> bool:
    """Whether `observed` holds every field of `desired` with an equal value.

    Lists of named objects (containers, env, ports, volumes) match by name and may hold
    more (server-side apply leaves others' entries alone); other lists are atomic and
    match whole. Quantities match by value ("1Gi" == "1024Mi"): the API server
    normalises them.
    """
    if isinstance(desired, Mapping):
        return isinstance(observed, Mapping) and all(
            key in observed and contains(observed[key], value) for key, value in desired.items()
        )
    if isinstance(desired, list):
        return isinstance(observed, list) and _list_contains(observed, desired)
    return observed == desired or same_quantity(observed, desired)


def _list_contains(observed: list[Any], desired: list[Any]) -> bool:
    if all(isinstance(item, Mapping) and "name" in item for item in desired):
        named = {item.get("name"): item for item in observed if isinstance(item, Mapping)}
        return all(contains(named.get(item["name"]), item) for item in desired)
    return len(observed) == len(desired) and all(
        contains(o, d) for o, d in zip(observed, desired, strict=True)
    )
