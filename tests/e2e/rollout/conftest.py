"""Fixtures of the end-to-end rollout tests (the harness is in devenv/harness.py and
devenv/rollouts.py): a control plane of their own, the CRDs and RBAC, the operator,
model servers."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from devenv import crds
from devenv.cluster import LocalCluster
from devenv.harness import OPERATOR_GROUPS, OPERATOR_USER, Kit
from devenv.pytest_cluster import admin_client, started_cluster
from devenv.rollouts import Operator, Servers


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """A control plane of these tests' own (about 4 s to start): the operator under test
    is the only one that sees their ForecastModels, whatever other suites leave running
    on the shared one (an operator serving every namespace, for one)."""
    yield from started_cluster(tmp_path_factory.mktemp("rollout-cluster"))


@pytest.fixture(scope="session")
def k8s_api(cluster):
    """An admin client of this suite's own control plane. Overridden here as well as
    `cluster`: the root fixture is session-scoped, so whichever suite asked for it first
    would otherwise hand its cluster's client to every other suite."""
    yield from admin_client(cluster)


@pytest.fixture(scope="session")
def installed(cluster) -> None:
    """The ForecastModel CRD, the Gateway API CRDs and the operator's RBAC."""
    crds.install_operator(cluster)
    crds.install(cluster, "gateway-api")


@pytest.fixture
def kit(cluster, installed, namespace: str) -> Kit:
    return Kit(cluster, namespace)


@pytest.fixture
def operator(cluster, installed, namespace, prometheus, tmp_path) -> Iterator[Operator]:
    kubeconfig = tmp_path / "operator.kubeconfig"
    shutil.copy(cluster.kubeconfig_for_user(OPERATOR_USER, OPERATOR_GROUPS), kubeconfig)
    operator = Operator(kubeconfig, namespace, prometheus.url, tmp_path / "operator.log")
    operator.start()
    yield operator
    operator.stop()
    forbidden = [line for line in operator.text().splitlines() if " 403 " in line]
    assert not forbidden, "the operator was refused:\n" + "\n".join(forbidden[:10])


@pytest.fixture
def servers(prometheus, tiny_model, tmp_path) -> Iterator[Servers]:
    servers = Servers(prometheus, tiny_model, tmp_path)
    yield servers
    servers.stop_all()
