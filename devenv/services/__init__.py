"""Real test servers (PostgreSQL, Redis, Prometheus, S3) started in a temp directory.

Every listener is bound to 127.0.0.1 (or, for pods on a real node, to its bridge gateway:
`host=`) on a port picked once per instance, so `stop()` then
`start()` brings the same server back on the same port with the same data: tests simulate
outages ("PostgreSQL stopped under load, then returns") and the code under test must find it
again where it was. Processes are tracked by pid and stopped by pid, never by name.
"""

from devenv.services.base import BinaryNotFound, Server, ServiceError
from devenv.services.postgres import Postgres
from devenv.services.prometheus import Prometheus
from devenv.services.redis import Redis
from devenv.services.s3 import S3

__all__ = ["S3", "BinaryNotFound", "Postgres", "Prometheus", "Redis", "Server", "ServiceError"]
