"""The local control plane is a real Kubernetes: controllers, scheduler, admission, RBAC."""

from __future__ import annotations

import json

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from devenv.harness import wait_for

pytestmark = pytest.mark.cluster


RBAC = "rbac.authorization.k8s.io"


def manifest(api_version: str, kind: str, name: str, **body) -> dict:
    """An object to create: its type and name, and the rest of its body (spec, rules ...)."""
    return {"apiVersion": api_version, "kind": kind, "metadata": {"name": name}, **body}


def pod_spec(**container_extra) -> dict:
    return {
        "containers": [{"name": "main", "image": "example.invalid/app:1", **container_extra}],
    }


def test_server_version_is_v1_36(k8s_api):
    info = client.VersionApi(k8s_api).get_code()
    assert info.git_version.startswith("v1.36."), info.git_version
    assert info.major == "1" and info.minor.startswith("36")


def test_nodes_are_ready_kwok_nodes(k8s_api):
    nodes = client.CoreV1Api(k8s_api).list_node().items
    assert nodes, "no nodes"
    for node in nodes:
        assert node.metadata.annotations.get("kwok.x-k8s.io/node") == "fake"
        ready = [c for c in node.status.conditions if c.type == "Ready"]
        assert ready and ready[0].status == "True", node.metadata.name


def test_deployment_becomes_ready_and_is_garbage_collected(k8s_api, namespace):
    apps, core = client.AppsV1Api(k8s_api), client.CoreV1Api(k8s_api)
    labels = {"app": "web"}
    apps.create_namespaced_deployment(
        namespace,
        manifest(
            "apps/v1",
            "Deployment",
            "web",
            spec={
                "replicas": 3,
                "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": labels}, "spec": pod_spec()},
            },
        ),
    )
    dep = wait_for(
        lambda: (
            (d := apps.read_namespaced_deployment("web", namespace)).status.ready_replicas == 3
            and d
        ),
        60,
        "3 ready replicas",
    )
    assert dep.status.available_replicas == 3
    pods = core.list_namespaced_pod(namespace, label_selector="app=web").items
    assert len(pods) == 3
    assert all(p.spec.node_name and p.spec.node_name.startswith("kwok-node-") for p in pods)
    assert all(p.status.phase == "Running" for p in pods)
    rs = apps.list_namespaced_replica_set(namespace, label_selector="app=web").items
    assert len(rs) == 1

    apps.delete_namespaced_deployment("web", namespace, propagation_policy="Background")
    wait_for(
        lambda: not apps.list_namespaced_replica_set(namespace, label_selector="app=web").items,
        60,
        "the ReplicaSet to be garbage-collected",
    )
    wait_for(
        lambda: not core.list_namespaced_pod(namespace, label_selector="app=web").items,
        60,
        "the pods to be garbage-collected",
    )


@pytest.mark.slow
def test_cronjob_creates_a_job_whose_pod_completes(k8s_api, namespace):
    batch = client.BatchV1Api(k8s_api)
    batch.create_namespaced_cron_job(
        namespace,
        manifest(
            "batch/v1",
            "CronJob",
            "tick",
            spec={
                "schedule": "* * * * *",
                "concurrencyPolicy": "Forbid",
                "jobTemplate": {
                    "spec": {
                        "backoffLimit": 0,
                        "template": {
                            "spec": {**pod_spec(), "restartPolicy": "Never"},
                        },
                    }
                },
            },
        ),
    )
    # The schedule has one-minute granularity: the first Job starts within ~60 s.
    job = wait_for(
        lambda: next(iter(batch.list_namespaced_job(namespace).items), None), 90, "a Job"
    )
    owner = job.metadata.owner_references[0]
    assert (owner.kind, owner.name) == ("CronJob", "tick")
    done = wait_for(
        lambda: (
            (j := batch.read_namespaced_job(job.metadata.name, namespace)).status.succeeded and j
        ),
        60,
        "the Job to succeed",
    )
    assert done.status.succeeded == 1
    pods = (
        client.CoreV1Api(k8s_api)
        .list_namespaced_pod(namespace, label_selector=f"job-name={job.metadata.name}")
        .items
    )
    assert pods and pods[0].status.phase == "Succeeded"


@pytest.mark.parametrize(
    "namespace", [{"pod-security.kubernetes.io/enforce": "restricted"}], indirect=True
)
def test_restricted_namespace_rejects_privileged_pod_and_admits_restricted_one(k8s_api, namespace):
    core = client.CoreV1Api(k8s_api)
    privileged = manifest(
        "v1", "Pod", "privileged", spec=pod_spec(securityContext={"privileged": True})
    )
    with pytest.raises(ApiException) as err:
        core.create_namespaced_pod(namespace, privileged)
    assert err.value.status == 403
    assert "violates PodSecurity" in err.value.body and "privileged" in err.value.body

    restricted = manifest(
        "v1",
        "Pod",
        "restricted",
        spec={
            "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
            **pod_spec(
                securityContext={
                    "allowPrivilegeEscalation": False,
                    "capabilities": {"drop": ["ALL"]},
                    "runAsUser": 10001,
                }
            ),
        },
    )
    assert core.create_namespaced_pod(namespace, restricted).metadata.name == "restricted"


def test_rbac_denies_what_was_not_granted(cluster, k8s_api, namespace):
    from kubernetes import config

    rbac = client.RbacAuthorizationV1Api(k8s_api)
    rbac.create_namespaced_role(
        namespace,
        manifest(
            f"{RBAC}/v1",
            "Role",
            "read-configmaps",
            rules=[{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}],
        ),
    )
    rbac.create_namespaced_role_binding(
        namespace,
        manifest(
            f"{RBAC}/v1",
            "RoleBinding",
            "alice-reads",
            roleRef={"apiGroup": RBAC, "kind": "Role", "name": "read-configmaps"},
            subjects=[{"apiGroup": RBAC, "kind": "User", "name": "alice"}],
        ),
    )
    alice = config.new_client_from_config(config_file=str(cluster.kubeconfig_for_user("alice")))
    try:
        core = client.CoreV1Api(alice)

        # granted: reading configmaps in this namespace, once the new binding is in the
        # authorizer's cache (a moment; longer on a busy machine)
        def allowed() -> bool:
            try:
                return core.list_namespaced_config_map(namespace) is not None
            except ApiException as exc:
                if exc.status != 403:
                    raise
                return False

        wait_for(allowed, 30, "the RoleBinding to take effect")
        for call in (
            lambda: core.list_namespaced_secret(namespace),
            lambda: core.create_namespaced_config_map(namespace, {"metadata": {"name": "x"}}),
            lambda: core.list_namespaced_config_map("default"),
            lambda: core.list_node(),
        ):
            with pytest.raises(ApiException) as err:
                call()
            assert err.value.status == 403
            assert json.loads(err.value.body)["message"].count('User "alice" cannot') == 1
    finally:
        alice.close()
