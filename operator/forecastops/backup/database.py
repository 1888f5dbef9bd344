"""The one module that talks to PostgreSQL: psycopg for the snapshot and row counts,
pg_dump and pg_restore as child processes.

A consistent backup: one REPEATABLE READ transaction exports its snapshot, counts the rows
of every table to dump, and stays open (holding ACCESS SHARE locks on those tables, so
none can be dropped or truncated) until pg_dump, started with ``--snapshot``, has read
them. The counts in the manifest are therefore exactly the rows in the dump.

Passwords never appear on a command line: libpq reads ``PGPASSWORD`` from the child's
environment, and the connection string passed on is stripped of it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from pydantic import SecretStr

from forecastops.backup.errors import AccessDenied, DatabaseError, UsageError

APPLICATION_NAME = "forecastctl-backup"
DEBIAN_PG_ROOT = Path("/usr/lib/postgresql")
LOCK_TIMEOUT = "60s"
STDERR_TAIL = 4000

_TOOL_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+(?:\.\d+)*)")
_DENIED_SQLSTATES = frozenset({"28000", "28P01", "42501"})
_DENIED_MESSAGES = (
    "password authentication failed",
    "no password supplied",
    "permission denied",
    'role "',
    "pg_hba.conf",
)


@dataclass(frozen=True, order=True)
class Table:
    schema: str
    name: str
    kind: str = "r"  # r: a table (or partition) with rows; p: a partitioned parent

    @property
    def qualified(self) -> str:
        return f"{quote_ident(self.schema)}.{quote_ident(self.name)}"

    def dump_pattern(self) -> str:
        """A pg_dump ``--table`` pattern matching exactly this table (no wildcards)."""
        schema, name = (part.replace('"', '""') for part in (self.schema, self.name))
        return f'"{schema}"."{name}"'


@dataclass(frozen=True)
class Snapshot:
    snapshot_id: str
    taken_at: datetime
    server_version: str
    tables: tuple[Table, ...]
    row_counts: Mapping[str, int]  # by Table.qualified, tables of kind r only


# --- pure helpers ------------------------------------------------------------------------


def quote_ident(name: str) -> str:
    """``prediction_log`` stays as it is; anything unusual is double-quoted, as PostgreSQL does."""
    if re.fullmatch(r"[a-z_][a-z0-9_$]*", name):
        return name
    return '"' + name.replace('"', '""') + '"'


def split_qualified(name: str) -> tuple[str, str]:
    """``public.prediction_log`` -> (public, prediction_log); quoted parts as written."""
    parts = re.findall(r'"((?:[^"]|"")*)"|([^."]+)', name)
    names = [quoted.replace('""', '"') if quoted else plain for quoted, plain in parts]
    if len(names) != 2:
        raise ValueError(f"{name!r} is not schema.table")
    return names[0], names[1]


def parse_tool_version(output: str) -> str:
    """``pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)`` -> ``15.18``."""
    match = _TOOL_VERSION.search(output)
    if not match:
        raise ValueError(f"not a PostgreSQL tool version: {output.strip()!r}")
    return match.group(1)


def major_version(version: str) -> int:
    """``15.18`` -> 15; ``9.6.24`` -> 9."""
    return int(version.split(".")[0])


def tool_version_problem(
    tool: str, tool_version: str, other: str, other_version: str
) -> str | None:
    """Why `tool` at `tool_version` cannot read what `other` (a server or a dump) made."""
    if major_version(tool_version) < major_version(other_version):
        return (
            f"{tool} {tool_version} is older than {other} {other_version}: install the "
            f"PostgreSQL {major_version(other_version)} client tools "
            f"(postgresql-client-{major_version(other_version)}) or set "
            "FORECASTOPS_BACKUP_PG_BINDIR"
        )
    return None


def classify_failure(
    sqlstate: str | None, message: str
) -> type[DatabaseError] | type[AccessDenied]:
    lowered = message.lower()
    if sqlstate in _DENIED_SQLSTATES or any(text in lowered for text in _DENIED_MESSAGES):
        return AccessDenied
    return DatabaseError


def libpq_environment(url: str, base: Mapping[str, str]) -> tuple[str, dict[str, str]]:
    """The connection string without its password, and an environment that carries it."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    try:
        params = conninfo_to_dict(url)
    except Exception as exc:
        raise UsageError(f"the database URL is not valid: {type(exc).__name__}") from None
    env = dict(base)
    password = params.pop("password", None)
    if password is not None:
        env["PGPASSWORD"] = str(password)
    params.setdefault("application_name", APPLICATION_NAME)
    return make_conninfo(**{k: str(v) for k, v in params.items()}), env


