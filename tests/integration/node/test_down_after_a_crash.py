"""`down` cleans up after a real node whose containerd and kubelet died with pods running."""

from __future__ import annotations

import os
import signal
import time

import pytest
import yaml

from devenv.images import SERVER_IMAGE
from devenv.node import NODE_SELECTOR, TOLERATION, host_footprint

pytestmark = [pytest.mark.real_node, pytest.mark.cluster, pytest.mark.slow]


def test_down_after_containerd_and_the_kubelet_were_killed_leaves_nothing(node_cluster):
    cluster = node_cluster.cluster
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "sleeper", "namespace": "default"},
        "spec": {
            "nodeSelector": NODE_SELECTOR,
            "tolerations": [TOLERATION],
            "containers": [
                {
                    "name": "sleep",
                    "image": SERVER_IMAGE,
                    "imagePullPolicy": "Never",
                    "command": ["python", "-c", "import time; time.sleep(3600)"],
                }
            ],
        },
    }
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(pod))
    cluster.kubectl("wait", "--for=condition=Ready", "pod/sleeper", "--timeout=120s")
    node = cluster.node()
    procs = {p.name: p.pid for p in node.table.procs()}
    for name in ("kubelet", "containerd"):
        os.kill(procs[name], signal.SIGKILL)
    time.sleep(1)
    assert host_footprint()["netns"], "the pod's network namespace should still be there"

    cluster.down()
    assert host_footprint() == node_cluster.before
