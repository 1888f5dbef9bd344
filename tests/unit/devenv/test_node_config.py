"""devenv/node.py without root: the configs it writes and its DNS client's parsing."""

from __future__ import annotations

import socket
import struct
import threading
import tomllib
from pathlib import Path

from devenv.cluster import LocalCluster
from devenv.node import (
    BRIDGE,
    GATEWAY,
    PULL_PROXY,
    SUBNET,
    _cni_config,
    _containerd_config,
    _no_egress_env,
    _rbac_and_services,
    dns_query,
)


def test_containerd_config_is_ours_and_fits_this_machine(tmp_path: Path) -> None:
    conf = tomllib.loads(
        _containerd_config(tmp_path, tmp_path / "c.sock", tmp_path / "net.d", "localhost/p:1")
    )
    assert conf["root"].startswith(str(tmp_path)) and conf["state"].startswith(str(tmp_path))
    assert conf["grpc"]["address"] == str(tmp_path / "c.sock")
    cri = conf["plugins"]["io.containerd.grpc.v1.cri"]
    assert cri["restrict_oom_score_adj"] is True
    assert cri["sandbox_image"] == "localhost/p:1"
    assert cri["stream_server_address"] == "127.0.0.1"
    assert cri["cni"] == {"bin_dir": "/usr/lib/cni", "conf_dir": str(tmp_path / "net.d")} | {
        "max_conf_num": 1
    }
    runc = cri["containerd"]["runtimes"]["runc"]["options"]
    assert runc["SystemdCgroup"] is False
    assert runc["Root"].startswith(str(tmp_path))  # not /run/containerd/runc


def test_cni_bridge_is_ours_without_masquerade(tmp_path: Path) -> None:
    (bridge,) = _cni_config(tmp_path)["plugins"]
    assert bridge["bridge"] == BRIDGE and bridge["ipMasq"] is False
    assert bridge["ipam"]["dataDir"] == str(tmp_path)
    assert bridge["ipam"]["ranges"] == [[{"subnet": SUBNET, "gateway": GATEWAY}]]


def test_containerd_pulls_only_through_a_closed_loopback_port(monkeypatch) -> None:
    monkeypatch.setenv("NO_PROXY", "*")
    env = _no_egress_env()
    assert PULL_PROXY.startswith("http://127.0.0.1:")
    assert env["HTTPS_PROXY"] == env["https_proxy"] == env["HTTP_PROXY"] == PULL_PROXY
    assert env["NO_PROXY"] == ""


def test_nodes_are_bound_to_system_node_and_kube_dns_points_at_the_gateway(tmp_path) -> None:
    import yaml

    ca = tmp_path / "ca.crt"
    ca.write_text("x")
    docs = list(yaml.safe_load_all(_rbac_and_services(ca)))
    binding = next(d for d in docs if d["metadata"]["name"] == "forecastops:system:nodes")
    assert binding["roleRef"]["name"] == "system:node"
    assert binding["subjects"][0]["name"] == "system:nodes"
    svc = next(d for d in docs if d["kind"] == "Service")
    assert svc["spec"]["clusterIP"] == "10.96.0.10"
    (slice_,) = [d for d in docs if d["kind"] == "EndpointSlice"]
    assert slice_["endpoints"][0]["addresses"] == [GATEWAY]


def test_the_real_node_is_off_unless_asked(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("FORECASTOPS_REAL_NODE", raising=False)
    assert LocalCluster(state_dir=tmp_path).real_node is False
    assert LocalCluster(state_dir=tmp_path)._api_host() == "127.0.0.1"
    monkeypatch.setenv("FORECASTOPS_REAL_NODE", "1")
    assert LocalCluster(state_dir=tmp_path).real_node is True
    assert LocalCluster(state_dir=tmp_path)._api_host() == GATEWAY


def test_dns_query_reads_the_a_records_of_an_answer() -> None:
    """A tiny DNS server on loopback answers one A query; the client parses it."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server:
        server.bind(("127.0.0.1", 0))
        port = server.getsockname()[1]

        def answer() -> None:
            data, peer = server.recvfrom(512)
            qid = data[:2]
            question = data[12:]
            header = qid + struct.pack(">HHHHH", 0x8180, 1, 1, 0, 0)
            rr = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 5, 4) + socket.inet_aton("10.96.0.1")
            server.sendto(header + question + rr, peer)

        thread = threading.Thread(target=answer)
        thread.start()
        assert dns_query("127.0.0.1", "kubernetes.default.svc.cluster.local", port=port) == [
            "10.96.0.1"
        ]
        thread.join(5)


def test_a_machine_that_cannot_run_the_node_gets_a_reason(monkeypatch, tmp_path) -> None:
    import devenv.node as node

    monkeypatch.setattr(node.os, "geteuid", lambda: 1000)
    assert "root" in (node.unavailable_reason(tmp_path) or "")
    monkeypatch.setattr(node.os, "geteuid", lambda: 0)
    monkeypatch.setattr(node.shutil, "which", lambda _: None)
    reason = node.unavailable_reason(tmp_path) or ""
    assert "containerd" in reason and "install-node-deps.sh" in reason
