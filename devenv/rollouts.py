"""The harness of the end-to-end rollout tests: a real control plane, a real Prometheus,
real model servers.

Pods on kwok nodes run no containers, so each revision's model server runs here as a
local `forecast-server` process, labelled with the revision the operator computes for the
spec (PREDICTION_REVISION); Prometheus scrapes it, a load thread sends it requests, and
the operator under test (a `forecast-operator` process with its least-privilege
identity, on the suite's own control plane) analyses from Prometheus. Fault settings of
the server (PREDICTION_FAULT_ERROR_RATE, PREDICTION_FAULT_LATENCY_MS) make a candidate bad.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from devenv.harness import wait_for
from devenv.paths import free_port
from model_training.train import TrainResult

IMAGE = "ghcr.io/forecastops/forecast-server:e2e"

ERROR_RATE_QUERY = (
    '(sum(rate(prediction_service_requests_total{revision="{{revision}}",code=~"5.."}[5s]))'
    " or vector(0))"
    ' / sum(rate(prediction_service_requests_total{revision="{{revision}}"}[5s]))'
)
LATENCY_QUERY = (
    "histogram_quantile(0.95, sum by (le) (rate("
    'prediction_service_request_duration_seconds_bucket{revision="{{revision}}"}[5s])))'
)
METRICS = [
    {
        "name": "error-rate",
        "prometheus": {"query": ERROR_RATE_QUERY},
        "failureCondition": "result > 0.05",
    },
    {
        "name": "latency-p95",
        "prometheus": {"query": LATENCY_QUERY},
        "failureCondition": "result > 0.2",
    },
]


def kwok_spec(version: str, *, rollout: dict[str, Any], salt: str, replicas: int = 2) -> dict:
    """The spec of a ForecastModel whose model version picks the revision (the file need
    not exist: kwok runs no containers; the local servers load the trained model). `salt`
    (the test's namespace) makes every test's revisions its own: the session's Prometheus
    keeps the series of earlier tests, labelled by revision."""
    return {
        "model": {"uri": f"file:///models/{salt}/demand-{version}.onnx", "version": version},
        "server": {"image": IMAGE, "replicas": replicas},
        "networkPolicy": {"enabled": False},
        "monitoring": {"serviceMonitor": {"enabled": False}},
        "rollout": rollout,
    }


# --- the operator ---------------------------------------------------------------------------


@dataclass
class Operator:
    """`forecast-operator` with the operator's identity, on the suite's own cluster."""

    kubeconfig: Path
    namespace: str
    prometheus_url: str
    log: Path
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    args: tuple[str, ...] = ()
    """Further command-line arguments, e.g. ("--metrics-port=N", "--metrics-address=127.0.0.1")."""
    resync_seconds: float = 2

    def start(self) -> None:
        env = {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "FORECASTOPS_RESYNC_SECONDS": str(self.resync_seconds),
            **({"FORECASTOPS_PROMETHEUS_URL": self.prometheus_url} if self.prometheus_url else {}),
            "PYTHONUNBUFFERED": "1",
        }
        executable = Path(sys.executable).parent / "forecast-operator"
        mark = self.text()
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                # cluster-wide, as the chart runs it: serving one namespace would make kopf
                # list namespaces, which the least-privilege role does not allow
                [str(executable), "--all-namespaces", *self.args],
                env=env,
                stdout=out,
                stderr=out,
            )
        self.starts += 1
        wait_for(
            lambda: "Initial authentication has finished" in self.text()[len(mark) :],
            timeout=30,
            what="the operator to start",
            every=0.1,
        )

    def kill(self) -> None:
        """SIGKILL: no cleanup, no goodbye, as when a node dies."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self.process = None

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


# --- model servers, one per revision -----------------------------------------------------------


ROW = {"name": "input", "shape": [1, 26], "datatype": "FP32", "data": [1.0] * 26}


@dataclass
class RevisionServer:
    """A `forecast-server` process for one revision, scraped by Prometheus, under load."""

    revision: str
    model_name: str
    port: int
    process: subprocess.Popen[bytes]
    requests_per_second: float = 20.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _load: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start_load(self) -> None:
        self._load = threading.Thread(target=self._send, name=f"load-{self.revision}", daemon=True)
        self._load.start()

    def stop(self) -> None:
        self._stop.set()
        if self._load:
            self._load.join(timeout=5)
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def _send(self) -> None:
        pause = 1.0 / self.requests_per_second
        path = f"/v2/models/{self.model_name}/infer"
        with httpx.Client(base_url=self.url, timeout=5) as client:
            while not self._stop.is_set():
                with contextlib.suppress(httpx.HTTPError):  # starting or stopping
                    client.post(path, json={"inputs": [ROW]})
                self._stop.wait(pause)


@dataclass
class Servers:
    prometheus: Any
    model: TrainResult
    workdir: Path
    started: list[RevisionServer] = field(default_factory=list)

    def start(
        self,
        revision: str,
        *,
        model_name: str,
        error_rate: float = 0.0,
        latency_ms: float = 0.0,
        load: bool = True,
        env: dict[str, str] | None = None,
    ) -> RevisionServer:
        """A server for `revision`, ready, scraped, and (unless `load` is off) busy."""
        port = free_port()
        env = {
            **os.environ,
            "PREDICTION_REVISION": revision,
            "PREDICTION_FAULT_ERROR_RATE": str(error_rate),
            "PREDICTION_FAULT_LATENCY_MS": str(latency_ms),
            "PREDICTION_MODEL_DIR": str(self.workdir / f"model-{revision}"),
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        executable = Path(sys.executable).parent / "forecast-server"
        log = (self.workdir / f"server-{revision}.log").open("ab")
        process = subprocess.Popen(
            [
                str(executable),
                "--model-uri",
                self.model.model_path.as_uri(),
                "--model-name",
                model_name,
                "--port",
                str(port),
            ],
            env=env,
            stdout=log,
            stderr=log,
        )
        server = RevisionServer(revision, model_name, port, process)
        self.started.append(server)
        wait_for(lambda: _ready(server.url), timeout=30, what=f"the server of {revision}")
        self.prometheus.set_targets(f"rev-{revision}", [f"127.0.0.1:{port}"])
        if load:
            server.start_load()
        return server

    def wait_scraped(self, revision: str, timeout: float = 20) -> None:
        """Until Prometheus has a request rate for `revision` (analysis has data)."""
        self.prometheus.wait_for(
            f'sum(rate(prediction_service_requests_total{{revision="{revision}"}}[5s])) > 0',
            timeout=timeout,
        )

    def stop_all(self) -> None:
        for server in self.started:
            server.stop()
            self.prometheus.set_targets(f"rev-{server.revision}", [])
        self.started.clear()


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
