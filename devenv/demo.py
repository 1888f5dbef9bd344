"""`make demo`: the whole product on the local control plane, from nothing.

1. the local Kubernetes control plane (built from upstream Go modules; kwok nodes);
2. the Helm chart (the CRD, the operator's identity and least-privilege RBAC);
3. the sample demand model trained and exported to ONNX (v1, then v2);
4. a ForecastModel applied; its model server answering forecasts;
5. a second model version rolled out as a canary, analysed from Prometheus, promoted —
   or, with `--bad`, a broken version rolled back by itself.

Pods on kwok nodes run no containers, so the operator and each revision's model server
run here as local processes with the chart's identity, as in the end-to-end tests.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from devenv.cluster import ClusterError, LocalCluster
from devenv.harness import Kit, forecastmodel, operator_identity, revision_of
from devenv.paths import REPO, bin_dir
from devenv.rollouts import METRICS, Operator, Servers
from devenv.services import Prometheus

NAMESPACE = "retail"
NAME = "store-demand"
RELEASE = "forecastops"
OPERATOR_USER, OPERATOR_GROUPS = operator_identity(RELEASE, RELEASE)  # the chart's ServiceAccount
WORK = REPO / ".demo"

console = Console(width=None if sys.stdout.isatty() else 120)


def step(title: str) -> None:
    console.rule(f"[bold cyan]{title}")


def demo_spec(version: str, model) -> dict:
    return {
        "model": {"uri": model.model_path.as_uri(), "sha256": model.sha256, "version": version},
        "server": {"replicas": 3},
        "rollout": {
            "strategy": "Canary",
            "canary": {
                "steps": [
                    {"setWeight": 25},
                    {"analysis": {"templates": ["error-rate", "latency-p95"]}},
                    {"setWeight": 50},
                    {"pause": {"duration": "3s"}},
                    {"analysis": {"templates": ["error-rate", "latency-p95"]}},
                ]
            },
            "analysis": {
                "interval": "2s",
                "count": 2,
                "failureLimit": 2,
                "inconclusiveLimit": 5,
                "metrics": METRICS,
            },
        },
    }


def install_chart(cluster: LocalCluster) -> None:
    helm = str(bin_dir() / "helm")
    args = [helm, "--kubeconfig", str(cluster.kubeconfig)]
    installed = subprocess.run([*args, "status", RELEASE, "-n", RELEASE], capture_output=True)
    verb = ["upgrade"] if installed.returncode == 0 else ["install", "--create-namespace"]
    subprocess.run(
        [*args, *verb, RELEASE, str(REPO / "charts" / "forecastops"), "-n", RELEASE, "--wait",
         "--timeout", "120s", "--set", "image.repository=forecastops.local/forecast-operator"],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    console.print(cluster.kubectl("get", "deploy,sa", "-n", RELEASE).stdout)
    console.print(cluster.kubectl("get", "crd", "forecastmodels.forecastops.io").stdout)


def train(out: Path, variant: str):
    from model_training.train import train_sample

    result = train_sample(out, variant=variant, stores=8, items=15, days=540)
    console.print(
        f"model {variant}: backtest WAPE {result.metrics['wape']:.3f}, "
        f"MAE {result.metrics['mae']:.2f}, sha256 {result.sha256[:12]}…"
    )
    return result


def show_forecasts(url: str) -> None:
    """A week of one store's item, as the model sees it: named features per row."""
    from model_training.demand import FEATURE_NAMES, build_features, generate_panel

    x, actual, _ = build_features(generate_panel(stores=1, items=1, days=120, seed=2026))
    rows = [dict(zip(FEATURE_NAMES, map(float, r), strict=True)) for r in x[-7:]]
    answer = httpx.post(f"{url}/v1/forecast", json={"id": "demo", "instances": rows}, timeout=5)
    answer.raise_for_status()
    table = Table(title=f"POST /v1/forecast: 7 rows of {len(FEATURE_NAMES)} named features")
    for column in ("day", "promotion", "price", "sold", "forecast"):
        table.add_column(column, justify="right")
    weekdays = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    for row, sold, forecast in zip(rows, actual[-7:], answer.json()["predictions"], strict=True):
        table.add_row(
            weekdays[int(row["day_of_week"])],
            "yes" if row["promo"] else "",
            f"{row['price']:.2f}",
            f"{sold:.0f}",
            f"{forecast:.1f}",
        )
    console.print(table)


def follow(kit: Kit, until: set[str], timeout: float) -> dict:
    """Print each change of the rollout until its phase is in `until`."""
    from forecastops.cli.rollout import render_text

    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        fm = kit.fm(NAME) or {}
        rollout = (fm.get("status") or {}).get("rollout") or {}
        line = (
            f"phase={rollout.get('phase')} step={rollout.get('stepIndex', '-')} "
            f"weight={(fm.get('status') or {}).get('canaryWeight', 0)}% "
            f"{rollout.get('message', '')}"
        )
        if line != last:
            console.print(f"[dim]{datetime.now(UTC):%H:%M:%S}[/] {line}")
            last = line
        if rollout.get("phase") in until:
            console.print(render_text(fm, now=datetime.now(UTC)))
            return fm
        time.sleep(0.5)
    raise TimeoutError(f"the rollout did not reach {sorted(until)} in {timeout:.0f}s")


