"""A local control plane with one real kubelet node (devenv/node.py), for this directory.

Its own cluster in a temporary directory (not the session `cluster`, which has kwok nodes
only), started once per module; the host's footprint of a real node (links, chains,
cgroups, mounts, processes...) is recorded before `up`, to be compared after `down`.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from devenv.cluster import LocalCluster
from devenv.node import host_footprint
from devenv.pytest_cluster import started_node_cluster


@dataclass
class NodeCluster:
    cluster: LocalCluster
    before: dict[str, list[str]]


@pytest.fixture(scope="module")
def node_cluster() -> Iterator[NodeCluster]:
    state = Path(tempfile.mkdtemp(prefix="fops-node-"))
    before = host_footprint()
    try:
        for cluster in started_node_cluster(state):
            yield NodeCluster(cluster, before)
    finally:
        shutil.rmtree(state, ignore_errors=True)
