"""``forecast-server``: build the settings once, assemble the server, run uvicorn.

    forecast-server --model-uri file:///models/model.onnx --host 0.0.0.0 --port 8080

Every other setting comes from ``PREDICTION_*`` environment variables (`settings`).
uvicorn runs with uvloop and httptools, its access log off unless
``PREDICTION_ACCESS_LOG=true``. The server accepts connections once the first attempt
to load the model ended: ready (``/v2/health/ready`` 200) if the model passed its golden
request, otherwise not ready (503, with the reason), while fetch failures are retried
in the background.

``--workers N`` (default 1) starts N processes sharing the port. One process per pod is
the recommendation on Kubernetes (scale with replicas; each pod's metrics are its own).
With N > 1 the metrics go through prometheus-client's multiprocess mode, in the
directory ``PROMETHEUS_MULTIPROC_DIR`` (emptied at start) or a temporary one, and ONNX
Runtime gets cores // (2N) threads per process (at least 1; see
`runtime.default_threads`).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path

from pydantic import ValidationError

from model_server.app import ModelServerApp, create_app
from model_server.cache import PredictionCache
from model_server.contract import CLI_FLAGS, env_name, flag, unknown_variables
from model_server.dataplane import DataPlane
from model_server.metrics import Metrics
from model_server.predlog import PredictionLog
from model_server.runtime import available_cpus, default_threads
from model_server.settings import ServerSettings

log = logging.getLogger("model_server")


def build_app(settings: ServerSettings) -> ModelServerApp:
    """The server for `settings`: metrics, optional cache and prediction log, data plane."""
    metrics = Metrics(
        settings.model_name,
        settings.revision,
        multiprocess_dir=os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if settings.workers > 1
        else None,
    )
    cache = predlog = None
    if settings.redis_url is not None:
        cache = PredictionCache(
            settings.redis_url.get_secret_value(),
            metrics,
            ttl_seconds=settings.cache_ttl_seconds,
            timeout_seconds=settings.cache_timeout_ms / 1000,
        )
    if settings.database_url is not None:
        predlog = PredictionLog(
            settings.database_url.get_secret_value(),
            settings.model_name,
            settings.revision,
            metrics,
            buffer_rows=settings.predlog_buffer_rows,
            batch_rows=settings.predlog_batch_rows,
            flush_seconds=settings.predlog_flush_seconds,
            retention_days=settings.predlog_retention_days,
            store_features=settings.predlog_store_features,
        )
    return create_app(settings, DataPlane(settings, metrics, cache=cache, predlog=predlog))


def worker_app() -> ModelServerApp:
    """The app factory of each worker process (``--workers`` > 1): settings from the
    environment, which `main` completed with the command-line flags."""
    settings = load_settings({})
    configure_process(settings)
    return build_app(settings)


def configure_process(settings: ServerSettings) -> None:
    """Process-wide choices: the log format and level, no ``*_created`` metric series."""
    from prometheus_client import disable_created_metrics

    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        force=True,
    )
    disable_created_metrics()


def parse_args(argv: list[str] | None) -> dict[str, object]:
    parser = argparse.ArgumentParser(
        prog="forecast-server",
        description="Serve an ONNX forecasting model (Open Inference Protocol v2 and "
        "/v1/forecast). Other settings: PREDICTION_* environment variables.",
    )
    for setting in CLI_FLAGS:
        field = ServerSettings.model_fields[setting]
        default = "" if field.is_required() else f" (default: {field.default})"
        parser.add_argument(
            flag(setting),
            dest=setting,
            type=int if field.annotation is int else str,
            help=f"{field.description or setting.replace('_', ' ')}{default}",
        )
    args = parser.parse_args(argv)
    return {k: v for k, v in vars(args).items() if v is not None}


def load_settings(overrides: dict[str, object]) -> ServerSettings:
    """The settings from the environment and `overrides`; `InvalidSettings` naming every
    problem, an unknown ``PREDICTION_*`` variable included (a misspelt setting is an
    error, never a silently ignored one)."""
    problems = unknown_variables(os.environ)
    try:
        settings = ServerSettings(**overrides)
    except ValidationError as exc:
        for error in exc.errors(include_input=False):  # inputs may be secrets
            where = ".".join(str(p) for p in error["loc"]) or "settings"
            problems.append(f"{where}: {error['msg']}")
    if problems:
        raise InvalidSettings(problems)
    return settings


class InvalidSettings(ValueError):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def main(argv: list[str] | None = None) -> int:
    overrides = parse_args(argv)
    try:
        settings = load_settings(overrides)
    except InvalidSettings as invalid:
        for problem in invalid.problems:
            print(f"forecast-server: {problem}", file=sys.stderr)
        return 2
    configure_process(settings)
    cpus = available_cpus()
    threads = settings.intra_op_threads or default_threads(settings.workers, cpus)
    if settings.workers * threads > cpus:
        log.warning(
            "workers x ONNX threads = %d x %d exceeds the %d cores: expect contention",
            settings.workers,
            threads,
            cpus,
        )

    import uvicorn

    options = {
        "host": settings.host,
        "port": settings.port,
        "loop": "uvloop",
        "http": "httptools",
        "access_log": settings.access_log,
        "log_config": None,  # uvicorn logs through the root logger configured above
        "server_header": False,
    }
    if settings.workers == 1:
        uvicorn.run(build_app(settings), **options)
        return 0

    for name, value in overrides.items():  # the workers rebuild settings from the environment
        os.environ[env_name(name)] = str(value)
    metrics_dir = _multiprocess_dir()
    try:
        uvicorn.run(
            "model_server.main:worker_app", factory=True, workers=settings.workers, **options
        )
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


def _multiprocess_dir() -> Path | None:
    """Point PROMETHEUS_MULTIPROC_DIR at an empty directory; the temporary one we made,
    if any (to remove at exit)."""
    if given := os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        for stale in Path(given).glob("*.db"):  # a previous run's values would be summed
            stale.unlink()
        return None
    made = Path(tempfile.mkdtemp(prefix="forecast-server-metrics-"))
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(made)
    return made


if __name__ == "__main__":
    sys.exit(main())
