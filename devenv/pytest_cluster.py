"""pytest fixtures for the real local control plane.

- `cluster` (session): reuses the cluster of `make cluster-up` (`.cluster/`) when it is
  running, else starts one in a temporary directory and stops it at the end.
- `k8s_api` (session): a kubernetes.client.ApiClient authenticated as admin.
- `namespace` (function): a fresh namespace, deleted afterwards.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devenv.cluster import ClusterError, LocalCluster
from devenv.paths import REPO
from devenv.require import unavailable


def _running_cluster() -> LocalCluster | None:
    """The cluster named by FORECASTOPS_CLUSTER_DIR, else `.cluster/`, if it is running."""
    for directory in filter(None, [os.environ.get("FORECASTOPS_CLUSTER_DIR"), REPO / ".cluster"]):
        candidate = LocalCluster(state_dir=Path(directory))
        if candidate.is_running():
            return candidate
    return None


def started_cluster(state_dir: Path) -> Iterator[LocalCluster]:
    """A control plane of its own in `state_dir`, stopped at the end; skips locally (fails
    in CI) when its binaries are missing. A suite that must see only its own objects
    overrides `cluster` with it."""
    fresh = LocalCluster(state_dir=state_dir)
    missing = fresh.missing_binaries()
    if missing:
        unavailable(
            "the local Kubernetes control plane",
            f"binaries missing in {fresh.binaries}: {', '.join(missing)} (run `make binaries`)",
        )
    try:
        fresh.up()
    except ClusterError as exc:
        pytest.fail(f"the local control plane did not start: {exc}")
    yield fresh
    fresh.down(quiet=True)


def started_node_cluster(state_dir: Path, *, timeout: float = 240) -> Iterator[LocalCluster]:
    """A control plane with one real kubelet node (devenv/node.py) and one kwok node in
    `state_dir`, stopped at the end. Skips locally (fails in CI) where the machine cannot
    run a real node; a start that fails shows the node's logs."""
    from devenv.node import unavailable_reason

    fresh = LocalCluster(state_dir=state_dir, nodes=1, real_node=True)
    missing = fresh.missing_binaries()
    why = unavailable_reason(fresh.binaries) or (
        f"binaries missing in {fresh.binaries}: {', '.join(missing)}" if missing else None
    )
    if why:
        unavailable("a real kubelet node", why)
    try:
        fresh.up(timeout=timeout)
    except ClusterError as exc:
        logs = node_logs(fresh)
        fresh.down(quiet=True)
        pytest.fail(f"the cluster with a real node did not start: {exc}\n{logs}")
    yield fresh
    fresh.down(quiet=True)


def node_logs(cluster: LocalCluster, lines: int = 15) -> str:
    """The last lines of every log of the real node's processes (kubelet, containerd...)."""
    out = []
    for log in sorted((cluster.run_dir / "node" / "logs").glob("*.log")):
        tail = log.read_text(errors="replace").splitlines()[-lines:]
        out.append(f"--- {log.name}\n" + "\n".join(tail))
    return "\n".join(out)


def admin_client(cluster: LocalCluster) -> Iterator[Any]:
    """A kubernetes.client.ApiClient of `cluster`, authenticated as admin."""
    from kubernetes import config

    api_client = config.new_client_from_config(config_file=str(cluster.kubeconfig))
    yield api_client
    api_client.close()


@pytest.fixture(scope="session")
def cluster() -> Iterator[LocalCluster]:
    existing = _running_cluster()
    if existing:
        yield existing
        return
    # Not under pytest's basetemp: another pytest run on the machine may prune it (it
    # keeps three), and the cluster's etcd data would go with it.
    state_dir = Path(tempfile.mkdtemp(prefix="forecastops-cluster-"))
    yield from started_cluster(state_dir)
    shutil.rmtree(state_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def k8s_api(cluster: LocalCluster) -> Iterator[Any]:
    yield from admin_client(cluster)


@pytest.fixture
def namespace(k8s_api, request: pytest.FixtureRequest) -> Iterator[str]:
    from kubernetes import client

    core = client.CoreV1Api(k8s_api)
    stem = request.node.name.lower().replace("_", "-")
    name = "t-" + "".join(c for c in stem if c.isalnum() or c == "-")[:40].strip("-")
    name = f"{name}-{uuid.uuid4().hex[:5]}"
    labels = getattr(request, "param", None) or {}
    core.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=labels))
    )
    yield name
    core.delete_namespace(name, propagation_policy="Background")
