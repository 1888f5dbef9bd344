"""Third-party CRDs the operator detects at run time (VPA, Gateway API), cached by
hack/build-binaries.sh from their Go modules, installed into a cluster on demand."""

from __future__ import annotations

import json
import time
from pathlib import Path

from devenv.cluster import LocalCluster
from devenv.harness import wait_for
from devenv.paths import REPO, cache_dir, versions

OPTIONAL = {
    "vpa": ("verticalpodautoscalers.autoscaling.k8s.io",),
    "prometheus-operator": (
        "servicemonitors.monitoring.coreos.com",
        "prometheusrules.monitoring.coreos.com",
    ),
    "gateway-api": (
        "gatewayclasses.gateway.networking.k8s.io",
        "gateways.gateway.networking.k8s.io",
        "httproutes.gateway.networking.k8s.io",
    ),
}


FORECASTMODEL_CRD = "forecastmodels.forecastops.io"


def crd_files(name: str) -> list[Path]:
    v = versions()
    root = cache_dir() / "crds"
    if name == "vpa":
        files = [root / f"vpa-{v['VPA_VERSION']}.yaml"]
    elif name == "prometheus-operator":
        files = [root / f"prometheus-operator-{v['PROMETHEUS_OPERATOR_VERSION']}.yaml"]
    elif name == "gateway-api":
        files = sorted((root / f"gateway-api-{v['GATEWAY_API_VERSION']}").glob("*.yaml"))
    else:
        raise ValueError(f"unknown optional CRD set {name!r}; known: {sorted(OPTIONAL)}")
    missing = [str(f) for f in files if not f.exists()]
    if not files or missing:
        raise FileNotFoundError(f"{name} CRDs not cached ({missing or root}): run `make binaries`")
    return files


def established(cluster: LocalCluster, crd: str, timeout: float = 60) -> None:
    """Wait for a CRD just applied: `kubectl wait` fails at once while it is not yet listed."""

    def done() -> bool:
        args = ("wait", "--for=condition=Established", f"crd/{crd}", "--timeout=10s")
        return cluster.kubectl(*args, check=False).returncode == 0

    wait_for(done, timeout=timeout, what=f"CRD {crd} Established")


def install(cluster: LocalCluster, name: str, timeout: float = 60) -> None:
    """Apply the CRD set and wait until each CRD is Established."""
    for f in crd_files(name):
        cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(f))
    deadline = time.monotonic() + timeout
    for crd in OPTIONAL[name]:
        established(cluster, crd, timeout=max(1.0, deadline - time.monotonic()))


def uninstall(cluster: LocalCluster, name: str) -> None:
    for f in crd_files(name):
        cluster.kubectl("delete", "--ignore-not-found", "--wait=true", "-f", str(f))


def install_operator(cluster: LocalCluster) -> None:
    """What the operator needs before it starts, as the chart installs it: the
    ForecastModel CRD (Established), the `forecastops` namespace, and the operator's
    least-privilege RBAC (deploy/rbac, the chart's single source). Idempotent."""
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(REPO / "crds"))
    established(cluster, FORECASTMODEL_CRD)
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "forecastops"}}
    cluster.kubectl("apply", "-f", "-", input=json.dumps(namespace))
    for file in ("operator-role.yaml", "operator-binding.yaml"):
        cluster.kubectl("apply", "-f", str(REPO / "deploy" / "rbac" / file))