def pg_dump_command(
    binary: str, conninfo: str, snapshot_id: str, tables: Sequence[Table], compress_level: int
) -> list[str]:
    return [
        binary,
        "--format=custom",
        f"--compress={compress_level}",
        f"--snapshot={snapshot_id}",
        f"--lock-wait-timeout={LOCK_TIMEOUT}",
        "--no-password",
        "--strict-names",  # every table named must be found
        *(f"--table={table.dump_pattern()}" for table in sorted(tables)),
        f"--dbname={conninfo}",
    ]


def pg_restore_command(binary: str, conninfo: str, *, privileges: bool = True) -> list[str]:
    """Restore from stdin in one transaction: all of it, or (on any error) nothing."""
    return [
        binary,
        "--clean",
        "--if-exists",
        "--no-owner",
        *([] if privileges else ["--no-privileges"]),
        "--single-transaction",
        "--exit-on-error",
        "--no-password",
        f"--dbname={conninfo}",
    ]


def find_tool(name: str, *, server_major: int | None, bindir: Path | None) -> str:
    """`bindir`/name; else Debian's /usr/lib/postgresql/<server major>/bin/name; else PATH."""
    candidates = []
    if bindir is not None:
        candidates.append(bindir / name)
    elif server_major is not None:
        candidates.append(DEBIAN_PG_ROOT / str(server_major) / "bin" / name)
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    if bindir is None and (found := shutil.which(name)):
        return found
    where = bindir or "PATH"
    raise UsageError(f"{name} not found in {where}: install the PostgreSQL client tools")


