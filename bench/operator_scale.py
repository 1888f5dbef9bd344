"""The operator at scale on the local control plane: apply → Ready for 1 and for N
ForecastModels, the operator's memory at N, and its API writes per minute when idle.

    python -m bench.operator_scale [--count 300] [--idle-seconds 60]

Needs a running control plane (`make cluster-up`). The operator runs as a subprocess
under its least-privilege identity, exactly as in the integration tests. Writes are
counted from the API server's own metrics (apiserver_request_total): server-side applies
(only the operator applies), and patches of ForecastModels and their status.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import yaml

from devenv import crds
from devenv.cluster import LocalCluster
from devenv.paths import REPO

OPERATOR_USER = "system:serviceaccount:forecastops:forecastops-operator"
OPERATOR_GROUPS = ("system:serviceaccounts", "system:serviceaccounts:forecastops")
RESULTS = REPO / "bench" / "results" / "operator-scale.json"
WRITE = re.compile(r"^apiserver_request_total\{(?P<labels>[^}]*)\} (?P<value>[0-9.e+]+)$", re.M)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.operator_scale", description=__doc__)
    parser.add_argument("--count", type=int, default=300, help="ForecastModels at scale")
    parser.add_argument("--idle-seconds", type=float, default=60, help="idle write window")
    parser.add_argument("--timeout", type=float, default=600, help="per phase")
    args = parser.parse_args(argv)

    cluster = LocalCluster(
        state_dir=Path(os.environ.get("FORECASTOPS_CLUSTER_DIR", REPO / ".cluster"))
    )
    if not cluster.is_running():
        print("no running control plane: run `make cluster-up` first", file=sys.stderr)
        return 2
    install(cluster)
    workdir = Path(tempfile.mkdtemp(prefix="forecastops-bench-"))
    namespace = f"bench-operator-{uuid.uuid4().hex[:5]}"
    cluster.kubectl("create", "namespace", namespace)
    operator = start_operator(cluster, workdir)
    try:
        results = run(cluster, operator, namespace, args)
    finally:
        operator.terminate()
        operator.wait(timeout=30)
        cluster.kubectl("delete", "namespace", namespace, "--wait=false")
    print(report(results))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\n(saved to {RESULTS.relative_to(REPO)}; operator log in {workdir})")
    return 0


def run(cluster: LocalCluster, operator: subprocess.Popen, namespace: str, args) -> dict:
    one = timed(lambda: apply_and_wait(cluster, namespace, ["single"], args.timeout))
    names = [f"fm-{i:03d}" for i in range(args.count)]
    many = timed(lambda: apply_and_wait(cluster, namespace, names, args.timeout))
    rss_ready = rss_mib(operator.pid)
    time.sleep(10)  # the last status writes and Events land
    before = write_counts(cluster)
    time.sleep(args.idle_seconds)
    after = write_counts(cluster)
    idle = {
        key: after[key] - before.get(key, 0) for key in after if after[key] != before.get(key, 0)
    }
    per_minute = sum(idle.values()) * 60 / args.idle_seconds
    return {
        "count": args.count,
        "one_ready_seconds": round(one, 2),
        "all_ready_seconds": round(many, 2),
        "operator_rss_mib": round(max(rss_ready, rss_mib(operator.pid)), 1),
        "idle_writes_per_minute": round(per_minute, 1),
        "idle_writes": {" ".join(k): v for k, v in sorted(idle.items())},
    }


def install(cluster: LocalCluster) -> None:
    crds.install_operator(cluster)


def start_operator(cluster: LocalCluster, workdir: Path) -> subprocess.Popen:
    kubeconfig = workdir / "operator.kubeconfig"
    shutil.copy(cluster.kubeconfig_for_user(OPERATOR_USER, OPERATOR_GROUPS), kubeconfig)
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "PYTHONUNBUFFERED": "1"}
    log = (workdir / "operator.log").open("wb")
    executable = Path(sys.executable).parent / "forecast-operator"
    process = subprocess.Popen(
        [str(executable), "--all-namespaces"], env=env, stdout=log, stderr=log
    )
    time.sleep(3)
    return process


def apply_and_wait(cluster: LocalCluster, namespace: str, names: list[str], timeout: float) -> None:
    example = yaml.safe_load((REPO / "examples" / "minimal.yaml").read_text())
    items = [{**example, "metadata": {"name": name}} for name in names]
    manifest = {"apiVersion": "v1", "kind": "List", "items": items}
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(manifest))
    deadline = time.monotonic() + timeout
    while ready_count(cluster, namespace, names) < len(names):
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out: not all of {len(names)} ForecastModels Ready")
        time.sleep(0.5)


def ready_count(cluster: LocalCluster, namespace: str, names: list[str]) -> int:
    items = json.loads(cluster.kubectl("get", "fm", "-n", namespace, "-o", "json").stdout)["items"]
    wanted = set(names)
    return sum(
        1
        for fm in items
        if fm["metadata"]["name"] in wanted
        and fm.get("status", {}).get("observedGeneration") == fm["metadata"]["generation"]
        and any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in fm.get("status", {}).get("conditions", [])
        )
    )


def write_counts(cluster: LocalCluster) -> dict[tuple[str, str, str], float]:
    """The operator's kinds of write, from the API server's request counters."""
    text = cluster.kubectl("get", "--raw", "/metrics").stdout
    counts: dict[tuple[str, str, str], float] = {}
    for match in WRITE.finditer(text):
        labels = dict(re.findall(r'(\w+)="([^"]*)"', match["labels"]))
        verb, resource = labels.get("verb", ""), labels.get("resource", "")
        mine = verb == "APPLY" or (verb in ("PATCH", "DELETE") and resource == "forecastmodels")
        if mine:
            key = (verb, resource, labels.get("subresource", ""))
            counts[key] = counts.get(key, 0) + float(match["value"])
    return counts


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def timed(action: Callable[[], None]) -> float:
    started = time.monotonic()
    action()
    return time.monotonic() - started


def report(results: dict) -> str:
    return "\n".join(
        [
            f"apply → Ready, 1 ForecastModel:     {results['one_ready_seconds']:.1f} s",
            f"apply → Ready, {results['count']} ForecastModels:  {results['all_ready_seconds']:.1f} s",
            f"operator RSS at {results['count']}:             {results['operator_rss_mib']:.0f} MiB",
            f"API writes per minute when idle:    {results['idle_writes_per_minute']:.1f}",
        ]
        + [f"  {key}: {value:.0f}" for key, value in results["idle_writes"].items()]
    )


if __name__ == "__main__":
    sys.exit(main())