def run(bad: bool) -> int:
    WORK.mkdir(exist_ok=True)
    step("1/5  The local Kubernetes control plane")
    cluster = LocalCluster()
    cluster.up()
    console.print(cluster.kubectl("get", "nodes", "-o", "wide").stdout)

    step("2/5  The Helm chart: CRD, RBAC, operator")
    install_chart(cluster)
    cluster.kubectl("create", "namespace", NAMESPACE, check=False)

    step("3/5  Train and export the sample demand model (scikit-learn → ONNX)")
    v1_model = train(WORK / "models" / "v1", "v1")
    v2_model = train(WORK / "models" / "v2", "v2")

    with contextlib.ExitStack() as stack:
        shutil.rmtree(WORK / "run", ignore_errors=True)
        (WORK / "run").mkdir(parents=True)
        prometheus = stack.enter_context(Prometheus(WORK / "run" / "prometheus"))
        prometheus.start()
        kubeconfig = WORK / "run" / "operator.kubeconfig"
        shutil.copy(cluster.kubeconfig_for_user(OPERATOR_USER, OPERATOR_GROUPS), kubeconfig)
        operator = Operator(kubeconfig, NAMESPACE, prometheus.url, WORK / "run" / "operator.log")
        operator.start()
        stack.callback(operator.stop)
        kit = Kit(cluster, NAMESPACE)

        step("4/5  Apply the ForecastModel; the model server answers forecasts")
        cluster.kubectl("delete", "fm", NAME, "-n", NAMESPACE, "--ignore-not-found", "--wait")
        v1 = forecastmodel(NAME, demo_spec("v1", v1_model), namespace=NAMESPACE)
        stable = revision_of(v1, NAMESPACE)
        servers = Servers(prometheus, v1_model, WORK / "run")
        stack.callback(servers.stop_all)
        server = servers.start(stable, model_name=NAME)
        kit.apply(v1, check=True)
        follow(kit, {"Healthy"}, timeout=60)
        console.print(
            cluster.kubectl("get", "fm,deploy,svc,hpa,pdb,netpol", "-n", NAMESPACE).stdout
        )
        show_forecasts(server.url)

        verdict = "rolled back" if bad else "promoted"
        step(f"5/5  Roll out v2 as a canary: analysed from Prometheus, {verdict}")
        v2 = forecastmodel(NAME, demo_spec("v2", v2_model), namespace=NAMESPACE)
        candidate = revision_of(v2, NAMESPACE)
        servers.model = v2_model
        faults = {"error_rate": 0.4} if bad else {}
        if bad:
            console.print("[yellow]--bad: the v2 server answers 40 % of requests with errors")
        servers.start(candidate, model_name=NAME, **faults)
        servers.wait_scraped(candidate)
        kit.apply(v2, check=True)
        fm = follow(kit, {"Healthy", "RolledBack", "Degraded", "Paused"}, timeout=120)
        phase = fm["status"]["rollout"]["phase"]
        expected = "RolledBack" if bad else "Healthy"
        if phase != expected:
            console.print(f"[red]the rollout ended {phase}, expected {expected}")
            console.print("\n".join(operator.text().splitlines()[-30:]))
            return 1
        console.print(cluster.kubectl("get", "fm,deploy", "-n", NAMESPACE).stdout)
        console.print(
            cluster.kubectl(
                "get", "events", "-n", NAMESPACE, "--field-selector",
                f"involvedObject.name={NAME}", "--sort-by=.lastTimestamp",
            ).stdout[-3000:]
        )  # fmt: skip
        if bad:
            console.print(
                f"[bold green]v2 was rolled back by itself: {fm['status']['rollout']['message']}"
            )
        else:
            console.print(
                f"[bold green]v2 ({candidate}) was promoted: it is the stable revision now."
            )

    console.rule("[bold]What to try next")
    console.print(
        f"""
  export KUBECONFIG={cluster.kubeconfig}
  export PATH=$PWD/.venv/bin:$PATH
  kubectl get fm -A                                 # phase, ready, version, canary weight
  kubectl forecast status {NAME} -n {NAMESPACE}  # forecastctl as a kubectl plugin
  make demo DEMO_ARGS=--bad                         # watch a broken model roll back by itself
  make test                                         # every test
  make cluster-down                                 # stop the control plane

  The operator and model servers of this demo were local processes and have stopped; the
  cluster keeps running until `make cluster-down`."""
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="make demo", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bad", action="store_true", help="roll out a broken v2: it rolls back")
    args = parser.parse_args(argv)
    try:
        return run(bad=args.bad)
    except (ClusterError, TimeoutError, subprocess.CalledProcessError) as exc:
        console.print(f"[red]demo failed: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
