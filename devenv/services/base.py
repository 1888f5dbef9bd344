"""The base of the real test servers: `Server` starts one in its own process group in a
work directory, waits until it is ready, and stops it by pid, never by name."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Self

from devenv.paths import free_port

LOOPBACK = "127.0.0.1"
DEPS_HINT = "run `make deps` (hack/install-system-deps.sh)"


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

    def __init__(
        self, workdir: Path, *, host: str = LOOPBACK, startup_timeout: float = 30.0
    ) -> None:
        self.workdir = Path(workdir)
        # the one address it listens on: loopback, or a real node's bridge gateway, which
        # both this host and the node's pods reach
        self.host = host
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
