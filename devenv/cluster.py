"""A real Kubernetes control plane as local processes, every listener on 127.0.0.1
(with a real node, kube-apiserver listens on that node's bridge gateway instead).

etcd, kube-apiserver (RBAC, client certificates), kube-controller-manager,
kube-scheduler and kwok (fake nodes whose pods become Running and Ready without
containers), built from upstream Go modules by hack/build-binaries.sh.

    python -m devenv.cluster up       # idempotent; returns when /readyz is ok and nodes are Ready
    python -m devenv.cluster status
    python -m devenv.cluster down     # stops exactly the processes `up` started, by pid

    python -m devenv.cluster up --real-node   # or FORECASTOPS_REAL_NODE=1: also one real
                                              # kubelet node (devenv/node.py; root only)

State lives in a directory (default `.cluster/` in the repository): the admin kubeconfig
at `<dir>/kubeconfig`, everything else (certificates, etcd data, logs, pids) in `<dir>/run`.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from devenv.paths import REPO, bin_dir, free_port, versions
from devenv.pki import CertificateAuthority, KeyPair, write_service_account_keys
from devenv.processes import Proc, ProcessTable, tail

REAL_NODE_ENV = "FORECASTOPS_REAL_NODE"


def real_node_wanted() -> bool:
    """FORECASTOPS_REAL_NODE=1 asks `up` for a real kubelet node next to the kwok nodes."""
    return os.environ.get(REAL_NODE_ENV, "").lower() in {"1", "true", "yes"}


COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
ADMIN_GROUP = "system:masters"
KWOK_ANNOTATION = "kwok.x-k8s.io/node"


class KubectlError(subprocess.CalledProcessError):
    """kubectl failed; unlike its base class, the message says what kubectl said."""

    def __str__(self) -> str:
        return f"kubectl {' '.join(self.cmd[3:])} failed ({self.returncode}): {self.stderr.strip()}"


class ClusterError(RuntimeError):
    """The control plane could not be started or is not healthy; the message says why."""


def log(msg: str) -> None:
    print(f"[cluster] {msg}", file=sys.stderr, flush=True)


@dataclass
class LocalCluster:
    """One control plane whose state lives in `state_dir`."""

    state_dir: Path = field(default_factory=lambda: REPO / ".cluster")
    binaries: Path = field(default_factory=bin_dir)
    nodes: int = 2
    # one real kubelet node besides the kwok nodes (devenv/node.py); default: the env var
    real_node: bool = field(default_factory=real_node_wanted)
    table: ProcessTable = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.table = ProcessTable(self.run_dir / "state.json", self.run_dir / "logs", self.run_dir)

    # --- paths ------------------------------------------------------------------------
    @property
    def run_dir(self) -> Path:
        return self.state_dir / "run"

    @property
    def kubeconfig(self) -> Path:
        return self.state_dir / "kubeconfig"

    def binary(self, name: str) -> Path:
        return self.binaries / name

    def missing_binaries(self) -> list[str]:
        names = [*COMPONENTS, "kubectl"]
        out = [n for n in names if not os.access(self.binary(n), os.X_OK)]
        if not self._stages_file().exists():
            out.append(self._stages_file().name)
        return out

    def _stages_file(self) -> Path:
        return self.binaries / f"kwok-stages-{versions()['KWOK_VERSION']}.yaml"

    @property
    def server(self) -> str:
        state = self.table.read()
        if not state:
            raise ClusterError(f"no cluster state in {self.run_dir}")
        return state["server"]

    # --- processes --------------------------------------------------------------------
    def _wait(self, proc: Proc, check: Callable[[], bool], what: str, timeout: float) -> None:
        """Wait until `check()` is true; a crash or a time-out reports the log's tail."""
        self.table.wait(proc, check, what, timeout, error=ClusterError)

    # --- HTTP checks --------------------------------------------------------------------
    def _ssl_context(self, client: KeyPair | None = None) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.run_dir / "pki" / "ca.crt"))
        if client:
            ctx.load_cert_chain(str(client.cert), str(client.key))
        return ctx

    def _get(self, url: str, ctx: ssl.SSLContext | None = None, insecure: bool = False) -> str:
        if insecure:
            ctx = ssl._create_unverified_context()  # self-signed serving certs of kcm/scheduler
        with urllib.request.urlopen(url, timeout=3, context=ctx) as resp:
            return resp.read().decode()

    def _admin_pair(self) -> KeyPair:
        pki = self.run_dir / "pki"
        return KeyPair(pki / "admin.crt", pki / "admin.key")

    def api(self, path: str) -> dict:
        """GET an API path as admin and decode the JSON."""
        ctx = self._ssl_context(self._admin_pair())
        return json.loads(self._get(self.server + path, ctx))

    def _readyz(self) -> bool:
        return self._get(self.server + "/readyz", self._ssl_context(self._admin_pair())) == "ok"

    # --- kubeconfigs ------------------------------------------------------------------
    def _write_kubeconfig(self, path: Path, server: str, pair: KeyPair, user: str) -> Path:
        def b64(p: Path) -> str:
            return base64.b64encode(p.read_bytes()).decode()

        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "forecastops-local",
                    "cluster": {
                        "server": server,
                        "certificate-authority-data": b64(self.run_dir / "pki" / "ca.crt"),
                    },
                }
            ],
            "users": [
                {
                    "name": user,
                    "user": {
                        "client-certificate-data": b64(pair.cert),
                        "client-key-data": b64(pair.key),
                    },
                }
            ],
            "contexts": [
                {
                    "name": "forecastops-local",
                    "context": {"cluster": "forecastops-local", "user": user},
                }
            ],
            "current-context": "forecastops-local",
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(yaml.safe_dump(config, sort_keys=False))
        tmp.chmod(0o600)
        tmp.replace(path)
        return path

    def kubeconfig_for_user(self, user: str, groups: tuple[str, ...] = ()) -> Path:
        """A kubeconfig authenticating as `user` in `groups` (a client certificate).

        The certificate is signed by this cluster's CA, so RBAC decides what it may do.
        """
        ca = CertificateAuthority(self.run_dir / "pki")
        # no ':' in the file name: KUBECONFIG is a ':'-separated list
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", "user-" + "-".join((user, *groups)))
        pair = ca.issue(stem, user, orgs=tuple(groups))
        return self._write_kubeconfig(
            self.run_dir / "users" / f"{stem}.kubeconfig", self.server, pair, user
        )

    def kubectl(
        self, *args: str, kubeconfig: Path | None = None, input: str | None = None, check=True
    ) -> subprocess.CompletedProcess:
        """kubectl as admin (or with `kubeconfig`); with `check`, a failure raises
        `KubectlError`, whose message carries kubectl's own."""
        done = subprocess.run(
            [
                str(self.binary("kubectl")),
                "--kubeconfig",
                str(kubeconfig or self.kubeconfig),
                *args,
            ],
            input=input,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check and done.returncode:
            raise KubectlError(done.returncode, done.args, done.stdout, done.stderr)
        return done

    # --- lifecycle --------------------------------------------------------------------
    def is_running(self) -> bool:
        procs = self.table.procs()
        if not procs or {p.name for p in procs} != set(COMPONENTS):
            return False
        if not all(self.table.alive(p) for p in procs):
            return False
        if self.table.read().get("real_node") and not self.node().is_running():
            return False
        try:
            return self._readyz()
        except (OSError, urllib.error.URLError, ssl.SSLError, ClusterError):
            return False

    def up(self, timeout: float = 120.0) -> None:
        if self.is_running() and (bool(self.table.read().get("real_node")) == self.real_node):
            log(f"already up: {self.server} (kubeconfig {self.kubeconfig})")
            self.wait_nodes_ready(timeout)
            return
        if self.table.procs() or self.node().state_file.exists():
            log("found a stale, half-started or differently made cluster: stopping it first")
            self.down()
        missing = self.missing_binaries()
        if missing:
            raise ClusterError(
                f"missing binaries in {self.binaries}: {', '.join(missing)} "
                "(run `make binaries` or hack/build-binaries.sh)"
            )
        if self.real_node:
            from devenv.node import unavailable_reason

            if why := unavailable_reason(self.binaries):
                raise ClusterError(f"the real node cannot run here: {why}")
        started = time.monotonic()
        for sub in ("pki", "logs", "etcd", "users"):
            (self.run_dir / sub).mkdir(parents=True, exist_ok=True)
        ports = {
            n: free_port() for n in ("etcd", "etcd-peer", "apiserver", "kcm", "scheduler", "kwok")
        }
        server = f"https://{self._api_host()}:{ports['apiserver']}"
        self.table.write(
            {"server": server, "ports": ports, "procs": [], "real_node": self.real_node}
        )
        try:
            if self.real_node:
                self.node().prepare()  # the bridge the apiserver listens on
            pki = self._make_pki()
            self._start_etcd(ports)
            self._start_apiserver(ports, pki)
            self._write_kubeconfig(self.kubeconfig, server, pki["admin"], "admin")
            for comp, cn in (
                ("kcm", "system:kube-controller-manager"),
                ("scheduler", "system:kube-scheduler"),
            ):
                self._write_kubeconfig(self.run_dir / f"{comp}.kubeconfig", server, pki[comp], cn)
            self._start_controller_manager(ports, pki)
            self._start_scheduler(ports)
            self._start_kwok(ports)
            self._create_nodes()
            self.wait_nodes_ready(timeout)
            if self.real_node:
                self.node().start(pki)
        except BaseException:
            log("start failed: stopping what was started")
            self.down(quiet=True, keep_logs=True)
            raise
        log(f"up in {time.monotonic() - started:.1f}s: {server}; kubeconfig {self.kubeconfig}")

    def node(self):
        """The real node of this cluster (devenv/node.py), started only with `real_node`."""
        from devenv.node import RealNode

        return RealNode(self)

    def _api_host(self) -> str:
        """127.0.0.1; with a real node, the bridge's gateway, so that pods reach it too."""
        if self.real_node:
            from devenv.node import GATEWAY

            return GATEWAY
        return "127.0.0.1"

    def _make_pki(self) -> dict[str, KeyPair]:
        ca = CertificateAuthority(self.run_dir / "pki")
        write_service_account_keys(self.run_dir / "pki")
        node_pki = self.node().issue_pki(ca) if self.real_node else {}
        return node_pki | {
            "apiserver": ca.issue(
                "apiserver",
                "kube-apiserver",
                dns=(
                    "localhost",
                    "kubernetes",
                    "kubernetes.default",
                    "kubernetes.default.svc",
                    "kubernetes.default.svc.cluster.local",
                ),
                ips=("127.0.0.1", "10.96.0.1", *([self._api_host()] if self.real_node else [])),
                server=True,
            ),
            "admin": ca.issue("admin", "admin", orgs=(ADMIN_GROUP,)),
            "kcm": ca.issue("kcm", "system:kube-controller-manager"),
            "scheduler": ca.issue("scheduler", "system:kube-scheduler"),
            "kwok": ca.issue("kwok", "system:kwok-controller", orgs=(ADMIN_GROUP,)),
        }

    def _start_etcd(self, ports: dict) -> None:
        log(f"starting etcd {versions()['ETCD_VERSION']} on 127.0.0.1:{ports['etcd']}")
        client = f"http://127.0.0.1:{ports['etcd']}"
        peer = f"http://127.0.0.1:{ports['etcd-peer']}"
        proc = self.table.spawn(
            "etcd",
            [
                str(self.binary("etcd")),
                "--name=default",
                f"--data-dir={self.run_dir / 'etcd'}",
                f"--listen-client-urls={client}",
                f"--advertise-client-urls={client}",
                f"--listen-peer-urls={peer}",
                f"--initial-advertise-peer-urls={peer}",
                f"--initial-cluster=default={peer}",
                "--unsafe-no-fsync=true",
                "--quota-backend-bytes=4294967296",
                "--log-level=warn",
            ],
        )
        self._wait(proc, lambda: '"health":"true"' in self._get(client + "/health"), "health", 30)

    def _start_apiserver(self, ports: dict, pki: dict[str, KeyPair]) -> None:
        host = self._api_host()
        log(
            f"starting kube-apiserver {versions()['KUBERNETES_VERSION']} on {host}:{ports['apiserver']}"
        )
        p = self.run_dir / "pki"
        if self.real_node:
            # pods reach it through the kubernetes Service, whose endpoint is the gateway
            extra = ["--endpoint-reconciler-type=lease"]
            extra += self.node().apiserver_flags(pki, p / "ca.crt")
        else:
            # The kubernetes Service's endpoint would be 127.0.0.1, which EndpointSlices
            # reject; nothing in-cluster dials it (kwok pods run no containers).
            extra = ["--endpoint-reconciler-type=none"]
        proc = self.table.spawn(
            "kube-apiserver",
            [
                str(self.binary("kube-apiserver")),
                f"--etcd-servers=http://127.0.0.1:{ports['etcd']}",
                f"--bind-address={host}",
                f"--advertise-address={host}",
                f"--secure-port={ports['apiserver']}",
                f"--cert-dir={p}",
                f"--tls-cert-file={pki['apiserver'].cert}",
                f"--tls-private-key-file={pki['apiserver'].key}",
                f"--client-ca-file={p / 'ca.crt'}",
                "--authorization-mode=RBAC",
                "--service-cluster-ip-range=10.96.0.0/16",  # room for the 300-model benchmark
                "--allow-privileged=true",
                f"--service-account-issuer=https://127.0.0.1:{ports['apiserver']}",
                f"--service-account-key-file={p / 'sa.pub'}",
                f"--service-account-signing-key-file={p / 'sa.key'}",
                *extra,
                "--profiling=false",
                "--v=1",
            ],
        )
        self._wait(proc, self._readyz, "/readyz ok", 90)

    def _start_controller_manager(self, ports: dict, pki: dict) -> None:
        p = self.run_dir / "pki"
        self._start_loopback_component(
            "kube-controller-manager",
            "kcm",
            ports["kcm"],
            [
                "--controllers=*",
                "--use-service-account-credentials=true",
                f"--service-account-private-key-file={p / 'sa.key'}",
                f"--root-ca-file={p / 'ca.crt'}",
                f"--cluster-signing-cert-file={p / 'ca.crt'}",
                f"--cluster-signing-key-file={p / 'ca.key'}",
                "--concurrent-deployment-syncs=10",
                "--concurrent-replicaset-syncs=10",
            ],
        )

    def _start_scheduler(self, ports: dict) -> None:
        self._start_loopback_component("kube-scheduler", "scheduler", ports["scheduler"], [])

    def _start_loopback_component(
        self, binary: str, stem: str, port: int, extra: list[str]
    ) -> None:
        """kube-controller-manager or kube-scheduler: its own kubeconfig for everything,
        serving on 127.0.0.1, no leader election; waits for its /healthz."""
        log(f"starting {binary}")
        kc = self.run_dir / f"{stem}.kubeconfig"
        proc = self.table.spawn(
            binary,
            [
                str(self.binary(binary)),
                f"--kubeconfig={kc}",
                f"--authentication-kubeconfig={kc}",
                f"--authorization-kubeconfig={kc}",
                "--bind-address=127.0.0.1",
                f"--secure-port={port}",
                f"--cert-dir={self.run_dir / f'{stem}-certs'}",
                "--leader-elect=false",
                *extra,
                "--kube-api-qps=100",
                "--kube-api-burst=200",
                "--v=1",
            ],
        )
        url = f"https://127.0.0.1:{port}/healthz"
        self._wait(proc, lambda: self._get(url, insecure=True) == "ok", "/healthz ok", 60)

    def _start_kwok(self, ports: dict) -> None:
        log(f"starting kwok {versions()['KWOK_VERSION']} ({self.nodes} fake nodes)")
        kc = self._write_kubeconfig(
            self.run_dir / "kwok.kubeconfig",
            self.server,
            KeyPair(self.run_dir / "pki" / "kwok.crt", self.run_dir / "pki" / "kwok.key"),
            "system:kwok-controller",
        )
        proc = self.table.spawn(
            "kwok",
            [
                str(self.binary("kwok")),
                f"--kubeconfig={kc}",
                f"--manage-nodes-with-annotation-selector={KWOK_ANNOTATION}=fake",
                f"--config={self._stages_file()}",
                f"--server-address=127.0.0.1:{ports['kwok']}",
                "--node-ip=127.0.0.1",
                # kwok renews each node's Lease, so nodes stay Ready however long a run is
                # (without it the heartbeat stage fires rarely and nodes go NotReady).
                "--node-lease-duration-seconds=40",
                "--cidr=10.244.0.1/16",
            ],
        )
        url = f"http://127.0.0.1:{ports['kwok']}/healthz"
        self._wait(proc, lambda: self._get(url) == "ok", "/healthz ok", 60)

    def _create_nodes(self) -> None:
        docs = [node_manifest(f"kwok-node-{i}") for i in range(self.nodes)]
        self.kubectl("apply", "-f", "-", input="\n---\n".join(yaml.safe_dump(d) for d in docs))

    def wait_nodes_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        kwok = next((p for p in self.table.procs() if p.name == "kwok"), None)
        while time.monotonic() < deadline:
            nodes = self.api("/api/v1/nodes").get("items", [])
            ready = [n for n in nodes if _node_ready(n)]
            if nodes and len(ready) == len(nodes):
                log(
                    f"{len(ready)} node(s) Ready: {', '.join(n['metadata']['name'] for n in ready)}"
                )
                return
            if kwok and not self.table.alive(kwok):
                raise ClusterError(f"kwok exited; last lines of {kwok.log}:\n{tail(kwok.log)}")
            time.sleep(0.5)
        raise ClusterError(f"nodes not Ready within {timeout:.0f}s")

    def down(self, quiet: bool = False, keep_logs: bool = False) -> None:
        """Stop exactly the processes `up` started (by pid, checked by executable); with a
        real node, first remove everything the node made (devenv/node.py)."""
        node = self.node()
        if node.state_file.exists():
            problems = node.down(quiet=quiet)
            if problems:
                raise ClusterError(f"the real node left: {problems}")
        procs = self.table.procs()
        order = {name: i for i, name in enumerate(reversed(COMPONENTS))}
        for proc in sorted(procs, key=lambda p: order.get(p.name, -1)):
            if self.table.alive(proc):
                self.table.stop(proc)
                if not quiet:
                    log(f"stopped {proc.name} (pid {proc.pid})")
        leftovers = [p for p in procs if self.table.alive(p)]
        if leftovers:
            raise ClusterError(f"could not stop: {[(p.name, p.pid) for p in leftovers]}")
        if keep_logs:
            self.table.state_file.unlink(missing_ok=True)
        elif self.run_dir.exists():
            shutil.rmtree(self.run_dir, ignore_errors=True)
        self.kubeconfig.unlink(missing_ok=True)
        if not quiet:
            log("down")

    def status(self) -> dict:
        procs = self.table.procs()
        node = self.node()
        node_procs = {
            p.name: {"pid": p.pid, "alive": node.table.alive(p)} for p in node.table.procs()
        }
        return {
            "running": self.is_running(),
            "real_node": self.table.read().get("real_node", False),
            **({"node_processes": node_procs} if node_procs else {}),
            "server": self.table.read().get("server"),
            "kubeconfig": str(self.kubeconfig),
            "processes": {
                p.name: {"pid": p.pid, "alive": alive}
                | ({} if alive else {"log_tail": tail(p.log, 10).splitlines()})
                for p in procs
                for alive in [self.table.alive(p)]
            },
        }


def _node_ready(node: dict) -> bool:
    conds = node.get("status", {}).get("conditions", [])
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)


