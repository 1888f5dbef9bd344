"""Steering a rollout from the command line: `forecastctl` and `kubectl forecast`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from devenv.harness import forecastmodel, revision_of
from devenv.rollouts import METRICS, kwok_spec

pytestmark = [pytest.mark.cluster, pytest.mark.services, pytest.mark.slow]

NAME = "demand"
BIN = Path(sys.executable).parent
ROLLOUT = {
    "strategy": "Canary",
    "canary": {
        "steps": [
            {"setWeight": 50},
            {"pause": {}},
            {"analysis": {"templates": ["error-rate"]}},
            {"pause": {"duration": "30s"}},
        ]
    },
    "analysis": {"interval": "1s", "count": 2, "metrics": METRICS},
}


def run(cluster, kit, *argv: str, kubectl: bool = False) -> subprocess.CompletedProcess[str]:
    """`forecastctl ARGV` or `kubectl forecast ARGV`, as a user would type it."""
    options = ["-n", kit.namespace, "--kubeconfig", str(cluster.kubeconfig)]
    if kubectl:
        command = [str(cluster.binary("kubectl")), "forecast", *argv, *options]
    else:
        command = [str(BIN / "forecastctl"), *argv, *options]
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)


def phase(kit) -> tuple[str, str]:
    rollout = kit.rollout(NAME)
    return rollout.get("phase", ""), rollout.get("reason", "")


def test_forecastctl_and_kubectl_forecast_steer_a_rollout(cluster, kit, operator, servers):
    v1, v2 = (
        forecastmodel(NAME, kwok_spec(v, rollout=ROLLOUT, salt=kit.namespace)) for v in ("v1", "v2")
    )
    stable, candidate = revision_of(v1, kit.namespace), revision_of(v2, kit.namespace)
    servers.start(stable, model_name=NAME)
    servers.start(candidate, model_name=NAME)
    servers.wait_scraped(candidate)
    kit.apply(v1, check=True)
    kit.wait_rollout(NAME, lambda r: r.get("phase") == "Healthy", timeout=60, what="v1")

    kit.apply(v2, check=True)
    kit.wait_rollout(NAME, lambda r: r.get("reason") == "PauseStep", timeout=30, what="pause")
    shown = run(cluster, kit, "status", NAME, kubectl=True)
    assert shown.returncode == 0, shown.stderr
    assert "Paused" in shown.stdout and "pause until promoted" in shown.stdout
    assert "analysis error-rate" in shown.stdout

    done = run(cluster, kit, "pause", NAME)
    assert done.returncode == 1 and "pause ignored" in done.stdout, "paused already"

    done = run(cluster, kit, "promote", NAME)
    assert done.returncode == 0 and "promote applied" in done.stdout, done.stdout + done.stderr
    kit.wait_rollout(NAME, lambda r: r.get("stepIndex") == 3, timeout=30, what="the timed pause")

    done = run(cluster, kit, "pause", NAME, kubectl=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert phase(kit) == ("Paused", "UserPaused")

    done = run(cluster, kit, "resume", NAME)
    assert done.returncode == 0 and phase(kit)[0] == "Progressing"

    done = run(cluster, kit, "abort", NAME, kubectl=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert phase(kit) == ("RolledBack", "UserAborted")
    assert kit.get("deployment", f"{NAME}-canary")["spec"]["replicas"] == 0

    done = run(cluster, kit, "retry", NAME)
    assert done.returncode == 0, done.stdout + done.stderr
    kit.wait_rollout(NAME, lambda r: r.get("reason") == "PauseStep", timeout=30, what="again")

    passed_before = kit.reasons(NAME).count("AnalysisPassed")
    done = run(cluster, kit, "promote", NAME, "--full", kubectl=True)
    assert done.returncode == 0, done.stdout + done.stderr
    kit.wait_rollout(
        NAME,
        lambda r: r.get("phase") == "Healthy" and r.get("stableRevision") == candidate,
        timeout=30,
        what="promoted in full",
    )
    assert kit.reasons(NAME).count("AnalysisPassed") == passed_before, "analysis skipped"
    promoting = [e["message"] for e in kit.events(NAME) if e["reason"] == "Promoting"]
    assert "promote-full by a user" in promoting[-1]
