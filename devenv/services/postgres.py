"""PostgreSQL 15 as a real test server."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from devenv.paths import free_port
from devenv.services.base import (
    DEPS_HINT,
    LOOPBACK,
    Server,
    ServiceError,
    find_binary,
)

PG_BINDIR = Path(os.environ.get("FORECASTOPS_PG_BINDIR", "/usr/lib/postgresql/15/bin"))


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
    """PostgreSQL 15 on 127.0.0.1 (or `host`) with trust auth, fsync off, sockets in the temp dir."""

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
        host: str = LOOPBACK,
        startup_timeout: float = 30.0,
    ) -> None:
        super().__init__(workdir, host=host, startup_timeout=startup_timeout)
        self.initdb_bin = find_binary(
            "PostgreSQL", "initdb", extra_dirs=(PG_BINDIR,), hint=DEPS_HINT
        )
        self.postgres_bin = find_binary(
            "PostgreSQL", "postgres", extra_dirs=(PG_BINDIR,), hint=DEPS_HINT
        )
        self.user = user
        self.database = database
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
        if self.host != LOOPBACK:  # a bridge gateway: clients on its subnet (the pods) too
            with (self.data_dir / "pg_hba.conf").open("a") as hba:
                hba.write("host all all samenet trust\n")

    def _command(self) -> list[str]:
        settings = {
            "listen_addresses": self.host,
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
