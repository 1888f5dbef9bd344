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

from devenv.cluster import ClusterError, LocalCluster
from devenv.node import host_footprint, unavailable_reason
from devenv.require import unavailable


@dataclass
class NodeCluster:
    cluster: LocalCluster
    before: dict[str, list[str]]


@pytest.fixture(scope="module")
def node_cluster() -> Iterator[NodeCluster]:
    probe = LocalCluster(state_dir=Path(tempfile.gettempdir()) / "unused", real_node=True)
    missing = probe.missing_binaries()
    why = unavailable_reason(probe.binaries) or (
        f"binaries missing in {probe.binaries}: {', '.join(missing)}" if missing else None
    )
    if why:
        unavailable("a real kubelet node", why)
    state = Path(tempfile.mkdtemp(prefix="fops-node-"))
    before = host_footprint()
    cluster = LocalCluster(state_dir=state, nodes=1, real_node=True)
    try:
        cluster.up(timeout=240)
    except ClusterError as exc:
        with_logs = _logs(state)
        cluster.down(quiet=True)
        pytest.fail(f"the cluster with a real node did not start: {exc}\n{with_logs}")
    yield NodeCluster(cluster, before)
    try:
        cluster.down(quiet=True)
    finally:
        shutil.rmtree(state, ignore_errors=True)


def _logs(state: Path) -> str:
    out = []
    for log in sorted((state / "run" / "node" / "logs").glob("*.log")):
        lines = log.read_text(errors="replace").splitlines()[-15:]
        out.append(f"--- {log.name}\n" + "\n".join(lines))
    return "\n".join(out)
