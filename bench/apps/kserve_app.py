"""KServe 0.21 serving the joblib model: its sklearn server's Model subclass, slimmed.

KServe's sklearnserver package is not on PyPI; this is the same shape (joblib.load in
``load``, ``predict`` on the V2 tensor). Run in the KServe venv as
``python -m bench.apps.kserve_app --model_path model.joblib --model_name NAME
--http_port N --workers 2 --enable_grpc false --enable_latency_logging false``.

KServe binds 0.0.0.0 with no option to change it; the benchmark binds loopback only, so
uvicorn's Config is wrapped to force 127.0.0.1 (the socket is bound in this process and
inherited by the worker processes).
"""

from __future__ import annotations

import argparse
import logging
import os

import joblib
import uvicorn

_config_init = uvicorn.Config.__init__


def _loopback_init(self, *args, **kwargs):
    kwargs["host"] = "127.0.0.1"
    _config_init(self, *args, **kwargs)


uvicorn.Config.__init__ = _loopback_init

import kserve  # noqa: E402  (after the patch, which must precede the server's Config)
import kserve.logging as kserve_logging  # noqa: E402

if os.environ.get("BENCH_KSERVE_QUIET") == "1":
    # KServe logs three lines per request by default: uvicorn's access log and two timing
    # lines of "kserve.trace", which --enable_latency_logging does not silence. Every
    # process (the worker processes too, when this module is imported as their main)
    # configures logging through this function, so the levels are set after it.
    _configure_logging = kserve_logging.configure_logging

    def _quiet_logging(log_config=None):
        _configure_logging(log_config)
        logging.getLogger("kserve.trace").setLevel(logging.WARNING)
        logging.getLogger("uvicorn.access").setLevel(logging.WARNING)

    kserve_logging.configure_logging = _quiet_logging
    _quiet_logging.__wrapped__ = _configure_logging
from kserve import Model, ModelServer  # noqa: E402
from kserve.utils.utils import get_predict_input, get_predict_response  # noqa: E402


class SKLearnModel(Model):
    def __init__(self, name: str, path: str):
        super().__init__(name)
        self.path = path
        self.ready = False

    def load(self) -> bool:
        self._model = joblib.load(self.path)
        self.ready = True
        return self.ready

    def predict(self, payload, headers=None, response_headers=None):
        # As KServe's sklearnserver: its own V1/V2 decoding and encoding helpers.
        instances = get_predict_input(payload)
        return get_predict_response(payload, self._model.predict(instances), self.name)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(parents=[kserve.model_server.parser])
    parser.add_argument("--model_path", required=True)
    args, _ = parser.parse_known_args()
    model = SKLearnModel(args.model_name, args.model_path)
    model.load()
    ModelServer().start([model])
