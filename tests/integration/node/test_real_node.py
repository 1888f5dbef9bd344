"""One real kubelet node: restricted pods of our image run, logs/exec, DNS, Services, the
apiserver from a pod, the metrics API, and `down` leaves nothing on the host.

Needs root, containerd, runc and the CNI plugins (hack/install-node-deps.sh), the binaries
of hack/build-binaries.sh and the images in podman's storage (`make images`); where they
are missing, the tests skip with the reason (fail with CI=true).
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid

import pytest
import yaml

from devenv.images import SERVER_IMAGE
from devenv.node import (
    BRIDGE,
    GATEWAY,
    ISOLATE_CHAIN,
    NAME,
    NODE_SELECTOR,
    PULL_PROXY,
    TAINT,
    TOLERATION,
    host_footprint,
)
from model_training.train import TrainResult

pytestmark = [pytest.mark.real_node, pytest.mark.cluster, pytest.mark.slow]

RESTRICTED = {
    "runAsNonRoot": True,
    "runAsUser": 10001,
    "runAsGroup": 10001,
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def wait_until(check, timeout: float, what: str, interval: float = 1.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except Exception as exc:  # report the last error on time-out
            last = exc
        time.sleep(interval)
    raise AssertionError(f"{what} not reached in {timeout:.0f}s (last: {last!r})")


def apply(cluster, *docs: dict) -> None:
    cluster.kubectl("apply", "-f", "-", input="\n---\n".join(yaml.safe_dump(d) for d in docs))


def pod_spec(containers: list[dict], **extra) -> dict:
    return {
        "nodeSelector": NODE_SELECTOR,
        "tolerations": [TOLERATION],
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "automountServiceAccountToken": True,
        "containers": containers,
        **extra,
    }


@pytest.fixture(scope="module")
def workload(node_cluster, tiny_model: TrainResult):
    """A restricted namespace with the model server pod, its Service, and a client pod
    that resolves names, calls the apiserver and the Service, and prints what it saw."""
    cluster = node_cluster.cluster
    ns = f"t-real-node-{uuid.uuid4().hex[:5]}"
    apply(
        cluster,
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": ns,
                "labels": {"pod-security.kubernetes.io/enforce": "restricted"},
            },
        },
    )
    wait_until(
        lambda: cluster.kubectl("-n", ns, "get", "sa", "default", check=False).returncode == 0,
        60,
        "the default ServiceAccount",
    )
    model = tiny_model.model_path.read_bytes()
    cluster.kubectl(
        "-n", ns, "create", "configmap", "model", f"--from-file=model.onnx={tiny_model.model_path}"
    )
    assert len(model) < 900_000
    server = {
        "name": "server",
        "image": SERVER_IMAGE,
        "imagePullPolicy": "Never",
        "args": ["--model-uri", "file:///models/model.onnx", "--host", "0.0.0.0", "--port", "8000"],
        "ports": [{"containerPort": 8000, "name": "http"}],
        "readinessProbe": {
            "httpGet": {"path": "/v2/health/ready", "port": 8000},
            "periodSeconds": 2,
        },
        "resources": {
            "requests": {"cpu": "100m", "memory": "256Mi"},
            "limits": {"cpu": "1", "memory": "1Gi"},
        },
        "securityContext": RESTRICTED,
        "volumeMounts": [
            {"name": "model", "mountPath": "/models", "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    apply(
        cluster,
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "server", "namespace": ns, "labels": {"app": "forecast"}},
            "spec": pod_spec(
                [server],
                volumes=[
                    {"name": "model", "configMap": {"name": "model"}},
                    {"name": "tmp", "emptyDir": {}},
                ],
            ),
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "forecast", "namespace": ns},
            "spec": {"selector": {"app": "forecast"}, "ports": [{"port": 80, "targetPort": 8000}]},
        },
    )
    cluster.kubectl("-n", ns, "wait", "--for=condition=Ready", "pod/server", "--timeout=180s")
    yield cluster, ns
    cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)


CLIENT = r"""
import json, socket, ssl, urllib.request
out = {}
for name in ("kubernetes.default.svc", "forecast", "kube-dns.kube-system.svc.cluster.local"):
    try:
        out["dns:" + name] = sorted({a[4][0] for a in socket.getaddrinfo(name, 443)})
    except OSError as exc:
        out["dns:" + name] = "error: %s" % exc
