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
    return _digest(dataclasses.asdict(inputs))[:REVISION_LENGTH]


def input_hash(manifest: dict[str, Any]) -> str:
    return _digest(manifest)[:INPUT_HASH_LENGTH]


def _digest(value: Any) -> str:
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()
