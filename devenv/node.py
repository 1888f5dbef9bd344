"""One real kubelet node next to the kwok nodes of the local control plane.

`python -m devenv.cluster up --real-node` (or FORECASTOPS_REAL_NODE=1) starts, besides the
control plane, on this machine and as root:

- containerd (Debian's, hack/install-node-deps.sh) with a config of ours: its own root,
  state and socket under the cluster's state dir, `restrict_oom_score_adj = true` (no
  CAP_SYS_RESOURCE here), runc with cgroupfs, our FROM-scratch pause image as the sandbox
  image, CNI plugins from /usr/lib/cni with a conf dir of ours;
- a CNI bridge of our own, BRIDGE with the /24 SUBNET (host-local IPAM, its data in the
  state dir, no IP masquerade), and a filter chain FOPS-ISOLATE at the top of FORWARD that
  drops whatever would leave or enter the bridge from elsewhere: pods reach each other and
  this host, never anything outside this machine;
- the kube-apiserver listens on the bridge's gateway address GATEWAY (not on 127.0.0.1:
  kube-apiserver has one bind address), so pods reach it at the `kubernetes` Service; it
  gets the kubelet client flags (`kubectl logs/exec`) and the front-proxy flags (metrics
  API through the aggregator);
- the kubelet (its own root dir, cgroup root CGROUP_ROOT, a client certificate
  CN=system:node:NAME O=system:nodes, a serving certificate), tainted TAINT and labelled
  LABEL so only pods that tolerate it land there;
- kube-proxy (iptables mode, masquerade of Service traffic onto the bridge only, NodePorts
  only on the gateway, no global conntrack sysctls);
- CoreDNS on GATEWAY:53 (cluster.local from the apiserver, no forwarding anywhere), behind
  the Service kube-system/kube-dns at DNS_IP;
- metrics-server on GATEWAY, registered as the APIService v1beta1.metrics.k8s.io;
- the images in podman's storage, imported into containerd (pods use
  `imagePullPolicy: Never` or `IfNotPresent`).

`down` removes all of it: processes (and containerd's shims), mounts under our dirs, pod
network namespaces, the bridge, the cgroups under CGROUP_ROOT, the KUBE-*/CNI-*/FOPS-*
chains that were not there before `up` (`kube-proxy --cleanup` first), containerd's dirs.
`host_footprint()` lists all of these, for a test to compare before `up` and after `down`.

Limits: containerd 1.6 puts its shims' sockets in /run/containerd/s (a fixed path) and
pod network namespaces in /run/netns: `down` removes the ones it made.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from devenv.cluster import ClusterError
from devenv.paths import free_port, versions
from devenv.processes import Proc, ProcessTable, terminate

if TYPE_CHECKING:
    from devenv.cluster import LocalCluster
    from devenv.pki import CertificateAuthority, KeyPair

NAME = "fops-real-node"
BRIDGE = "fops0"
SUBNET = "10.250.0.0/24"
GATEWAY = "10.250.0.1"
SERVICE_CIDR = "10.96.0.0/16"
DNS_IP = "10.96.0.10"
CLUSTER_DOMAIN = "cluster.local"
LABEL = ("forecastops.io/real-node", "true")
TAINT = {"key": "forecastops.io/real-node", "value": "true", "effect": "NoSchedule"}
# pods that should land on the real node carry these
TOLERATION = {"key": TAINT["key"], "operator": "Equal", "value": "true", "effect": "NoSchedule"}
NODE_SELECTOR = {LABEL[0]: LABEL[1]}
CGROUP_ROOT = "forecastops-node"
ISOLATE_CHAIN = "FOPS-ISOLATE"
CNI_NETWORK = "forecastops"
CNI_BIN = "/usr/lib/cni"
CGROUP_FS = Path("/sys/fs/cgroup")
SHIM_SOCKETS = Path("/run/containerd/s")
NETNS_DIR = Path("/run/netns")
CNI_RESULTS = Path("/var/lib/cni/results")
KUBELET_FIXED_DIR = Path("/var/lib/kubelet")
CHAIN_PREFIXES = ("KUBE-", "CNI-", "FOPS-")
BINARIES = ("kubelet", "kube-proxy", "coredns", "metrics-server", "kubectl", "pause")
HOST_TOOLS = ("containerd", "ctr", "containerd-shim-runc-v2", "ip", "iptables", "ip6tables")
NODE_PROCS = ("containerd", "kubelet", "kube-proxy", "coredns", "metrics-server")


class NodeError(ClusterError):
    """The real node could not be started or stopped; the message says why."""


def log(msg: str) -> None:
    print(f"[node] {msg}", file=sys.stderr, flush=True)


def _run(*argv: str, check: bool = True, input: bytes | None = None, timeout: float = 120):
    return subprocess.run(argv, input=input, capture_output=True, check=check, timeout=timeout)


def pause_image() -> str:
    return versions()["PAUSE_IMAGE"]


def unavailable_reason(binaries: Path) -> str | None:
    """Why this machine cannot run the real node, or None if it can."""
    if os.geteuid() != 0:
        return "the real node needs root (kubelet, containerd, a bridge, iptables)"
    missing = [t for t in HOST_TOOLS if shutil.which(t) is None]
    if not Path(CNI_BIN, "bridge").exists():
        missing.append(f"{CNI_BIN}/bridge (containernetworking-plugins)")
    if missing:
        return f"missing {', '.join(missing)} (run hack/install-node-deps.sh)"
    absent = [b for b in BINARIES if not os.access(binaries / b, os.X_OK)]
    if absent:
        return f"binaries missing in {binaries}: {', '.join(absent)} (run `make binaries`)"
    if not _podman_has(pause_image()) and shutil.which("buildah") is None:
        return f"no pause image {pause_image()} and no buildah to make it (make images)"
    return None


def ensure_pause_image(binaries: Path) -> None:
    """Commit the static pause binary FROM scratch as PAUSE_IMAGE, if podman lacks it
    (hack/build-binaries.sh does the same when buildah is there before it runs)."""
    from devenv.images import container_env

    image = pause_image()
    if _podman_has(image):
        return
    env = container_env()

    def buildah(*args: str) -> str:
        res = subprocess.run(["buildah", *args], env=env, capture_output=True, text=True)
        if res.returncode != 0:
            raise NodeError(f"buildah {args[0]} failed: {res.stderr.strip()}")
        return res.stdout.strip()

    ctr = buildah("from", "scratch")
    try:
        buildah("copy", "--chmod", "0755", ctr, str(binaries / "pause"), "/pause")
        buildah("config", "--entrypoint", '["/pause"]', "--user", "65535:65535", ctr)
        buildah("commit", "--format", "docker", ctr, image)
    finally:
        subprocess.run(["buildah", "rm", ctr], env=env, capture_output=True)
    log(f"committed {image} (FROM scratch, /pause)")


def _podman_has(image: str) -> bool:
    from devenv.images import container_env, podman_argv

    if shutil.which("podman") is None:
        return False
    res = subprocess.run(
        [*podman_argv(), "image", "exists", image], env=container_env(), capture_output=True
    )
    return res.returncode == 0


# --- what the node leaves on the host ------------------------------------------------------


def _chains() -> list[str]:
    out: set[str] = set()
    for tool in ("iptables-save", "ip6tables-save"):
        if shutil.which(tool) is None:
            continue
        table = ""
        res = _run(tool, check=False)
        for line in res.stdout.decode(errors="replace").splitlines():
            if line.startswith("*"):
                table = line[1:]
            elif line.startswith(":") and line[1:].startswith(CHAIN_PREFIXES):
                out.add(f"{tool.split('-')[0]}/{table}/{line[1:].split()[0]}")
    return sorted(out)


def _cgroups() -> list[str]:
    if not CGROUP_FS.is_dir():
        return []
    return sorted(str(p) for p in CGROUP_FS.glob(f"*/{CGROUP_ROOT}"))


def _links() -> list[str]:
    """Our bridge, the veths on it, and veths on no bridge at all (a pod's, orphaned);
    veths of podman's containers (on cni-podman0) belong to someone else."""
    res = _run("ip", "-o", "link", "show", check=False)
    names = []
    for line in res.stdout.decode().splitlines():
        name = line.split(":", 2)[1].strip().split("@")[0]
        master = line.split(" master ", 1)[1].split()[0] if " master " in line else None
        if name == BRIDGE or (name.startswith("veth") and master in (None, BRIDGE)):
            names.append(name)
    return sorted(names)


def _mounts(dirs: tuple[str, ...]) -> list[str]:
    out = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        target = line.split()[4].replace("\\040", " ")
        if target.startswith(dirs):
            out.append(target)
    return sorted(out)


def _our_processes(markers: tuple[str, ...]) -> list[str]:
    out = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if any(m in cmd for m in markers):
            out.append(f"{proc.name} {cmd[:160]}")
    return sorted(out)


def host_footprint() -> dict[str, list[str]]:
    """What a real node puts on this host, wherever its state dir is: links (the bridge and
    veths), KUBE-*/CNI-*/FOPS-* chains, cgroups under CGROUP_ROOT, pod network namespaces,
    containerd shim sockets, CNI result caches of our network, mounts of kubelet or
    containerd dirs and the processes of the node's binaries."""
    netns = sorted(p.name for p in NETNS_DIR.glob("cni-*")) if NETNS_DIR.is_dir() else []
    shims = sorted(p.name for p in SHIM_SOCKETS.iterdir()) if SHIM_SOCKETS.is_dir() else []
    results = sorted(p.name for p in CNI_RESULTS.glob("*")) if CNI_RESULTS.is_dir() else []
    procs = _our_processes(
        (
            "containerd-shim-runc-v2",
            "/containerd.toml",
            "/bin/kubelet",
            "/bin/kube-proxy",
            "/bin/coredns",
            "/bin/metrics-server",
        )
    )
    return {
        "links": _links(),
        "chains": _chains(),
        "cgroups": _cgroups(),
        "netns": netns,
        "shim_sockets": shims,
        "cni_results": results,
        "mounts": _mounts(("/run/netns/cni-", "/run/containerd", str(KUBELET_FIXED_DIR))),
        "fixed_dirs": [str(d) for d in (KUBELET_FIXED_DIR, SHIM_SOCKETS.parent) if d.exists()],
        "processes": procs,
    }


# --- the node -------------------------------------------------------------------------------


class RealNode:
    """The real node of `cluster`; its state lives in `<cluster run dir>/node`."""

    def __init__(self, cluster: LocalCluster) -> None:
        self.cluster = cluster
        self.dir = cluster.run_dir / "node"
        self.table = ProcessTable(self.dir / "state.json", self.dir / "logs", self.dir)

    # paths
    @property
    def state_file(self) -> Path:
        return self.table.state_file

    @property
    def socket(self) -> Path:
        return self.dir / "containerd" / "containerd.sock"

    @property
    def kubelet_root(self) -> Path:
        return self.dir / "kubelet"

    def is_running(self) -> bool:
        procs = self.table.procs()
        return {p.name for p in procs} >= set(NODE_PROCS) and all(map(self.table.alive, procs))

    def _wait(self, p: Proc, check: Callable[[], bool], what: str, timeout: float) -> float:
        return self.table.wait(p, check, what, timeout, error=NodeError, interval=0.5)

    # --- before the apiserver starts ---------------------------------------------------
    def prepare(self) -> None:
        """Record the host's baseline, make the bridge and the isolation chain.

        A bridge of that name already there means another real node owns this machine's
        slot: fail before writing any state, so that our `down` touches nothing of it."""
        if _run("ip", "link", "show", BRIDGE, check=False).returncode == 0:
            raise NodeError(
                f"the bridge {BRIDGE} exists already: another real node runs on this machine "
                "(or one was not brought down: `python -m devenv.cluster down` for its dir)"
            )
        self.dir.mkdir(parents=True, exist_ok=True)
        self.table.write(
            {
                "baseline_chains": _chains(),
                "baseline_netns": [p.name for p in NETNS_DIR.glob("cni-*")]
                if NETNS_DIR.is_dir()
                else [],
                "baseline_shims": [p.name for p in SHIM_SOCKETS.iterdir()]
                if SHIM_SOCKETS.is_dir()
                else [],
                "made_shim_dir": not SHIM_SOCKETS.parent.exists(),
                # the kubelet's device manager makes /var/lib/kubelet/device-plugins (a
                # fixed path, whatever its root dir)
                "made_var_lib_kubelet": not KUBELET_FIXED_DIR.exists(),
                "procs": [],
            }
        )
        _run("ip", "link", "add", BRIDGE, "type", "bridge")
        self.table.update(made_bridge=True)
        _run("ip", "addr", "add", f"{GATEWAY}/24", "dev", BRIDGE)
        _run("ip", "link", "set", BRIDGE, "up")
        self._isolate()

    def _isolate(self) -> None:
        """Forwarded traffic in or out of the bridge stays on the bridge, nothing else.

        In the mangle table's FORWARD, which is traversed before the filter table's, where
        kube-proxy prepends its own ACCEPT rules: whatever a Service's endpoints say, a
        packet from a pod never leaves through another interface."""
        for tool in ("iptables", "ip6tables"):
            t = (tool, "-w", "-t", "mangle")
            _run(*t, "-N", ISOLATE_CHAIN)
            _run(*t, "-A", ISOLATE_CHAIN, "-i", BRIDGE, "-o", BRIDGE, "-j", "RETURN")
            _run(*t, "-A", ISOLATE_CHAIN, "-i", BRIDGE, "-j", "DROP")
            _run(*t, "-A", ISOLATE_CHAIN, "-o", BRIDGE, "-j", "DROP")
            _run(*t, "-I", "FORWARD", "1", "-j", ISOLATE_CHAIN)

    def apiserver_flags(self, pki: dict[str, KeyPair], ca: Path) -> list[str]:
        return [
            f"--kubelet-client-certificate={pki['kubelet-client'].cert}",
            f"--kubelet-client-key={pki['kubelet-client'].key}",
            f"--kubelet-certificate-authority={ca}",
            "--kubelet-preferred-address-types=InternalIP",
            f"--requestheader-client-ca-file={ca}",
            "--requestheader-allowed-names=front-proxy-client",
            "--requestheader-username-headers=X-Remote-User",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            f"--proxy-client-cert-file={pki['front-proxy-client'].cert}",
            f"--proxy-client-key-file={pki['front-proxy-client'].key}",
            "--enable-aggregator-routing=true",
        ]

    @staticmethod
    def issue_pki(ca: CertificateAuthority) -> dict[str, KeyPair]:
        return {
            "kubelet-client": ca.issue(
                "apiserver-kubelet-client",
                "kube-apiserver-kubelet-client",
                orgs=("system:masters",),
            ),
            "front-proxy-client": ca.issue("front-proxy-client", "front-proxy-client"),
            "node": ca.issue("node-client", f"system:node:{NAME}", orgs=("system:nodes",)),
            "node-serving": ca.issue(
                "node-serving", f"system:node:{NAME}", dns=(NAME,), ips=(GATEWAY,), server=True
            ),
            "kube-proxy": ca.issue("kube-proxy", "system:kube-proxy"),
            "coredns": ca.issue("coredns", "system:forecastops-coredns"),
            "metrics-server": ca.issue("metrics-server", "system:forecastops-metrics-server"),
            "metrics-serving": ca.issue(
                "metrics-serving",
                "metrics-server",
                dns=("metrics-server.kube-system.svc",),
                ips=(GATEWAY,),
                server=True,
            ),
        }

    # --- after the control plane is up ----------------------------------------------------
    def start(self, pki: dict[str, KeyPair], timeout: float = 180) -> None:
        started = time.monotonic()
        c = self.cluster
        for sub in ("logs", "kc", "cni/net.d", "cni/ipam", "containerd", "kubelet", "podlogs"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        kcs = {
            who: c._write_kubeconfig(self.dir / "kc" / f"{who}.kubeconfig", c.server, pki[k], cn)
            for who, k, cn in (
                ("kubelet", "node", f"system:node:{NAME}"),
                ("kube-proxy", "kube-proxy", "system:kube-proxy"),
                ("coredns", "coredns", "system:forecastops-coredns"),
                ("metrics-server", "metrics-server", "system:forecastops-metrics-server"),
            )
        }
        self._apply(_rbac_and_services(c.run_dir / "pki" / "ca.crt"))
        ensure_pause_image(c.binaries)
        self._start_containerd()
        t = time.monotonic()
        self._import_images()
        self.table.update(image_import_s=round(time.monotonic() - t, 1))
        self._make_cgroup_root()
        self._start_kubelet(kcs["kubelet"], pki)
        self._start_kube_proxy(kcs["kube-proxy"])
        self._start_coredns(kcs["coredns"])
        self._start_metrics_server(kcs["metrics-server"], pki)
        ready = self.wait_ready(timeout)
        self.table.update(node_ready_s=round(ready, 1), up_s=round(time.monotonic() - started, 1))
        log(f"real node {NAME} Ready {ready:.1f}s after the kubelet started")

    def _apply(self, manifests: str) -> None:
        res = self.cluster.kubectl("apply", "-f", "-", input=manifests, check=False)
        if res.returncode != 0:
            raise NodeError(f"kubectl apply failed: {res.stderr.strip()}")

    def _start_containerd(self) -> None:
        d = self.dir / "containerd"
        conf = d / "containerd.toml"
        conf.write_text(
            _containerd_config(d, self.socket, self.dir / "cni" / "net.d", pause_image())
        )
        (self.dir / "cni" / "net.d" / "10-forecastops.conflist").write_text(
            json.dumps(_cni_config(self.dir / "cni" / "ipam"), indent=2)
        )
        log(f"starting containerd ({self.socket})")
        p = self.table.spawn(
            "containerd",
            [shutil.which("containerd") or "containerd", "-c", str(conf)],
            env=_no_egress_env(),
        )
        self._wait(p, lambda: self._ctr("version").returncode == 0, "its socket", 30)

    def _ctr(self, *args: str, input: bytes | None = None, timeout: float = 60):
        return subprocess.run(
            ["ctr", "--address", str(self.socket), "-n", "k8s.io", *args],
            input=input,
            capture_output=True,
            timeout=timeout,
        )

    def _import_images(self) -> None:
        from devenv.images import OPERATOR_IMAGE, SERVER_IMAGE, container_env, podman_argv

        for image in (pause_image(), SERVER_IMAGE, OPERATOR_IMAGE):
            if not _podman_has(image):
                if image == pause_image():
                    raise NodeError(f"{image} is not in podman's storage (make binaries)")
                log(f"{image} not in podman's storage: not imported")
                continue
            t = time.monotonic()
            save = subprocess.Popen(
                [*podman_argv(), "save", "--format", "docker-archive", image],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env=container_env(),
            )
            imp = subprocess.run(
                ["ctr", "--address", str(self.socket), "-n", "k8s.io", "images", "import", "-"],
                stdin=save.stdout,
                capture_output=True,
                timeout=600,
            )
            assert save.stdout is not None
            save.stdout.close()
            save.wait()
            if imp.returncode != 0 or save.returncode != 0:
                raise NodeError(f"importing {image} failed: {imp.stderr.decode()[-2000:]}")
            log(f"imported {image} into containerd in {time.monotonic() - t:.1f}s")

    def _make_cgroup_root(self) -> None:
        made = []
        for ctrl in CGROUP_FS.iterdir():
            if ctrl.is_symlink() or not ctrl.is_dir():
                continue
            if not (ctrl / "cgroup.procs").exists():
                continue
            target = ctrl / CGROUP_ROOT
            if not target.exists():
                target.mkdir()
                made.append(str(target))
        self.table.update(cgroups=made)

    def _start_kubelet(self, kubeconfig: Path, pki: dict[str, KeyPair]) -> None:
        ports = {"kubelet": free_port(), "healthz": free_port()}
        self.table.update(ports=ports)
        resolv = self.dir / "resolv.conf"
        resolv.write_text("")  # pods get only the cluster DNS, no host resolver
        cfg = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "address": GATEWAY,
            "port": ports["kubelet"],
            "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1",
            "healthzPort": ports["healthz"],
            "authentication": {
                "anonymous": {"enabled": False},
                "webhook": {"enabled": True},
                "x509": {"clientCAFile": str(self.cluster.run_dir / "pki" / "ca.crt")},
            },
            "authorization": {"mode": "Webhook"},
            "tlsCertFile": str(pki["node-serving"].cert),
            "tlsPrivateKeyFile": str(pki["node-serving"].key),
            "cgroupDriver": "cgroupfs",
            "cgroupRoot": f"/{CGROUP_ROOT}",
            "failCgroupV1": False,
            "failSwapOn": False,
            "containerRuntimeEndpoint": f"unix://{self.socket}",
            "clusterDNS": [DNS_IP],
            "clusterDomain": CLUSTER_DOMAIN,
            "resolvConf": str(resolv),
            "registerWithTaints": [TAINT],
            "podLogsDir": str(self.dir / "podlogs"),
            "volumePluginDir": str(self.kubelet_root / "volume-plugins"),
            "oomScoreAdj": 0,
            "maxPods": 30,
            "serializeImagePulls": False,
            "imageGCHighThresholdPercent": 99,
            "imageGCLowThresholdPercent": 98,
            "evictionHard": {
                "memory.available": "200Mi",
                "nodefs.available": "1%",
                "imagefs.available": "1%",
            },
            "rotateCertificates": False,
            "serverTLSBootstrap": False,
            "shutdownGracePeriod": "0s",
            "localStorageCapacityIsolation": True,
            "staticPodPath": "",
        }
        conf = self.dir / "kubelet.yaml"
        conf.write_text(yaml.safe_dump(cfg))
        log(f"starting kubelet {versions()['KUBERNETES_VERSION']} as node {NAME}")
        self.table.spawn(
            "kubelet",
            [
                str(self.cluster.binary("kubelet")),
                f"--config={conf}",
                f"--kubeconfig={kubeconfig}",
                f"--root-dir={self.kubelet_root}",
                f"--cert-dir={self.dir / 'kubelet-pki'}",
                f"--hostname-override={NAME}",
                f"--node-ip={GATEWAY}",
                f"--node-labels={LABEL[0]}={LABEL[1]},type=real",
                "--v=1",
            ],
        )
        self.table.update(kubelet_started=time.time())

    def wait_ready(self, timeout: float = 180) -> float:
        kubelet = next(p for p in self.table.procs() if p.name == "kubelet")
        started = self.table.read().get("kubelet_started", time.time())

        def ready() -> bool:
            node = self.cluster.api(f"/api/v1/nodes/{NAME}")
            conds = node.get("status", {}).get("conditions", [])
            return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)

        self._wait(kubelet, ready, f"node {NAME} Ready", timeout)
        return time.time() - started

    def _start_kube_proxy(self, kubeconfig: Path) -> None:
        ports = self.table.read().get("ports", {})
        ports |= {"kube-proxy-healthz": free_port(), "kube-proxy-metrics": free_port()}
        self.table.update(ports=ports)
        cfg = {
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
            "kind": "KubeProxyConfiguration",
            "clientConnection": {"kubeconfig": str(kubeconfig)},
            "hostnameOverride": NAME,
            "bindAddress": GATEWAY,
            "healthzBindAddress": f"127.0.0.1:{ports['kube-proxy-healthz']}",
            "metricsBindAddress": f"127.0.0.1:{ports['kube-proxy-metrics']}",
            "mode": "iptables",
            "clusterCIDR": SUBNET,
            "detectLocalMode": "ClusterCIDR",
            "nodePortAddresses": [f"{GATEWAY}/32"],
            "oomScoreAdj": 0,
            "iptables": {
                "masqueradeAll": True,
                "localhostNodePorts": False,
                "syncPeriod": "30s",
                "minSyncPeriod": "0s",
            },
            # 0: leave the host's conntrack sysctls as they are
            "conntrack": {
                "maxPerCore": 0,
                "min": 0,
                "tcpEstablishedTimeout": "0s",
                "tcpCloseWaitTimeout": "0s",
                "udpTimeout": "0s",
                "udpStreamTimeout": "0s",
            },
        }
        conf = self.dir / "kube-proxy.yaml"
        conf.write_text(yaml.safe_dump(cfg))
        log("starting kube-proxy (iptables)")
        p = self.table.spawn(
            "kube-proxy", [str(self.cluster.binary("kube-proxy")), f"--config={conf}", "--v=1"]
        )
        url = f"http://127.0.0.1:{ports['kube-proxy-healthz']}/livez"
        self._wait(p, lambda: _http_ok(url), "/livez", 60)

    def _start_coredns(self, kubeconfig: Path) -> None:
        corefile = self.dir / "Corefile"
        corefile.write_text(
            f""".:53 {{
    bind {GATEWAY}
    errors
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        kubeconfig {kubeconfig} forecastops-local
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }}
    cache 5
}}
"""
        )
        log(f"starting CoreDNS {versions()['COREDNS_VERSION']} on {GATEWAY}:53")
        p = self.table.spawn(
            "coredns", [str(self.cluster.binary("coredns")), "-conf", str(corefile)]
        )
        name = f"kubernetes.default.svc.{CLUSTER_DOMAIN}"
        self._wait(p, lambda: dns_query(GATEWAY, name) == ["10.96.0.1"], f"{name}", 60)

    def _start_metrics_server(self, kubeconfig: Path, pki: dict[str, KeyPair]) -> None:
        port = free_port()
        self.table.update(metrics_port=port)
        c = self.cluster
        self._apply(_metrics_service(port, c.run_dir / "pki" / "ca.crt"))
        log(f"starting metrics-server {versions()['METRICS_SERVER_VERSION']} on {GATEWAY}:{port}")
        p = self.table.spawn(
            "metrics-server",
            [
                str(c.binary("metrics-server")),
                f"--kubeconfig={kubeconfig}",
                f"--authentication-kubeconfig={kubeconfig}",
                f"--authorization-kubeconfig={kubeconfig}",
                f"--bind-address={GATEWAY}",
                f"--secure-port={port}",
                f"--tls-cert-file={pki['metrics-serving'].cert}",
                f"--tls-private-key-file={pki['metrics-serving'].key}",
                f"--kubelet-certificate-authority={c.run_dir / 'pki' / 'ca.crt'}",
                "--kubelet-preferred-address-types=InternalIP",
                "--kubelet-use-node-status-port",
                f"--node-selector={LABEL[0]}={LABEL[1]}",
                "--metric-resolution=15s",
                "--kubelet-request-timeout=5s",
                "--v=1",
            ],
        )
        self._wait(p, lambda: _tcp_open(GATEWAY, port), f"{GATEWAY}:{port} open", 60)

    # --- down -----------------------------------------------------------------------------
    def down(self, quiet: bool = False) -> list[str]:
        """Remove everything the node made; returns what could not be removed."""
        state = self.table.read()
        if not state:
            return []
        problems: list[str] = []
        procs = self.table.procs()
        order = ["metrics-server", "coredns", "kube-proxy", "kubelet"]
        for name in order:
            for p in procs:
                if p.name == name and self.table.alive(p):
                    self.table.stop(p, grace=15)
                    if not quiet:
                        log(f"stopped {p.name} (pid {p.pid})")
        containerd = next((p for p in procs if p.name == "containerd"), None)
        sandboxes: list[str] = []
        if containerd and self.table.alive(containerd):
            sandboxes = self._ctr("containers", "ls", "-q").stdout.decode().split()
            self._kill_containers()
            self.table.stop(containerd, grace=15)
            if not quiet:
                log(f"stopped containerd (pid {containerd.pid})")
        # shims whose address is our socket (they outlive containerd by design)
        for line in _our_processes((f"-address {self.socket}",)):
            with contextlib.suppress(ProcessLookupError, ValueError):
                terminate(int(line.split()[0]), grace=5)
        bridge_there = _run("ip", "link", "show", BRIDGE, check=False).returncode == 0
        if state.get("made_bridge") and bridge_there:
            _run("ip", "link", "del", BRIDGE, check=False)
        self._unmount()
        for name in set(p.name for p in NETNS_DIR.glob("cni-*")) - set(state["baseline_netns"]):
            with contextlib.suppress(OSError):
                (NETNS_DIR / name).unlink()
        # containerd's own records of sandboxes and tasks, should it have died first
        d = self.dir / "containerd"
        for records in (
            d / "root" / "io.containerd.grpc.v1.cri" / "sandboxes",
            d / "state" / "io.containerd.runtime.v2.task" / "k8s.io",
        ):
            if records.is_dir():
                sandboxes += [p.name for p in records.iterdir() if len(p.name) == 64]
        # libcni's result cache (a fixed dir): <network>-<sandbox id>-<ifname>, for our
        # network and for containerd's loopback network "cni-loopback"
        for path in CNI_RESULTS.glob("*"):
            ours = state.get("made_bridge") and path.name.startswith(CNI_NETWORK + "-")
            if ours or any(i in path.name for i in sandboxes):
                path.unlink(missing_ok=True)
        if state.get("made_var_lib_kubelet") and KUBELET_FIXED_DIR.is_dir():
            shutil.rmtree(KUBELET_FIXED_DIR, ignore_errors=True)
        if SHIM_SOCKETS.is_dir():
            for sock in SHIM_SOCKETS.iterdir():
                if sock.name not in state["baseline_shims"]:
                    sock.unlink(missing_ok=True)
        if state.get("made_shim_dir") and SHIM_SOCKETS.parent.is_dir():
            # only empty directories: whatever another containerd put there stays
            for sub in sorted(SHIM_SOCKETS.parent.rglob("*"), key=lambda p: -len(p.parts)):
                with contextlib.suppress(OSError):
                    sub.rmdir()
            with contextlib.suppress(OSError):
                SHIM_SOCKETS.parent.rmdir()
        problems += self._remove_cgroups(state)
        problems += self._remove_chains(state)
        shutil.rmtree(self.dir / "containerd", ignore_errors=True)
        shutil.rmtree(self.kubelet_root, ignore_errors=True)
        left = [p for p in procs if self.table.alive(p)]
        problems += [f"process {p.name} ({p.pid}) still alive" for p in left]
        self.state_file.unlink(missing_ok=True)
        if problems and not quiet:
            log("could not remove: " + "; ".join(problems))
        return problems

    def _kill_containers(self) -> None:
        res = self._ctr("tasks", "ls", "-q")
        for task in res.stdout.decode().split():
            self._ctr("tasks", "kill", "-s", "SIGKILL", task)
        deadline = time.monotonic() + 15
        for task in res.stdout.decode().split():
            while self._ctr("tasks", "delete", task).returncode != 0:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.3)

    def _unmount(self) -> None:
        dirs = (str(self.dir) + "/", "/run/containerd/")
        ours = [m for m in _mounts(dirs)]
        netns = [
            str(NETNS_DIR / n)
            for n in set(p.name for p in NETNS_DIR.glob("cni-*"))
            - set(self.table.read().get("baseline_netns", []))
        ]
        for target in sorted(ours + [m for m in _mounts(tuple(netns)) if netns], reverse=True):
            if subprocess.run(["umount", target], capture_output=True).returncode != 0:
                subprocess.run(["umount", "-l", target], capture_output=True)

    def _remove_cgroups(self, state: dict) -> list[str]:
        # containers left running (containerd died before down could stop them) are ours:
        # every process in our cgroup tree is killed before the tree is removed
        for root in state.get("cgroups", []):
            for procs in Path(root).rglob("cgroup.procs"):
                with contextlib.suppress(OSError):
                    for pid in procs.read_text().split():
                        with contextlib.suppress(ProcessLookupError, ValueError):
                            os.kill(int(pid), signal.SIGKILL)
        problems = []
        for root in state.get("cgroups", []):
            root_path = Path(root)
            if not root_path.exists():
                continue
            dirs = sorted(
                (p for p in root_path.rglob("*") if p.is_dir()),
                key=lambda p: len(p.parts),
                reverse=True,
            )
            for d in [*dirs, root_path]:
                for _ in range(20):
                    try:
                        d.rmdir()
                        break
                    except FileNotFoundError:
                        break
                    except OSError:
                        time.sleep(0.2)
                else:
                    problems.append(f"cgroup {d}")
        return problems

    def _remove_chains(self, state: dict) -> list[str]:
        """kube-proxy's and our chains made since `up`. CNI-* chains are listed by
        host_footprint() but never removed here: our CNI config makes none (no ipMasq,
        portmap or firewall plugin), and podman's containers own theirs."""
        if not state.get("made_bridge"):
            return []
        kp = self.cluster.binary("kube-proxy")
        if kp.exists() and any(p.get("name") == "kube-proxy" for p in state.get("procs", [])):
            subprocess.run([str(kp), "--cleanup"], capture_output=True, timeout=60)
        baseline = set(state.get("baseline_chains", []))

        def made_by_us() -> list[str]:
            return [
                c
                for c in _chains()
                if c not in baseline and c.split("/")[2].startswith(("KUBE-", "FOPS-"))
            ]

        for _ in range(3):
            new = made_by_us()
            if not new:
                return []
            # first drop every jump into a new chain from any chain, then flush and delete
            for entry in new:
                tool, table, chain = entry.split("/")
                save = _run(f"{tool}-save", "-t", table, check=False).stdout.decode()
                for line in save.splitlines():
                    args = _split_rule(line) if line.startswith("-A ") else []
                    jumps = any(
                        a in ("-j", "-g") and b == chain for a, b in itertools.pairwise(args)
                    )
                    if jumps and args[1] not in {c.split("/")[2] for c in new}:
                        subprocess.run(
                            [tool, "-w", "-t", table, "-D", *args[1:]], capture_output=True
                        )
            for entry in new:
                tool, table, chain = entry.split("/")
                subprocess.run([tool, "-w", "-t", table, "-F", chain], capture_output=True)
            for entry in new:
                tool, table, chain = entry.split("/")
                subprocess.run([tool, "-w", "-t", table, "-X", chain], capture_output=True)
        return [f"chain {c}" for c in made_by_us()]


