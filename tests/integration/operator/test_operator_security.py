"""Pod Security "restricted", enforced by the API server, admits every generated pod."""

from __future__ import annotations

import pytest

from devenv.paths import REPO

pytestmark = pytest.mark.cluster

RESTRICTED = {"pod-security.kubernetes.io/enforce": "restricted"}


@pytest.mark.parametrize("namespace", [RESTRICTED], indirect=True)
def test_a_restricted_namespace_admits_the_server_and_backup_pods(kit, namespace):
    kit.apply(REPO / "examples" / "production.yaml", namespace)
    kit.wait_ready("store-demand", namespace)
    server_pods = kit.list("pods", namespace, "app.kubernetes.io/component=model-server")
    assert len(server_pods) >= 1

    kit.kubectl(
        "create", "job", "backup-now", "--from=cronjob/store-demand-backup", "-n", namespace
    )
    backup_pods = kit.wait_for(
        lambda: kit.list("pods", namespace, "job-name=backup-now"), timeout=60, what="a backup pod"
    )
    assert backup_pods[0]["spec"]["containers"][0]["command"][:3] == [
        "forecastctl",
        "backup",
        "backup",
    ]
    refused = [
        e
        for e in kit.list("events", namespace)
        if e["reason"] in ("FailedCreate", "FailedCreatePodSandBox") and "forbidden" in e["message"]
    ]
    assert not refused, [e["message"] for e in refused]


@pytest.mark.parametrize("namespace", [RESTRICTED], indirect=True)
def test_a_pod_that_breaks_restricted_is_refused_there(kit, namespace):
    """The check is real: the same namespace refuses a pod that is not restricted."""
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "privileged"},
        "spec": {
            "containers": [
                {"name": "c", "image": "busybox", "securityContext": {"privileged": True}}
            ]
        },
    }
    done = kit.apply(pod, namespace)
    assert done.returncode != 0 and "violates PodSecurity" in done.stderr
