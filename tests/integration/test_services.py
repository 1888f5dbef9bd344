"""The service fixtures run real servers: talk to each over its port, and check outages.

Every check goes through the network port a product component would use, and every listener
must be on 127.0.0.1 only.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import psycopg
import pytest
import redis
from botocore.exceptions import ClientError

from devenv.services import S3, Postgres, Prometheus, Redis, Server

pytestmark = pytest.mark.services

AUTH_ERRORS = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"}


def listening_addresses(pid: int) -> list[str]:
    """The local addresses of the TCP sockets `pid` listens on, read from /proc.

    Reading the kernel's tables (not the server's config) is what proves nothing is exposed.
    """
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        target = fd.readlink().as_posix() if fd.is_symlink() else ""
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and inode in inodes:  # 0A = LISTEN
                found.append(_decode_address(local))
    return found


def _decode_address(hex_address: str) -> str:
    """/proc/net/tcp{,6} writes addresses as little-endian hex words: 0100007F:1F90."""
    host, port = hex_address.split(":")
    if len(host) == 8:
        host = ".".join(str(b) for b in reversed(bytes.fromhex(host)))
    return f"{host}:{int(port, 16)}"


def assert_loopback_only(server: Server) -> None:
    assert server.pid is not None
    addresses = listening_addresses(server.pid)
    assert addresses, f"{server.name} listens on nothing?"
    assert all(a.startswith("127.0.0.1:") for a in addresses), addresses


# --- PostgreSQL ---------------------------------------------------------------------------------


def test_postgres_answers_on_its_port(postgres: Postgres, pg_database: str) -> None:
    with psycopg.connect(pg_database, connect_timeout=5) as conn:
        version = conn.execute("select version()").fetchone()[0]
        listen = conn.execute("show listen_addresses").fetchone()[0]
    assert version.startswith("PostgreSQL 15")
    assert listen == "127.0.0.1"
    assert pg_database.startswith(f"postgresql://{postgres.user}@127.0.0.1:{postgres.port}/")
    assert isinstance(postgres.has_timescaledb, bool)
    assert_loopback_only(postgres)


def test_pg_database_is_fresh_per_test(pg_database: str) -> None:
    with psycopg.connect(pg_database, connect_timeout=5) as conn:
        tables = conn.execute(
            "select count(*) from information_schema.tables where table_schema = 'public'"
        ).fetchone()[0]
    assert tables == 0


def test_postgres_stop_start_keeps_port_and_data(postgres: Postgres, pg_database: str) -> None:
    with psycopg.connect(pg_database, autocommit=True) as conn:
        conn.execute("create table demand (sku text primary key, units int)")
        conn.execute("insert into demand values ('A-1', 42)")
    port = postgres.port

    postgres.stop()
    assert not postgres.is_running()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(pg_database, connect_timeout=2)

    postgres.start()
    assert postgres.port == port
    with psycopg.connect(pg_database, connect_timeout=5) as conn:
        assert conn.execute("select units from demand where sku = 'A-1'").fetchone() == (42,)


def test_postgres_survives_a_crash(postgres: Postgres, pg_database: str) -> None:
    """kill() is a crash: committed rows must still be there after crash recovery."""
    with psycopg.connect(pg_database, autocommit=True) as conn:
        conn.execute("create table t (x int)")
        conn.execute("insert into t values (7)")
    postgres.kill()
    postgres.ensure_running()
    with psycopg.connect(pg_database, connect_timeout=5) as conn:
        assert conn.execute("select x from t").fetchall() == [(7,)]


# --- Redis --------------------------------------------------------------------------------------


def test_redis_set_get_and_restart(redis_server: Redis) -> None:
    assert redis_server.url == f"redis://127.0.0.1:{redis_server.port}/0"
    client = redis.Redis.from_url(redis_server.url, socket_timeout=5)
    client.set("forecast:sku-1", "12.5")
    assert client.get("forecast:sku-1") == b"12.5"
    assert_loopback_only(redis_server)

    redis_server.stop()
    redis_server.start()
    client = redis.Redis.from_url(redis_server.url, socket_timeout=5)
    assert client.get("forecast:sku-1") == b"12.5"


# --- Prometheus ---------------------------------------------------------------------------------


def test_prometheus_scrapes_a_target_set_at_runtime(prometheus: Prometheus) -> None:
    prometheus.set_targets("self", [f"127.0.0.1:{prometheus.port}"], {"env": "test"})
    up = prometheus.wait_for('up{job="self", env="test"} == 1', timeout=30)
    assert up[0]["metric"]["instance"] == f"127.0.0.1:{prometheus.port}"

    data = prometheus.query('prometheus_build_info{job="self"}')
    assert data["resultType"] == "vector"
    assert data["result"][0]["metric"]["version"].startswith("2.")
    assert_loopback_only(prometheus)


def test_prometheus_lifecycle_api_is_enabled(prometheus: Prometheus) -> None:
    prometheus.reload()
    assert httpx.get(f"{prometheus.url}/-/healthy", timeout=5).status_code == 200


# --- S3 (SeaweedFS) -----------------------------------------------------------------------------


def test_s3_put_and_get(s3: S3, s3_bucket: str) -> None:
    client = s3.client()
    client.put_object(Bucket=s3_bucket, Key="models/v1/model.onnx", Body=b"\x08\x07onnx")
    body = client.get_object(Bucket=s3_bucket, Key="models/v1/model.onnx")["Body"].read()
    assert body == b"\x08\x07onnx"
    assert s3.endpoint_url == f"http://127.0.0.1:{s3.port}"
    assert_loopback_only(s3)


@pytest.mark.parametrize("wrong", ["secret", "access_key"])
def test_s3_rejects_wrong_credentials(s3: S3, s3_bucket: str, wrong: str) -> None:
    s3.client().put_object(Bucket=s3_bucket, Key="k", Body=b"v")
    if wrong == "secret":
        client = s3.client(secret_key="not-the-secret")
    else:
        client = s3.client(access_key="AKNOTAREALKEY0000000")
    with pytest.raises(ClientError) as failure:
        client.get_object(Bucket=s3_bucket, Key="k")
    assert failure.value.response["Error"]["Code"] in AUTH_ERRORS
    with pytest.raises(ClientError) as failure:
        client.put_object(Bucket=s3_bucket, Key="k2", Body=b"v")
    assert failure.value.response["Error"]["Code"] in AUTH_ERRORS


def test_s3_rejects_anonymous_requests(s3: S3, s3_bucket: str) -> None:
    s3.client().put_object(Bucket=s3_bucket, Key="k", Body=b"v")
    response = httpx.get(f"{s3.endpoint_url}/{s3_bucket}/k", timeout=10)
    assert response.status_code == 403


def test_s3_stop_start_keeps_port_and_objects(s3: S3, s3_bucket: str) -> None:
    s3.client().put_object(Bucket=s3_bucket, Key="backup.tar", Body=b"x" * 1024)
    port = s3.port
    s3.stop()
    s3.start()
    assert s3.port == port
    assert s3.client().get_object(Bucket=s3_bucket, Key="backup.tar")["Body"].read() == b"x" * 1024


# --- outages do not leak into the next test -----------------------------------------------------


def test_outage_left_behind(postgres: Postgres, redis_server: Redis) -> None:
    """Leaves PostgreSQL stopped and Redis killed; the next test must find both back."""
    postgres.stop()
    redis_server.kill()
    assert not postgres.is_running() and not redis_server.is_running()


def test_services_are_back_for_the_next_test(postgres: Postgres, redis_server: Redis) -> None:
    assert postgres.is_running() and redis_server.is_running()
    with psycopg.connect(postgres.url, connect_timeout=5) as conn:
        assert conn.execute("select 1").fetchone() == (1,)
    assert redis.Redis.from_url(redis_server.url, socket_timeout=5).ping()