def _split_rule(line: str) -> list[str]:
    import shlex

    try:
        return shlex.split(line)
    except ValueError:
        return []


# Nothing listens on the discard port: an image pull that is not served from containerd's
# own store fails at once on loopback, without even resolving the registry's name.
PULL_PROXY = "http://127.0.0.1:9"


def _no_egress_env() -> dict[str, str]:
    """containerd's environment: every registry request goes to PULL_PROXY (loopback)."""
    env = {k: v for k, v in os.environ.items() if k.lower() not in {"no_proxy"}}
    for key in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        env[key] = PULL_PROXY
    env["NO_PROXY"] = env["no_proxy"] = ""
    return env


def _tcp_open(host: str, port: int) -> bool:
    with socket.create_connection((host, port), timeout=2):
        return True


def _http_ok(url: str) -> bool:
    import urllib.request

    with urllib.request.urlopen(url, timeout=2) as resp:
        return resp.status == 200


def dns_query(server: str, name: str, timeout: float = 2.0, port: int = 53) -> list[str]:
    """The A records of `name` from the DNS server at `server`:`port` (one UDP query)."""
    qid = int.from_bytes(os.urandom(2), "big")
    qname = b"".join(bytes([len(p)]) + p.encode() for p in name.rstrip(".").split(".")) + b"\0"
    packet = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + qname + struct.pack(">HH", 1, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(packet, (server, port))
        data, _ = s.recvfrom(4096)
    _, flags, qd, an, _, _ = struct.unpack(">HHHHHH", data[:12])
    if flags & 0x000F:
        return []
    pos = 12
    for _ in range(qd):
        while data[pos]:
            pos += data[pos] + 1
        pos += 5
    out = []
    for _ in range(an):
        if data[pos] & 0xC0 == 0xC0:
            pos += 2
        else:
            while data[pos]:
                pos += data[pos] + 1
            pos += 1
        rtype, _, _, rdlen = struct.unpack(">HHIH", data[pos : pos + 10])
        pos += 10
        if rtype == 1 and rdlen == 4:
            out.append(socket.inet_ntoa(data[pos : pos + 4]))
        pos += rdlen
    return out


def _containerd_config(d: Path, sock: Path, cni_conf: Path, sandbox: str) -> str:
    return f"""version = 2
root = "{d / "root"}"
state = "{d / "state"}"
oom_score = 0
disabled_plugins = [
  "io.containerd.internal.v1.opt",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp",
]

[grpc]
  address = "{sock}"

[ttrpc]
  address = "{sock}.ttrpc"

[debug]
  address = ""

[metrics]
  address = ""

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{sandbox}"
  restrict_oom_score_adj = true
  disable_apparmor = true
  enable_selinux = false
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_cdi = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "/usr/sbin/runc"
        Root = "{d / "runc"}"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_BIN}"
    conf_dir = "{cni_conf}"
    max_conf_num = 1
"""


def _cni_config(ipam_dir: Path) -> dict:
    return {
        "cniVersion": "1.0.0",
        "name": CNI_NETWORK,
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": True,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "dataDir": str(ipam_dir),
                    "ranges": [[{"subnet": SUBNET, "gateway": GATEWAY}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                },
            },
        ],
    }


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def _rbac_and_services(ca: Path) -> str:
    docs = [
        # the apiserver runs RBAC only (no Node authorizer): nodes get system:node
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "forecastops:system:nodes"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "system:node",
            },
            "subjects": [
                {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:nodes"}
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "forecastops:coredns"},
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["services", "pods", "namespaces", "endpoints"],
                    "verbs": ["list", "watch"],
                },
                {
                    "apiGroups": ["discovery.k8s.io"],
                    "resources": ["endpointslices"],
                    "verbs": ["list", "watch"],
                },
            ],
        },
        _binding("forecastops:coredns", "forecastops:coredns", "system:forecastops-coredns"),
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "forecastops:metrics-server"},
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["nodes/metrics", "nodes/stats"],
                    "verbs": ["get"],
                },
                {
                    "apiGroups": [""],
                    "resources": ["pods", "nodes", "namespaces", "configmaps"],
                    "verbs": ["get", "list", "watch"],
                },
            ],
        },
        _binding(
            "forecastops:metrics-server",
            "forecastops:metrics-server",
            "system:forecastops-metrics-server",
        ),
        _binding(
            "forecastops:metrics-server:auth-delegator",
            "system:auth-delegator",
            "system:forecastops-metrics-server",
        ),
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {
                "name": "forecastops:metrics-server:auth-reader",
                "namespace": "kube-system",
            },
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "extension-apiserver-authentication-reader",
            },
            "subjects": [
                {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "User",
                    "name": "system:forecastops-metrics-server",
                }
            ],
        },
        # the metrics API aggregates to metrics-server's view of the real node
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {
                "name": "forecastops:aggregated-metrics-reader",
                "labels": {
                    "rbac.authorization.k8s.io/aggregate-to-view": "true",
                    "rbac.authorization.k8s.io/aggregate-to-edit": "true",
                    "rbac.authorization.k8s.io/aggregate-to-admin": "true",
                },
            },
            "rules": [
                {
                    "apiGroups": ["metrics.k8s.io"],
                    "resources": ["pods", "nodes"],
                    "verbs": ["get", "list", "watch"],
                }
            ],
        },
        *_host_service("kube-dns", DNS_IP, [("dns", "UDP", 53), ("dns-tcp", "TCP", 53)]),
    ]
    return "\n---\n".join(yaml.safe_dump(d) for d in docs)


