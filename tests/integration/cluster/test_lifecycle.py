"""`python -m devenv.cluster up/status/down`: idempotent, crash-reporting, leaves nothing behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from devenv.cluster import ClusterError, LocalCluster
from devenv.paths import REPO, bin_dir

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


def cli(*args: str, state: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "devenv.cluster", *args, "--dir", str(state), "--nodes", "1"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
    )


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return (
        Path(f"/proc/{pid}").exists()
        and "Z" not in Path(f"/proc/{pid}/stat").read_text().split(")")[-1][:3]
    )


@pytest.fixture
def binaries_present(cluster):  # the session cluster proves the binaries exist (or fails in CI)
    return cluster.binaries


def test_up_is_idempotent_status_reports_a_crash_and_down_leaves_no_process(
    tmp_path, binaries_present
):
    state = tmp_path / "c"
    try:
        _walk_through_the_lifecycle(state)
    finally:
        cli("down", state=state)


def _walk_through_the_lifecycle(state: Path) -> None:
    first = cli("up", state=state)
    assert first.returncode == 0, first.stderr
    kubeconfig = state / "kubeconfig"
    assert first.stdout.strip() == str(kubeconfig)
    pids = {
        n: p["pid"] for n, p in json.loads(cli("status", state=state).stdout)["processes"].items()
    }
    assert set(pids) == {
        "etcd",
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kwok",
    }

    again = cli("up", state=state)
    assert again.returncode == 0 and "already up" in again.stderr
    status = json.loads(cli("status", state=state).stdout)
    assert {n: p["pid"] for n, p in status["processes"].items()} == pids

    kubectl = [str(bin_dir() / "kubectl"), "--kubeconfig", str(kubeconfig)]
    version = json.loads(subprocess.check_output([*kubectl, "version", "-o", "json"], text=True))
    assert version["serverVersion"]["gitVersion"].startswith("v1.36.")
    nodes = subprocess.check_output([*kubectl, "get", "nodes", "--no-headers"], text=True)
    assert " Ready " in nodes

    os.kill(pids["kube-scheduler"], signal.SIGKILL)
    crashed = cli("status", state=state)
    assert crashed.returncode == 1
    report = json.loads(crashed.stdout)
    assert report["running"] is False
    assert report["processes"]["kube-scheduler"]["alive"] is False
    assert report["processes"]["kube-scheduler"]["log_tail"], "a crash shows the log's tail"

    restarted = cli("up", state=state)  # a half-dead cluster is stopped and started afresh
    assert restarted.returncode == 0, restarted.stderr
    new_pids = {
        n: p["pid"] for n, p in json.loads(cli("status", state=state).stdout)["processes"].items()
    }
    assert not any(alive(p) for p in pids.values())

    down = cli("down", state=state)
    assert down.returncode == 0, down.stderr
    assert not any(alive(p) for p in new_pids.values())
    assert not (state / "run").exists() and not kubeconfig.exists()


def test_a_component_that_fails_to_start_is_reported_with_its_log(tmp_path, binaries_present):
    fake = tmp_path / "bin"
    fake.mkdir()
    for real in binaries_present.iterdir():
        (fake / real.name).symlink_to(real)
    (fake / "kube-apiserver").unlink()
    script = fake / "kube-apiserver"
    script.write_text("#!/bin/sh\necho 'E1125 bad flag: --boom-port is not valid' >&2\nexit 1\n")
    script.chmod(0o755)
    cluster = LocalCluster(state_dir=tmp_path / "c", binaries=fake, nodes=1)
    with pytest.raises(ClusterError) as err:
        cluster.up(timeout=30)
    assert "kube-apiserver exited" in str(err.value)
    assert "--boom-port is not valid" in str(err.value)
    # what did start (etcd) was stopped again
    assert not cluster.status()["processes"] or not cluster.is_running()
