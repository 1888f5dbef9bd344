"""The operator on the real control plane: its CRDs, its least-privilege identity, the
operator itself as a subprocess, and helpers to read the cluster and wait for it.

The operator runs as `system:serviceaccount:forecastops:forecastops-operator`, bound to
deploy/rbac/operator-role.yaml and nothing else; after every test its log is checked for
a 403.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from devenv import crds
from devenv.harness import OPERATOR_GROUPS, OPERATOR_USER, Kit
from devenv.paths import REPO, free_port
from devenv.require import unavailable
from devenv.rollouts import Operator

RESYNC_SECONDS = 5
PROMETHEUS_OPERATOR = "github.com/prometheus-operator/prometheus-operator@v0.85.0"
SERVICEMONITOR_CRD = "example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml"
FORBIDDEN = re.compile(r"(?<![\d,.])\b403\b|Forbidden")


class OperatorProcess(Operator):
    """`forecast-operator` under test (devenv's Operator), with its metrics on loopback."""

    def __init__(self, kubeconfig: Path, log: Path) -> None:
        self.metrics_port = free_port()
        super().__init__(
            kubeconfig,
            namespace="",
            prometheus_url="",
            log=log,
            args=(f"--metrics-port={self.metrics_port}", "--metrics-address=127.0.0.1"),
            resync_seconds=RESYNC_SECONDS,
        )

    def metrics(self) -> str:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.read().decode()

    def mark(self) -> int:
        return len(self.text())

    def since(self, mark: int) -> str:
        return self.text()[mark:]

    def assert_alive(self) -> None:
        assert self.process and self.process.poll() is None, (
            f"operator exited:\n{self.text()[-3000:]}"
        )


@pytest.fixture(scope="session")
def kit(cluster) -> Kit:
    return Kit(cluster)


@pytest.fixture(scope="session")
def installed(cluster, kit: Kit) -> None:
    """The ForecastModel CRD, the optional CRDs the operator detects, and its RBAC."""
    crds.install_operator(cluster)
    crds.install(cluster, "vpa")
    kit.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(_servicemonitor_crd()))
    crds.established(cluster, "servicemonitors.monitoring.coreos.com")


@pytest.fixture(scope="session")
def operator(cluster, installed) -> Iterator[OperatorProcess]:
    """The operator, under its least-privilege identity, for the whole session.

    Its files live outside pytest's temporary directories, which concurrent pytest runs
    on the same machine prune.
    """
    workdir = Path(tempfile.mkdtemp(prefix="forecastops-operator-"))
    # KUBECONFIG is a colon-separated list: give the user's kubeconfig a plain name.
    kubeconfig = workdir / "operator.kubeconfig"
    shutil.copy(cluster.kubeconfig_for_user(OPERATOR_USER, OPERATOR_GROUPS), kubeconfig)
    process = OperatorProcess(kubeconfig, workdir / "operator.log")
    process.start()
    yield process
    process.stop()
    shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(autouse=True)
def no_forbidden(operator: OperatorProcess) -> Iterator[None]:
    """Fail a test during which the operator met a 403 or died."""
    mark = operator.mark()
    yield
    log = operator.since(mark)
    # a status code, not the milliseconds of a log timestamp ("16:08:29,403")
    forbidden = [line for line in log.splitlines() if FORBIDDEN.search(line)]
    assert not forbidden, "the operator was refused:\n" + "\n".join(forbidden[:20])
    operator.assert_alive()


def _servicemonitor_crd() -> Path:
    """The Prometheus Operator's ServiceMonitor CRD, from its Go module (cached by Go)."""
    go = shutil.which("go")
    if go is None:
        unavailable("the ServiceMonitor CRD", "`go` is not installed to fetch its module")
    env = {**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=mod"}
    done = subprocess.run(
        [go, "mod", "download", "-json", PROMETHEUS_OPERATOR],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=600,
    )
    if done.returncode:
        unavailable("the ServiceMonitor CRD", f"go mod download failed: {done.stdout}{done.stderr}")
    return Path(json.loads(done.stdout)["Dir"]) / SERVICEMONITOR_CRD