def tool_version(binary: str) -> str:
    try:
        output = subprocess.run(
            [binary, "--version"], capture_output=True, text=True, check=True, timeout=30
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise UsageError(f"cannot run {binary} --version: {exc}") from None
    return parse_tool_version(output)


# --- the snapshot --------------------------------------------------------------------------

_RESOLVE_SQL = """
WITH RECURSIVE roots AS (
    SELECT to_regclass(name) AS oid, name FROM unnest(%s::text[]) AS name
), tree AS (
    SELECT oid FROM roots WHERE oid IS NOT NULL
    UNION
    SELECT i.inhrelid FROM pg_inherits i JOIN tree t ON i.inhparent = t.oid
)
SELECT n.nspname, c.relname, c.relkind::text
FROM tree JOIN pg_class c ON c.oid = tree.oid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p')
"""


@contextmanager
def exported_snapshot(url: SecretStr, roots: Sequence[str]) -> Iterator[Snapshot]:
    """An exported snapshot with the tables `roots` names (and all their partitions) counted.

    The transaction stays open, and the tables locked, until the block ends.
    """
    with _connect(url) as conn:
        conn.read_only = True
        with _database_errors("take a snapshot"):
            conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
            snapshot_id, taken_at, version = conn.execute(
                "SELECT pg_export_snapshot(), now(), current_setting('server_version')"
            ).fetchone()
            _refuse_timescaledb(conn)
            tables = _resolve(conn, roots)
            counts = {table.qualified: _count(conn, table) for table in tables if table.kind == "r"}
        yield Snapshot(snapshot_id, taken_at, version.split()[0], tables, counts)
        conn.rollback()


def count_rows(url: SecretStr, tables: Sequence[str]) -> dict[str, int | None]:
    """Rows in each of `tables` (qualified names) now; None for a table that does not exist."""
    with _connect(url) as conn, _database_errors("count rows"):
        counts: dict[str, int | None] = {}
        for qualified in tables:
            exists = conn.execute("SELECT to_regclass(%s)", [qualified]).fetchone()[0]
            schema, name = split_qualified(qualified)
            counts[qualified] = _count(conn, Table(schema, name)) if exists else None
        conn.rollback()
        return counts


def preflight(url: SecretStr, roots: Sequence[str]) -> str:
    """Fail now, before anything is written, if the backup could not work; the server version."""
    with _connect(url) as conn, _database_errors("inspect the database"):
        _refuse_timescaledb(conn)
        _require_tables(conn, roots)
        version = str(conn.execute("SHOW server_version").fetchone()[0]).split()[0]
        conn.rollback()
        return version


def server_version(url: SecretStr) -> str:
    with _connect(url) as conn, _database_errors("read the server version"):
        return str(conn.execute("SHOW server_version").fetchone()[0]).split()[0]


def ensure_schemas(url: SecretStr, schemas: Sequence[str]) -> None:
    """Create the schemas a table-level dump needs but does not create (for fresh databases)."""
    from psycopg import sql

    with _connect(url) as conn, _database_errors("create schemas"):
        for schema in sorted(set(schemas)):
            # IF NOT EXISTS alone would still need the CREATE privilege on the database
            if not conn.execute(
                "SELECT 1 FROM pg_namespace WHERE nspname = %s", [schema]
            ).fetchone():
                conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        conn.commit()


def _connect(url: SecretStr) -> Any:
    import psycopg

    conninfo, _ = libpq_environment(url.get_secret_value(), {})
    try:
        conn = psycopg.connect(
            url.get_secret_value(), connect_timeout=15, application_name=APPLICATION_NAME
        )
    except psycopg.Error as exc:
        kind = classify_failure(getattr(exc, "sqlstate", None), str(exc))
        where = _where(conninfo)
        raise kind(f"cannot connect to the database {where}: {_first_line(exc)}") from None
    conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    return conn


def _where(conninfo: str) -> str:
    from psycopg.conninfo import conninfo_to_dict

    params = conninfo_to_dict(conninfo)
    return f"{params.get('dbname', '?')} on {params.get('host', 'localhost')}:{params.get('port', 5432)}"


@contextmanager
def _database_errors(action: str) -> Iterator[None]:
    import psycopg

    try:
        yield
    except psycopg.Error as exc:
        kind = classify_failure(getattr(exc, "sqlstate", None), str(exc))
        raise kind(f"cannot {action}: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _refuse_timescaledb(conn: Any) -> None:
    if conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone():
        raise DatabaseError(
            "the database uses TimescaleDB (hypertable chunks live outside the prediction "
            "log's tables); table-level backups of hypertables are not supported yet"
        )


def _require_tables(conn: Any, roots: Sequence[str]) -> None:
    missing = [
        name
        for name in roots
        if conn.execute("SELECT to_regclass(%s)", [name]).fetchone()[0] is None
    ]
    if missing:
        raise DatabaseError(
            f"table(s) {', '.join(missing)} do not exist: has the model server created the "
            "prediction log (it migrates on start)?"
        )


def _resolve(conn: Any, roots: Sequence[str]) -> tuple[Table, ...]:
    _require_tables(conn, roots)
    rows = conn.execute(_RESOLVE_SQL, [list(roots)]).fetchall()
    return tuple(sorted(Table(schema, name, kind) for schema, name, kind in rows))


def _count(conn: Any, table: Table) -> int:
    from psycopg import sql

    query = sql.SQL("SELECT count(*) FROM ONLY {}.{}").format(
        sql.Identifier(table.schema), sql.Identifier(table.name)
    )
    return int(conn.execute(query).fetchone()[0])


# --- pg_dump and pg_restore ---------------------------------------------------------------


class ChildProcess:
    """A pg_dump or pg_restore child; its stderr is collected in the background."""

    def __init__(self, what: str, command: list[str], env: dict[str, str], **pipes: Any) -> None:
        self.what = what
        try:
            self._proc = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, **pipes)
        except OSError as exc:
            raise UsageError(f"cannot start {command[0]}: {exc}") from None
        self._stderr: list[bytes] = []
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    @property
    def stdin(self) -> IO[bytes]:
        assert self._proc.stdin is not None
        return self._proc.stdin

    @property
    def stdout(self) -> IO[bytes]:
        assert self._proc.stdout is not None
        return self._proc.stdout

    def wait(self) -> int:
        code = self._proc.wait()
        self._reader.join(timeout=10)
        return code

    def kill(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()

    def stderr_tail(self) -> str:
        text = b"".join(self._stderr).decode(errors="replace").strip()
        return text[-STDERR_TAIL:]

    def failure(self, code: int) -> DatabaseError:
        detail = self.stderr_tail() or "no message"
        kind = classify_failure(None, detail)
        return kind(f"{self.what} failed (exit {code}): {detail}")

    def _drain(self) -> None:
        assert self._proc.stderr is not None
        for line in self._proc.stderr:
            self._stderr.append(line)


class DumpStream:
    """pg_dump's stdout as a readable stream; at its end, pg_dump's failure raises."""

    def __init__(self, child: ChildProcess) -> None:
        self._child = child

    def read(self, size: int = -1, /) -> bytes:
        data = self._child.stdout.read(size)
        if not data:
            code = self._child.wait()
            if code != 0:
                raise self._child.failure(code)
        return data


@contextmanager
def pg_dump(
    *, binary: str, url: SecretStr, snapshot: Snapshot, compress_level: int
) -> Iterator[DumpStream]:
    """Run pg_dump on the snapshot's tables; the stream ends (or raises) when it does."""
    conninfo, env = libpq_environment(url.get_secret_value(), os.environ)
    command = pg_dump_command(
        binary, conninfo, snapshot.snapshot_id, snapshot.tables, compress_level
    )
    child = ChildProcess("pg_dump", command, env, stdout=subprocess.PIPE)
    try:
        yield DumpStream(child)
    finally:
        child.kill()


class RestoreSink:
    """pg_restore's stdin: `write` chunks, then `finish` (success or raise) or `abort`."""

    def __init__(self, child: ChildProcess) -> None:
        self._child = child

    def write(self, chunk: bytes) -> None:
        try:
            self._child.stdin.write(chunk)
        except BrokenPipeError:  # pg_restore stopped reading: it failed
            raise self._child.failure(self._child.wait()) from None

    def finish(self) -> None:
        with suppress(BrokenPipeError):
            self._child.stdin.close()
        code = self._child.wait()
        if code != 0:
            raise self._child.failure(code)

    def abort(self) -> None:
        """Kill pg_restore before it commits: its transaction rolls back, nothing changes."""
        self._child.kill()


@contextmanager
def pg_restore(*, binary: str, url: SecretStr, privileges: bool = True) -> Iterator[RestoreSink]:
    conninfo, env = libpq_environment(url.get_secret_value(), os.environ)
    command = pg_restore_command(binary, conninfo, privileges=privileges)
    child = ChildProcess(
        "pg_restore", command, env, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL
    )
    try:
        yield RestoreSink(child)
    finally:
        child.kill()


@contextmanager
def pg_restore_list(*, binary: str) -> Iterator[ListSink]:
    """``pg_restore --list`` reading an archive from stdin: checks it and lists its contents."""
    child = ChildProcess(
        "pg_restore --list",
        [binary, "--list"],
        dict(os.environ),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    sink = ListSink(child)
    try:
        yield sink
    finally:
        child.kill()


class ListSink:
    """Feeds an archive to ``pg_restore --list``, which stops reading after the TOC."""

    def __init__(self, child: ChildProcess) -> None:
        self._child = child
        self._open = True
        self._output: list[bytes] = []
        self._reader = threading.Thread(target=self._collect, daemon=True)
        self._reader.start()

    def write(self, chunk: bytes) -> None:
        if not self._open:
            return
        try:
            self._child.stdin.write(chunk)
        except BrokenPipeError:
            self._open = False  # it has read what it needs

    def finish(self) -> list[str]:
        """The archive's table of contents, one line per entry; raises if it is unreadable."""
        if self._open:
            with suppress(BrokenPipeError):
                self._child.stdin.close()
        code = self._child.wait()
        self._reader.join(timeout=10)
        if code != 0:
            raise self._child.failure(code)
        return b"".join(self._output).decode(errors="replace").splitlines()

    def _collect(self) -> None:
        for line in self._child.stdout:
            self._output.append(line)


def data_entries(toc: Sequence[str]) -> set[str]:
    """Qualified tables with a TABLE DATA entry in a ``pg_restore --list`` output."""
    found = set()
    for line in toc:
        match = re.match(r"^\d+; \d+ \d+ TABLE DATA (\S+) (\S+) ", line)
        if match:
            found.add(Table(match.group(1), match.group(2)).qualified)
    return found