def node_manifest(name: str, cpu: str = "32", memory: str = "256Gi", pods: str = "250") -> dict:
    """A kwok-managed fake Node; schedulable by ordinary pods (no NoSchedule taint)."""
    resources = {"cpu": cpu, "memory": memory, "pods": pods}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {KWOK_ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "type": "kwok",
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/hostname": name,
                "node-role.kubernetes.io/agent": "",
            },
        },
        "status": {"allocatable": resources, "capacity": resources},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devenv.cluster",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument("--dir", type=Path, default=REPO / ".cluster", help="state directory")
    parser.add_argument("--nodes", type=int, default=2, help="fake nodes to create")
    parser.add_argument(
        "--real-node",
        action=argparse.BooleanOptionalAction,
        default=real_node_wanted(),
        help=f"also start one real kubelet node (root; default from {REAL_NODE_ENV})",
    )
    args = parser.parse_args(argv)
    cluster = LocalCluster(state_dir=args.dir, nodes=args.nodes, real_node=args.real_node)
    try:
        if args.command == "up":
            cluster.up()
            print(cluster.kubeconfig)
        elif args.command == "down":
            cluster.down()
        else:
            print(json.dumps(cluster.status(), indent=2))
            return 0 if cluster.is_running() else 1
    except ClusterError as exc:
        log(f"error: {exc}")
        return 1
    except Exception as exc:
        # run as __main__, this module's ClusterError is not the one devenv.node imports
        from devenv.node import NodeError

        if not isinstance(exc, NodeError):
            raise
        log(f"error: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
