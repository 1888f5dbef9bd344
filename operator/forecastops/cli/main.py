"""`forecastctl` (also `kubectl forecast`): the command line of ForecastModel users."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table

from forecastops.cli.rollout import add_commands as add_rollout_commands
from forecastops.cli.rollout import print_rollout
from forecastops.kube.names import GROUP, PLURAL, VERSION


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="forecastctl", description="Inspect and operate ForecastModels."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    status = commands.add_parser("status", help="phase, revision and conditions of a model")
    status.add_argument("name", help="the ForecastModel")
    _add_cluster_options(status)
    status.add_argument("-o", "--output", choices=["text", "yaml", "json"], default="text")
    status.set_defaults(run=run_status)
    add_rollout_commands(commands, _add_cluster_options, _context_namespace)

    backup = commands.add_parser(
        "backup",
        add_help=False,
        help="back up, restore, list or prune backups (forecastctl backup --help)",
    )
    backup.add_argument("arguments", nargs=argparse.REMAINDER)
    backup.set_defaults(run=run_backup)

    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if args.command == "backup":  # its own command line: options before its command too
        args.arguments = unknown + args.arguments
    elif unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        return args.run(args)
    except ModuleNotFoundError as missing:
        # The server image carries forecastctl for backups only: no Kubernetes client, no
        # training stack. Say which extra brings what a command needs.
        extra = _EXTRAS.get((missing.name or "").partition(".")[0])
        if extra is None:
            raise
        print(
            f"forecastctl {args.command}: needs {missing.name}, which this installation "
            f"lacks: pip install 'forecastops[{extra}]'",
            file=sys.stderr,
        )
        return 2


_EXTRAS = {"kubernetes": "cli"}


def _add_cluster_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-n", "--namespace", help="default: the kubeconfig context's namespace")
    parser.add_argument("--kubeconfig", help="default: $KUBECONFIG or ~/.kube/config")
    parser.add_argument("--context", help="a kubeconfig context other than the current one")


def run_status(args: argparse.Namespace) -> int:
    from kubernetes import client, config
    from kubernetes.client.exceptions import ApiException

    api = config.new_client_from_config(config_file=args.kubeconfig, context=args.context)
    namespace = args.namespace or _context_namespace(args.kubeconfig, args.context)
    try:
        fm = client.CustomObjectsApi(api).get_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, args.name
        )
    except ApiException as exc:
        print(f"error: ForecastModel {namespace}/{args.name}: {exc.reason}", file=sys.stderr)
        return 1
    finally:
        api.close()
    if args.output == "json":
        print(json.dumps(fm, indent=2))
    elif args.output == "yaml":
        print(yaml.safe_dump(fm, sort_keys=False), end="")
    else:
        now = datetime.now(UTC)
        print(render_status(fm, now=now))
        print_rollout(fm, now=now)
    return 0


def render_status(fm: Mapping[str, Any], *, now: datetime) -> str:
    """A readable view: phase, revisions, replicas, endpoint and conditions."""
    meta, spec, status = fm["metadata"], fm.get("spec", {}), fm.get("status", {})
    generation, observed = meta.get("generation"), status.get("observedGeneration")
    stale = "" if observed == generation else f" (status is from generation {observed})"
    lines = [
        f"ForecastModel {meta['namespace']}/{meta['name']}",
        f"  Phase:      {status.get('phase', 'Unknown')}{stale}",
        f"  Model:      {spec.get('model', {}).get('version', '?')}  {spec.get('model', {}).get('uri', '')}",
        f"  Revision:   {status.get('currentRevision', '-')} (stable {status.get('stableRevision', '-')})",
        f"  Serving:    version {status.get('version', '-')}, "
        f"{status.get('availableReplicas', 0)}/{status.get('replicas', 0)} replicas available",
        f"  Endpoint:   {status.get('endpoint', '-')}",
    ]
    if status.get("canaryRevision"):
        lines.append(
            f"  Canary:     revision {status['canaryRevision']}, weight {status.get('canaryWeight', 0)}%"
        )
    conditions = status.get("conditions", [])
    if conditions:
        lines.append("  Conditions:")
        lines += [f"    {line}" for line in _conditions_table(conditions, now).splitlines()]
    return "\n".join(lines)


def _conditions_table(conditions: list[Mapping[str, Any]], now: datetime) -> str:
    """Columns as kubectl prints them: left-aligned, two spaces apart, no borders."""
    table = Table(box=None, padding=(0, 2, 0, 0), pad_edge=False, header_style=None)
    for column in ("TYPE", "STATUS", "REASON", "AGE", "MESSAGE"):
        table.add_column(column, no_wrap=True)
    for c in conditions:
        age = _age(c.get("lastTransitionTime"), now)
        table.add_row(
            c.get("type", ""), c.get("status", ""), c.get("reason", ""), age, c.get("message", "")
        )
    console = Console(width=10_000, color_system=None, highlight=False, markup=False, emoji=False)
    with console.capture() as captured:
        console.print(table)
    return "\n".join(line.rstrip() for line in captured.get().splitlines())


def _age(timestamp: str | None, now: datetime) -> str:
    if not timestamp:
        return "-"
    seconds = int((now - datetime.fromisoformat(timestamp.replace("Z", "+00:00"))).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


def _context_namespace(kubeconfig: str | None, context: str | None) -> str:
    from kubernetes import config

    contexts, current = config.list_kube_config_contexts(config_file=kubeconfig)
    chosen = next((c for c in contexts if c["name"] == context), current) if context else current
    return chosen.get("context", {}).get("namespace") or "default"


def run_backup(args: argparse.Namespace) -> int:
    from forecastops.backup.cli import main as backup_main

    return backup_main(args.arguments)
