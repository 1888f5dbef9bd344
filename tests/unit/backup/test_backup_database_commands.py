"""pg_dump / pg_restore command lines and the other pure helpers of the database module."""

from __future__ import annotations

from pathlib import Path

import pytest
from forecastops.backup.database import (
    Table,
    data_entries,
    find_tool,
    libpq_environment,
    major_version,
    parse_tool_version,
    pg_dump_command,
    pg_restore_command,
    quote_ident,
    split_qualified,
    tool_version_problem,
)
from forecastops.backup.errors import UsageError


@pytest.mark.parametrize(
    ("name", "quoted"),
    [
        ("prediction_log", "prediction_log"),
        ("_t1$", "_t1$"),
        ("Prediction", '"Prediction"'),
        ("with space", '"with space"'),
        ('q"uote', '"q""uote"'),
        ("1abc", '"1abc"'),
    ],
)
def test_quote_ident(name: str, quoted: str) -> None:
    assert quote_ident(name) == quoted


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("public.prediction_log", ("public", "prediction_log")),
        ('"My Schema"."T.1"', ("My Schema", "T.1")),
        ('public."q""uote"', ("public", 'q"uote')),
    ],
)
def test_split_qualified_inverts_qualified(text: str, parts: tuple[str, str]) -> None:
    assert split_qualified(text) == parts
    assert Table(*parts).qualified == text


@pytest.mark.parametrize("text", ["prediction_log", "a.b.c", ""])
def test_split_qualified_needs_two_parts(text: str) -> None:
    with pytest.raises(ValueError, match=r"schema\.table"):
        split_qualified(text)


def test_dump_pattern_matches_literally() -> None:
    # pg_dump patterns treat * ? . as wildcards outside double quotes
    assert Table("public", "log_*").dump_pattern() == '"public"."log_*"'
    assert Table("s", 'a"b').dump_pattern() == '"s"."a""b"'


@pytest.mark.parametrize(
    ("output", "version"),
    [
        ("pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)\n", "15.18"),
        ("pg_restore (PostgreSQL) 16.4\n", "16.4"),
        ("pg_dump (PostgreSQL) 9.6.24\n", "9.6.24"),
    ],
)
def test_parse_tool_version(output: str, version: str) -> None:
    assert parse_tool_version(output) == version


def test_parse_tool_version_refuses_other_output() -> None:
    with pytest.raises(ValueError, match="not a PostgreSQL tool version"):
        parse_tool_version("bash: pg_dump: command not found")


@pytest.mark.parametrize(
    ("tool", "other", "problem"),
    [
        ("15.18", "15.2", False),
        ("16.1", "15.18", False),  # newer tools read older servers and dumps
        ("15.18", "16.0", True),
        ("9.6.24", "10.1", True),
    ],
)
def test_tool_version_problem(tool: str, other: str, problem: bool) -> None:
    message = tool_version_problem("pg_dump", tool, "the server", other)
    assert (message is not None) == problem
    if message:
        assert f"postgresql-client-{major_version(other)}" in message


def test_libpq_environment_moves_the_password_out_of_the_command_line() -> None:
    conninfo, env = libpq_environment(
        "postgresql://app:s3cr%40t@db.example:5433/predlog?sslmode=require", {"PATH": "/bin"}
    )
    assert "s3cr" not in conninfo
    assert env == {"PATH": "/bin", "PGPASSWORD": "s3cr@t"}
    for part in ("host=db.example", "port=5433", "dbname=predlog", "user=app", "sslmode=require"):
        assert part in conninfo
    assert "application_name=forecastctl-backup" in conninfo


def test_libpq_environment_without_a_password() -> None:
    conninfo, env = libpq_environment("postgresql://app@127.0.0.1/db", {})
    assert "PGPASSWORD" not in env and "user=app" in conninfo


def test_libpq_environment_refuses_garbage_without_echoing_it() -> None:
    with pytest.raises(UsageError) as caught:
        libpq_environment("postgresql://u:secret@[::1/db", {})
    assert "secret" not in str(caught.value)


def test_pg_dump_command() -> None:
    tables = [Table("public", "t2"), Table("public", "t1", "p")]
    command = pg_dump_command("/usr/bin/pg_dump", "host=h dbname=d", "00000003-1", tables, 6)
    assert command == [
        "/usr/bin/pg_dump",
        "--format=custom",
        "--compress=6",
        "--snapshot=00000003-1",
        "--lock-wait-timeout=60s",
        "--no-password",
        "--strict-names",
        '--table="public"."t1"',
        '--table="public"."t2"',
        "--dbname=host=h dbname=d",
    ]


@pytest.mark.parametrize(("privileges", "extra"), [(True, []), (False, ["--no-privileges"])])
def test_pg_restore_command(privileges: bool, extra: list[str]) -> None:
    command = pg_restore_command("pg_restore", "dbname=d", privileges=privileges)
    assert command == [
        "pg_restore",
        "--clean",
        "--if-exists",
        "--no-owner",
        *extra,
        "--single-transaction",
        "--exit-on-error",
        "--no-password",
        "--dbname=dbname=d",
    ]


def test_data_entries() -> None:
    toc = [
        ";",
        "; Archive created at 2025-01-31 02:00:00 UTC",
        "215; 1259 16431 TABLE public prediction_log forecastops",
        "3405; 0 16435 TABLE DATA public prediction_log_p20250131 forecastops",
        "3404; 0 16423 TABLE DATA public schema_migrations forecastops",
        "3357; 0 0 SEQUENCE SET public t_id_seq forecastops",
    ]
    assert data_entries(toc) == {"public.prediction_log_p20250131", "public.schema_migrations"}


def test_find_tool(tmp_path: Path) -> None:
    tool = tmp_path / "pg_dump"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    assert find_tool("pg_dump", server_major=15, bindir=tmp_path) == str(tool)
    with pytest.raises(UsageError, match="pg_restore not found"):
        find_tool("pg_restore", server_major=15, bindir=tmp_path)  # no PATH fallback
