"""Redis as a real test server."""

from __future__ import annotations

import signal
import socket
import subprocess
from pathlib import Path

from devenv.paths import free_port
from devenv.services.base import (
    DEPS_HINT,
    LOOPBACK,
    Server,
    find_binary,
)


class Redis(Server):
    """Redis 7 on 127.0.0.1 without periodic snapshots or AOF.

    stop() is a `SHUTDOWN SAVE`, so data survives a stop/start like the other servers;
    kill() loses it, like a crash of a cache would.
    """

    name = "redis"

    def __init__(
        self, workdir: Path, *, host: str = LOOPBACK, startup_timeout: float = 20.0
    ) -> None:
        super().__init__(workdir, host=host, startup_timeout=startup_timeout)
        self.binary = find_binary("Redis", "redis-server", hint=DEPS_HINT)
        self.port = free_port()
        self.data_dir = self.workdir / "data"

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def _prepare(self) -> None:
        self.data_dir.mkdir(exist_ok=True)

    def _command(self) -> list[str]:
        return [self.binary, "--bind", self.host, "--port", str(self.port), "--save", "",
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
