"""Prometheus as a real test server, its scrape targets in files it watches."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from devenv.paths import free_port
from devenv.services.base import (
    DEPS_HINT,
    LOOPBACK,
    Server,
    ServiceError,
    find_binary,
)


class Prometheus(Server):
    """Prometheus with a 1 s scrape interval and file-based discovery tests can rewrite."""

    name = "prometheus"

    def __init__(
        self,
        workdir: Path,
        *,
        host: str = LOOPBACK,
        scrape_interval: str = "1s",
        scrape_configs: tuple[dict[str, Any], ...] = (),
        startup_timeout: float = 30.0,
    ) -> None:
        super().__init__(workdir, host=host, startup_timeout=startup_timeout)
        self.binary = find_binary("Prometheus", "prometheus", hint=DEPS_HINT)
        self.port = free_port()
        self.scrape_interval = scrape_interval
        self.scrape_configs = scrape_configs  # jobs besides the file-based one
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
                },
                *self.scrape_configs,
            ],
        }
        # JSON is YAML: no YAML writer needed.
        self.config_path.write_text(json.dumps(config, indent=2))

    def _command(self) -> list[str]:
        return [
            self.binary,
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.data_dir}",
            f"--web.listen-address={self.host}:{self.port}",
            "--web.enable-lifecycle",
            "--storage.tsdb.retention.time=1d",
        ]

    def _ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False
