"""The forecast-operator image, run as a restricted pod runs it, against the local control
plane under the operator's least-privilege identity: it reconciles a ForecastModel."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import httpx
import pytest
import yaml

from devenv import crds
from devenv.harness import OPERATOR_GROUPS, OPERATOR_USER, wait_for
from devenv.paths import REPO, free_port

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(300)]

# a refused request: a status code, not the milliseconds of a log timestamp ("16:08:29,403")
FORBIDDEN = re.compile(r"(?<![\d,.])\b403\b|Forbidden")


@pytest.fixture(scope="module")
def installed(cluster) -> None:
    """The ForecastModel CRD and the operator's RBAC (idempotent, as the operator tests do)."""
    crds.install_operator(cluster)


@pytest.fixture
def operator_kubeconfig(cluster, installed, tmp_path: Path) -> Path:
    """The operator's kubeconfig (a client certificate), readable by uid 10001 only."""
    directory = tmp_path / "kube"
    directory.mkdir()
    path = directory / "config"
    shutil.copy(cluster.kubeconfig_for_user(OPERATOR_USER, OPERATOR_GROUPS), path)
    for item in (directory, path):
        os.chown(item, 10001, 10001)
    directory.chmod(0o500)
    path.chmod(0o400)
    return directory


def test_the_operator_image_reconciles_a_forecast_model(
    operator_image: str, restricted, cluster, namespace: str, operator_kubeconfig: Path
) -> None:
    liveness = free_port()
    container = restricted(
        operator_image,
        "--network",
        "host",
        "-v",
        f"{operator_kubeconfig}:/var/run/forecastops:ro",
        "--env",
        "KUBECONFIG=/var/run/forecastops/config",
        args=["--all-namespaces", "--liveness", f"http://127.0.0.1:{liveness}/healthz"],
    )

    def started() -> bool:
        assert container.running(), f"the operator exited:\n{container.logs()[-4000:]}"
        return "Initial authentication has finished" in container.logs()

    wait_for(started, 60, "the operator in the image to authenticate")

    fm = yaml.safe_load((REPO / "examples" / "minimal.yaml").read_text())
    applied = cluster.kubectl(
        "apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(fm), check=False
    )
    assert applied.returncode == 0, applied.stderr
    name = fm["metadata"]["name"]

    def ready() -> dict | None:
        done = cluster.kubectl(
            "get", "forecastmodels.forecastops.io", name, "-n", namespace, "-o", "json"
        )
        current = json.loads(done.stdout)
        status = current.get("status", {})
        conditions = {c["type"]: c for c in status.get("conditions", [])}
        if status.get("observedGeneration") != current["metadata"]["generation"]:
            return None
        return current if conditions.get("Ready", {}).get("status") == "True" else None

    try:
        wait_for(ready, 120, f"{namespace}/{name} to be Ready")
        deployment = cluster.kubectl("get", "deployment", name, "-n", namespace, "-o", "json")
        spec = json.loads(deployment.stdout)["spec"]["template"]["spec"]
        assert spec["containers"][0]["image"], spec
        assert httpx.get(f"http://127.0.0.1:{liveness}/healthz", timeout=5).status_code == 200
        refused = [line for line in container.logs().splitlines() if FORBIDDEN.search(line)]
        assert not refused, "the operator was refused:\n" + "\n".join(refused[:20])
    finally:
        cluster.kubectl(
            "delete", "forecastmodels.forecastops.io", name, "-n", namespace, "--wait=true",
            "--timeout=60s", check=False,
        )  # fmt: skip
