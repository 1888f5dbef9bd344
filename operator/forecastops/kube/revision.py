"""Revisions and input hashes: short, stable hashes of canonical JSON.

A revision is the hash of everything that shapes the model-server pods (the model and
the server settings, never the replica count), so it names what a Deployment runs and
changes exactly when a rollout is due. An input hash is the hash of one child's whole
manifest; stored on the child, it tells the next reconcile whether to write again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

from forecastops.spec import PodInputs

REVISION_LENGTH = 10
INPUT_HASH_LENGTH = 16


def compute_revision(inputs: PodInputs) -> str:
    """E.g. `5d8f7c2a1b`; equal inputs give equal revisions on every machine and run."""
    return _digest(_canonical(inputs))[:REVISION_LENGTH]


def _canonical(value: Any) -> Any:
    """`dataclasses.asdict`, except that a field marked `ADDED_LATER` is left out while
    unset: revisions computed before it existed stay what they were."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: _canonical(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if not (f.metadata.get("revision") and getattr(value, f.name) is None)
        }
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items()}
    return value


def input_hash(manifest: dict[str, Any]) -> str:
    return _digest(manifest)[:INPUT_HASH_LENGTH]


def _digest(value: Any) -> str:
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()