def _binding(name: str, role: str, user: str) -> dict:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
    }


def _host_service(name: str, cluster_ip: str | None, ports: list[tuple[str, str, int]]):
    """A selector-less Service in kube-system whose endpoint is a process on GATEWAY."""
    labels = {"app.kubernetes.io/managed-by": "forecastops-devenv", "k8s-app": name}
    spec: dict = {
        "ports": [
            {"name": n, "protocol": proto, "port": p, "targetPort": p} for n, proto, p in ports
        ]
    }
    if cluster_ip:
        spec["clusterIP"] = cluster_ip
    return [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": "kube-system", "labels": labels},
            "spec": spec,
        },
        {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": f"{name}-host",
                "namespace": "kube-system",
                "labels": {
                    "kubernetes.io/service-name": name,
                    "endpointslice.kubernetes.io/managed-by": "devenv.forecastops.io",
                },
            },
            "addressType": "IPv4",
            "endpoints": [{"addresses": [GATEWAY], "conditions": {"ready": True}}],
            "ports": [{"name": n, "protocol": proto, "port": p} for n, proto, p in ports],
        },
    ]


def _metrics_service(port: int, ca: Path) -> str:
    docs = [
        *_host_service("metrics-server", None, [("https", "TCP", port)]),
        {
            "apiVersion": "apiregistration.k8s.io/v1",
            "kind": "APIService",
            "metadata": {"name": "v1beta1.metrics.k8s.io"},
            "spec": {
                "group": "metrics.k8s.io",
                "version": "v1beta1",
                "groupPriorityMinimum": 100,
                "versionPriority": 100,
                "caBundle": _b64(ca),
                "service": {"name": "metrics-server", "namespace": "kube-system", "port": port},
            },
        },
    ]
    return "\n---\n".join(yaml.safe_dump(d) for d in docs)
