"""`forecast-operator`: runs the ForecastModel operator (kopf, standalone)."""

from __future__ import annotations

import argparse
import logging

import kopf

from forecastops.runtime.config import OperatorSettings
from forecastops.runtime.handlers import build_kopf_settings, build_registry
from forecastops.telemetry.factory import build_metrics


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="forecast-operator",
        description="Run the ForecastModel operator. Settings come from FORECASTOPS_* "
        "environment variables (e.g. FORECASTOPS_RESYNC_SECONDS).",
    )
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument(
        "-n",
        "--namespace",
        action="append",
        dest="namespaces",
        default=[],
        help="serve only this namespace (repeatable)",
    )
    scope.add_argument(
        "-A", "--all-namespaces", action="store_true", help="serve every namespace (the default)"
    )
    parser.add_argument(
        "--liveness",
        metavar="URL",
        help="serve a liveness probe, e.g. http://0.0.0.0:8080/healthz",
    )
    parser.add_argument(
        "--metrics-port", type=int, metavar="PORT", help="serve Prometheus metrics on this port"
    )
    parser.add_argument(
        "--metrics-address",
        default="0.0.0.0",
        metavar="ADDRESS",
        help="the address the metrics port binds (default: every interface, as in a pod)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    parser.add_argument("--debug", action="store_true", help="log everything")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = OperatorSettings()
    metrics = build_metrics(args.metrics_port, args.metrics_address)
    kopf.configure(verbose=args.verbose, debug=args.debug)
    if not (args.verbose or args.debug):
        # kopf reports every successful handler and indexer call; our own log says what changed.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    kopf.run(
        registry=build_registry(settings),
        settings=build_kopf_settings(),
        memo=kopf.Memo(settings=settings, metrics=metrics),
        standalone=True,
        clusterwide=not args.namespaces,
        namespaces=args.namespaces,
        liveness_endpoint=args.liveness,
    )
    return 0
