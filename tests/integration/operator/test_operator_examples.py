"""Every example in examples/ applied to the real control plane.

Given an example, when it is applied, then its children exist as the builders say, the
model-server pods become Ready (kwok), and the ForecastModel reports Ready=True for its
current generation. Invalid examples are refused with the message in their header.
"""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from forecastops.kube.kinds import CHILD_KINDS, OPTIONAL_KINDS, Capabilities
from forecastops.kube.revision import compute_revision
from forecastops.reconcile.children import build_children
from forecastops.reconcile.delivery import decide_delivery, prepare
from forecastops.reconcile.drift import contains
from forecastops.runtime.config import OperatorSettings
from forecastops.spec import parse_forecastmodel

from devenv.paths import REPO

pytestmark = pytest.mark.cluster

EXAMPLES = REPO / "examples"
INVALID = sorted((EXAMPLES / "invalid").glob("*.yaml"))


def desired_children(fm: dict) -> dict[tuple[str, str], dict]:
    """What the builders make of the ForecastModel as stored by the API server (once its
    revision serves: the rollout, if any, is Healthy)."""
    parsed = parse_forecastmodel(fm, OperatorSettings().server_defaults())
    revision = compute_revision(parsed.spec.pod)
    preparation = prepare(fm, parsed.spec.rollout, now=datetime.now(UTC))
    healthy = decide_delivery(preparation, fm, {}, revision=revision, measurements={})
    desired = build_children(
        parsed,
        revision=revision,
        capabilities=Capabilities(frozenset(OPTIONAL_KINDS)),
        pod_uid=OperatorSettings().pod_uid,
        delivery=healthy,
    )
    return {(k.kind, k.name): m for k, m in desired.manifests.items()}


def test_minimal_example_becomes_ready_with_its_children(kit, namespace):
    assert kit.apply(EXAMPLES / "minimal.yaml", namespace).returncode == 0
    fm = kit.wait_ready("store-demand", namespace)

    children = kit.children("store-demand", namespace)
    desired = desired_children(fm)
    assert (
        set(children)
        == set(desired)
        == {
            ("Deployment", "store-demand"),
            ("Service", "store-demand"),
            ("PodDisruptionBudget", "store-demand"),
            ("NetworkPolicy", "store-demand"),
            ("ServiceMonitor", "store-demand"),
            ("Service", "store-demand-metrics"),
        }
    )
    for key, manifest in desired.items():
        assert contains(children[key], manifest), f"{key} differs from what the builder made"

    pods = kit.list("pods", namespace, "app.kubernetes.io/instance=store-demand")
    assert [p["status"]["phase"] for p in pods] == ["Running"]
    status = fm["status"]
    assert status["phase"] == "Healthy"
    assert status["stableRevision"] == status["currentRevision"]
    assert status["endpoint"] == f"http://store-demand.{namespace}.svc:8000"
    assert status["version"] == "v1" and status["availableReplicas"] == 1


def test_kopf_bookkeeping_survives_the_schema_and_no_finalizer_is_added(kit, namespace):
    kit.apply(EXAMPLES / "minimal.yaml", namespace)
    fm = kit.wait_ready("store-demand", namespace)
    annotations = fm["metadata"]["annotations"]
    assert yaml.safe_load(annotations["forecastops.io/last-handled-configuration"])["spec"]
    assert not fm["metadata"].get("finalizers")
    printed = kit.kubectl("get", "fm", "store-demand", "-n", namespace).stdout
    assert re.search(r"store-demand\s+Healthy\s+True\s+v1\s", printed), printed


def test_the_operator_exports_each_models_phase(kit, namespace, operator):
    kit.apply(EXAMPLES / "minimal.yaml", namespace)
    kit.wait_ready("store-demand", namespace)
    series = f'forecastops_rollout_phase{{name="store-demand",namespace="{namespace}",phase="Healthy"}} 1.0'
    kit.wait_for(
        lambda: series in operator.metrics(), timeout=30, what="the Healthy phase exported"
    )
    assert 'forecastops_reconcile_total{result="ok"}' in operator.metrics()


def test_forecastctl_status_shows_phase_revision_and_conditions(kit, cluster, namespace):
    kit.apply(EXAMPLES / "minimal.yaml", namespace)
    fm = kit.wait_ready("store-demand", namespace)
    forecastctl = Path(sys.executable).parent / "forecastctl"
    args = ["status", "store-demand", "-n", namespace, "--kubeconfig", str(cluster.kubeconfig)]
    shown = subprocess.run([str(forecastctl), *args], capture_output=True, text=True, check=True)
    assert f"ForecastModel {namespace}/store-demand" in shown.stdout
    assert "Phase:      Healthy" in shown.stdout
    assert f"Revision:   {fm['status']['currentRevision']}" in shown.stdout
    assert re.search(r"Ready\s+True\s+StableAvailable", shown.stdout), shown.stdout


def test_production_example_gets_every_child_and_three_ready_replicas(kit, namespace):
    assert kit.apply(EXAMPLES / "production.yaml", namespace).returncode == 0
    fm = kit.wait_ready("store-demand", namespace)
    children = kit.children("store-demand", namespace)
    desired = desired_children(fm)
    assert set(children) == set(desired)
    assert {kind for kind, _ in children} == {kind.kind for kind in CHILD_KINDS}
    for key, manifest in desired.items():
        assert contains(children[key], manifest), f"{key} differs from what the builder made"

    # The HPA owns the replica count: it raises the Deployment to minReplicas.
    def three_available():
        status = kit.fm("store-demand", namespace)["status"]
        ready = kit.condition("store-demand", namespace, "Ready").get("status") == "True"
        return ready and status["availableReplicas"] == 3

    kit.wait_for(three_available, timeout=90, what="3 available replicas")
    cronjob = children[("CronJob", "store-demand-backup")]
    assert cronjob["spec"]["schedule"] == "0 2 * * *"
    assert cronjob["spec"]["timeZone"] == "Europe/Berlin"
    conditions = {c["type"]: c for c in kit.fm("store-demand", namespace)["status"]["conditions"]}
    assert conditions["VerticalPodAutoscaler"]["status"] == "True"
    assert conditions["ModelVerified"]["reason"] == "ChecksumMatched"


def _header(path: Path) -> tuple[str, str]:
    text = path.read_text()
    rejected_by = re.search(r"^# rejected-by: (.+)$", text, re.M).group(1)
    return rejected_by, re.search(r"^# error: (.+)$", text, re.M).group(1)


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_example_is_refused_with_its_message(kit, namespace, path: Path):
    rejected_by, message = _header(path)
    name = yaml.safe_load(path.read_text())["metadata"]["name"]
    done = kit.apply(path, namespace)
    if rejected_by == "api-server":
        assert done.returncode != 0
        assert message in done.stderr
        return
    assert done.returncode == 0, done.stderr

    degraded = kit.wait_for(
        lambda: (
            kit.condition(name, namespace, "Degraded").get("status") == "True"
            and kit.condition(name, namespace, "Degraded")
        ),
        what="Degraded=True",
    )
    assert degraded["reason"] == "InvalidSpec"
    assert message in degraded["message"]
    assert kit.fm(name, namespace)["status"]["phase"] == "Degraded"
    assert kit.children(name, namespace) == {}
    warnings = [e for e in kit.events(name, namespace) if e["type"] == "Warning"]
    assert any(e["reason"] == "InvalidSpec" and message in e["message"] for e in warnings)