sa = "/var/run/secrets/kubernetes.io/serviceaccount"
try:
    ctx = ssl.create_default_context(cafile=sa + "/ca.crt")
    token = open(sa + "/token").read()
    req = urllib.request.Request(
        "https://kubernetes.default.svc/api", headers={"Authorization": "Bearer " + token})
    with urllib.request.urlopen(req, timeout=10, context=ctx) as resp:
        out["apiserver"] = [resp.status, json.load(resp).get("kind")]
except Exception as exc:
    out["apiserver"] = "error: %r" % exc
try:
    with urllib.request.urlopen("http://forecast/v2/health/ready", timeout=10) as resp:
        out["service"] = resp.status
except Exception as exc:
    out["service"] = "error: %r" % exc
print("RESULT " + json.dumps(out))
"""


@pytest.fixture(scope="module")
def client_result(workload) -> dict:
    cluster, ns = workload
    client = {
        "name": "client",
        "image": SERVER_IMAGE,
        "imagePullPolicy": "Never",
        "command": ["python", "-c", CLIENT],
        "securityContext": RESTRICTED,
        "resources": {"limits": {"cpu": "500m", "memory": "256Mi"}},
    }
    apply(
        cluster,
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "client", "namespace": ns},
            "spec": pod_spec([client], restartPolicy="Never"),
        },
    )

    def done():
        phase = cluster.kubectl(
            "-n", ns, "get", "pod", "client", "-o", "jsonpath={.status.phase}"
        ).stdout
        return phase if phase in ("Succeeded", "Failed") else None

    wait_until(done, 120, "the client pod to finish")
    logs = cluster.kubectl("-n", ns, "logs", "client").stdout
    line = next(x for x in logs.splitlines() if x.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT "))


def test_the_real_node_is_ready_tainted_and_labelled_beside_the_kwok_nodes(node_cluster):
    cluster = node_cluster.cluster
    node = cluster.api(f"/api/v1/nodes/{NAME}")
    conds = {c["type"]: c["status"] for c in node["status"]["conditions"]}
    assert conds["Ready"] == "True"
    taints = [{k: t.get(k) for k in ("key", "value", "effect")} for t in node["spec"]["taints"]]
    assert TAINT in taints, taints  # (beside it, a node.kubernetes.io/* taint may linger)
    assert node["metadata"]["labels"].items() >= NODE_SELECTOR.items()
    addresses = {a["type"]: a["address"] for a in node["status"]["addresses"]}
    assert addresses["InternalIP"] == GATEWAY
    names = {n["metadata"]["name"] for n in cluster.api("/api/v1/nodes")["items"]}
    assert names == {NAME, "kwok-node-0"}


def test_a_restricted_server_pod_runs_on_the_real_node_with_logs_and_exec(workload):
    cluster, ns = workload
    pod = json.loads(cluster.kubectl("-n", ns, "get", "pod", "server", "-o", "json").stdout)
    assert pod["spec"]["nodeName"] == NAME
    assert pod["status"]["podIP"].startswith("10.250.0.")
    logs = cluster.kubectl("-n", ns, "logs", "server").stdout
    assert logs.strip(), "kubectl logs returned nothing"
    exec_ = cluster.kubectl("-n", ns, "exec", "server", "--", "id", "-u", check=False)
    assert exec_.returncode == 0, exec_.stderr
    assert exec_.stdout.strip() == "10001"
    # the read-only root and the limits were applied for real (cgroup v1 hierarchies)
    ro = cluster.kubectl("-n", ns, "exec", "server", "--", "touch", "/x", check=False)
    assert ro.returncode != 0 and "Read-only" in ro.stderr + ro.stdout
    limits = cluster.kubectl(
        "-n",
        ns,
        "exec",
        "server",
        "--",
        "cat",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
        "/sys/fs/cgroup/cpu/cpu.cfs_quota_us",
    ).stdout.split()
    assert limits == [str(1024**3), "100000"], limits


def test_a_pod_resolves_service_names_and_reaches_the_apiserver(client_result):
    assert client_result["dns:kubernetes.default.svc"] == ["10.96.0.1"], client_result
    assert client_result["dns:kube-dns.kube-system.svc.cluster.local"] == ["10.96.0.10"]
    assert client_result["apiserver"] == [200, "APIVersions"], client_result


def test_a_service_routes_to_the_server_pod_from_another_pod(client_result):
    assert isinstance(client_result["dns:forecast"], list), client_result
    assert client_result["dns:forecast"][0].startswith("10.96."), client_result
    assert client_result["service"] == 200, client_result


def test_kubectl_top_node_answers_for_the_real_node(node_cluster):
    cluster = node_cluster.cluster

    def top():
        res = cluster.kubectl("top", "node", NAME, "--no-headers", check=False)
        return res.stdout if res.returncode == 0 and NAME in res.stdout else None

    out = wait_until(top, 120, "kubectl top node", interval=3)
    cpu, mem = out.split()[1], out.split()[3]
    assert cpu.endswith("m") and mem.endswith("Mi"), out


def test_pod_traffic_cannot_leave_the_bridge(node_cluster):
    """Checked on the rules, not by sending anything out: the isolation chain is the first
    thing forwarded packets meet, and nothing masquerades pod traffic but kube-proxy's
    Service rules (onto the bridge)."""
    for tool in ("iptables", "ip6tables"):
        forward = subprocess.run(
            [tool, "-w", "-t", "mangle", "-S", "FORWARD"], capture_output=True, text=True
        ).stdout.splitlines()
        assert forward[1] == f"-A FORWARD -j {ISOLATE_CHAIN}", forward
        chain = subprocess.run(
            [tool, "-w", "-t", "mangle", "-S", ISOLATE_CHAIN], capture_output=True, text=True
        ).stdout.splitlines()
        assert chain[1:] == [
            f"-A {ISOLATE_CHAIN} -i {BRIDGE} -o {BRIDGE} -j RETURN",
            f"-A {ISOLATE_CHAIN} -i {BRIDGE} -j DROP",
            f"-A {ISOLATE_CHAIN} -o {BRIDGE} -j DROP",
        ]
    nat = subprocess.run(["iptables-save", "-t", "nat"], capture_output=True, text=True).stdout
    masq = [r for r in nat.splitlines() if "MASQUERADE" in r]
    assert masq and all(r.startswith("-A KUBE-POSTROUTING") for r in masq), masq


def test_an_image_that_is_not_imported_is_never_pulled_from_outside(workload):
    """containerd's registry requests all go to a closed port on loopback."""
    cluster, ns = workload
    image = "docker.io/library/forecastops-absent:never"
    container = {"name": "absent", "image": image, "imagePullPolicy": "Always"}
    container["securityContext"] = RESTRICTED
    apply(
        cluster,
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "absent", "namespace": ns},
            "spec": pod_spec([container], restartPolicy="Never"),
        },
    )

    def pull_failed():
        events = cluster.kubectl(
            "-n",
            ns,
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=absent",
            "-o",
            "jsonpath={.items[*].message}",
        ).stdout
        return events if "Failed to pull" in events else None

    events = wait_until(pull_failed, 60, "the pull to fail")
    assert PULL_PROXY.removeprefix("http://") in events, events


def test_cluster_down_leaves_nothing_on_the_host(node_cluster):
    # last in this module: the fixture's own down afterwards finds nothing to do
    node_cluster.cluster.down()
    after = host_footprint()
    assert after == node_cluster.before
