"""`forecastctl` for rollouts: a readable view of one, and the commands that steer it.

The commands write the `forecastops.io/command` annotation with a fresh nonce (the same
annotation a GitOps user may write), then wait until the operator reports what became
of it in `status.rollout.commandOutcome`.
"""

from __future__ import annotations

import argparse
import secrets
import sys
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from functools import partial
from typing import Any

from rich import box
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from forecastops.kube.names import GROUP, PLURAL, VERSION
from forecastops.rollout.observed import COMMAND_ANNOTATION, CommandKind
from forecastops.rollout.runs import BACKGROUND, progress, step_run_name
from forecastops.rollout.spec import RolloutSpecError, parse_rollout
from forecastops.rollout.state import (
    ABORTED_PHASES,
    ROLLOUT_PHASES,
    Phase,
    RolloutStatus,
    from_dict,
)
from forecastops.rollout.steps import describe, steps_for

HISTORY_SHOWN = 8

COMMANDS: dict[str, str] = {
    "promote": "finish the current pause or analysis step (--full: skip every step)",
    "abort": "send all traffic back to stable and scale the candidate down",
    "retry": "roll out a rolled-back revision again",
    "pause": "hold the rollout where it is",
    "resume": "continue after a pause",
}

NamespaceOf = Callable[[str | None, str | None], str]
"""(kubeconfig, context) -> the context's namespace."""


def add_commands(
    commands: argparse._SubParsersAction,
    add_cluster_options: Callable[[argparse.ArgumentParser], None],
    namespace_of: NamespaceOf,
) -> None:
    """`promote [--full]`, `abort`, `retry`, `pause`, `resume`."""
    for name, help_text in COMMANDS.items():
        parser = commands.add_parser(name, help=help_text)
        parser.add_argument("name", help="the ForecastModel")
        if name == "promote":
            parser.add_argument("--full", action="store_true", help="skip every remaining step")
        parser.add_argument(
            "--wait",
            type=float,
            default=30.0,
            metavar="SECONDS",
            help="wait this long for the operator to act (0: do not wait; default 30)",
        )
        add_cluster_options(parser)
        parser.set_defaults(run=partial(run_command, namespace_of=namespace_of))


def command_token(kind: CommandKind, nonce: str | None = None) -> str:
    """`promote-full:3f9c2a1b`: a nonce makes each request a new annotation value.

    >>> command_token(CommandKind.ABORT, "1")
    'abort:1'
    """
    return f"{kind}:{nonce or secrets.token_hex(4)}"


def run_command(args: argparse.Namespace, *, namespace_of: NamespaceOf) -> int:
    from kubernetes import client, config
    from kubernetes.client.exceptions import ApiException

    kind = CommandKind.PROMOTE_FULL if getattr(args, "full", False) else CommandKind(args.command)
    token = command_token(kind)
    namespace = args.namespace or namespace_of(args.kubeconfig, args.context)
    api = config.new_client_from_config(config_file=args.kubeconfig, context=args.context)
    objects = client.CustomObjectsApi(api)
    try:
        patch = {"metadata": {"annotations": {COMMAND_ANNOTATION: token}}}
        objects.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, args.name, patch)
        print(f"{kind} requested for ForecastModel {namespace}/{args.name} ({token})")
        if args.wait <= 0:
            return 0
        deadline = time.monotonic() + args.wait
        while time.monotonic() < deadline:
            fm = objects.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, args.name)
            rollout = (fm.get("status") or {}).get("rollout") or {}
            if rollout.get("lastCommand") == token:
                outcome = rollout.get("commandOutcome", "")
                print(outcome)
                return 1 if " ignored: " in outcome else 0
            time.sleep(0.5)
    except ApiException as exc:
        print(f"error: ForecastModel {namespace}/{args.name}: {exc.reason}", file=sys.stderr)
        return 1
    finally:
        api.close()
    print(f"the operator did not act on {token} within {args.wait:g}s", file=sys.stderr)
    return 1


def print_rollout(fm: Mapping[str, Any], *, now: datetime) -> None:
    """The rollout view below `forecastctl status`, in colour on a terminal."""
    view = render_rollout(fm, now=now)
    if view is not None:
        Console(highlight=False, markup=False, emoji=False).print(view)


def render_rollout(fm: Mapping[str, Any], *, now: datetime) -> Group | None:
    """Steps, weights, analysis results and why the rollout stopped; None without one."""
    raw_spec = (fm.get("spec") or {}).get("rollout")
    raw_status = (fm.get("status") or {}).get("rollout")
    if not raw_spec and not raw_status:
        return None
    status = from_dict(raw_status)
    parts: list[Any] = [_headline(raw_spec, status)]
    try:
        spec = parse_rollout(raw_spec)
    except RolloutSpecError as invalid:
        parts.append(Text(f"  invalid spec.rollout: {invalid}", style="red"))
        spec = None
    if spec is not None and status.phase in ROLLOUT_PHASES | ABORTED_PHASES:
        parts.append(_steps(spec, status))
    if status.history:
        parts.append(_analysis(status, now))
    return Group(*parts)


def render_text(fm: Mapping[str, Any], *, now: datetime, width: int = 120) -> str:
    """The rollout view as plain text (tests, logs, pipes)."""
    view = render_rollout(fm, now=now)
    if view is None:
        return ""
    console = Console(
        width=width,
        color_system=None,
        force_terminal=False,
        highlight=False,
        markup=False,
        emoji=False,
    )
    with console.capture() as captured:
        console.print(view)
    return captured.get()


def _headline(raw_spec: Mapping[str, Any] | None, status: RolloutStatus) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    strategy = (raw_spec or {}).get("strategy", "Canary") if raw_spec else "none"
    style = _PHASE_STYLES.get(status.phase, "")
    table.add_row("Rollout:", Text.assemble((str(status.phase), style), f"  ({strategy})"))
    revisions = f"stable {status.stable_revision or '-'}"
    if status.candidate_revision:
        revisions += f"  →  candidate {status.candidate_revision}"
    if status.aborted_revision:
        revisions += f"  (rolled back: {status.aborted_revision})"
    table.add_row("Revisions:", revisions)
    if status.phase in ROLLOUT_PHASES:
        table.add_row(
            "Traffic:",
            f"{status.canary_weight}% to the candidate (routes set to {status.route_weight}%)",
        )
    if status.reason or status.message:
        table.add_row("Why:", Text.assemble((status.reason, "bold"), f": {status.message}"))
    if status.last_command:
        table.add_row("Last command:", f"{status.last_command}: {status.command_outcome}")
    return table


def _steps(spec: Any, status: RolloutStatus) -> Table:
    steps = steps_for(spec)
    current = status.step_index if status.step_index is not None else len(steps)
    table = Table(title="Steps", title_justify="left", box=box.SIMPLE_HEAD, padding=(0, 1))
    for column in ("", "#", "STEP", "PROGRESS"):
        table.add_column(column)
    for index in range(len(steps)):
        mark, style, note = _step_mark(index, current, status)
        if index == current:
            run = status.run(step_run_name(index))
            if run is not None:
                note = progress(run, spec.analysis)
        table.add_row(
            Text(mark, style=style),
            str(index + 1),
            describe(steps, index, spec.strategy),
            note,
        )
    background = status.run(BACKGROUND)
    if background is not None:
        table.add_row("~", "", "background analysis", progress(background, spec.analysis))
    return table


def _step_mark(index: int, current: int, status: RolloutStatus) -> tuple[str, str, str]:
    if index < current:
        return "✔", "green", ""
    if index > current:
        return "·", "dim", ""
    if status.phase in ABORTED_PHASES:
        return "✘", "red", "rolled back here"
    if status.phase is Phase.PAUSED:
        return "⏸", "yellow", status.reason
    return "▶", "cyan", ""


def _analysis(status: RolloutStatus, now: datetime) -> Table:
    table = Table(
        title=f"Analysis (last {min(len(status.history), HISTORY_SHOWN)} measurements)",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        padding=(0, 1),
    )
    for column in ("AGE", "RUN", "METRIC", "VALUE", "VERDICT", "MESSAGE"):
        table.add_column(column)
    for entry in status.history[-HISTORY_SHOWN:]:
        m = entry.measurement
        age = max(0, int((now - m.at).total_seconds()))
        value = "-" if m.value is None else f"{m.value:.4g}"
        verdict = Text(str(m.verdict), style=_VERDICT_STYLES.get(str(m.verdict), ""))
        table.add_row(f"{age}s", entry.run, m.metric, value, verdict, m.message)
    return table


_PHASE_STYLES = {
    Phase.HEALTHY: "green",
    Phase.PROGRESSING: "cyan",
    Phase.PROMOTING: "cyan",
    Phase.PAUSED: "yellow",
    Phase.DEGRADED: "red",
    Phase.ROLLED_BACK: "red",
}
_VERDICT_STYLES = {"Successful": "green", "Failed": "red", "Inconclusive": "yellow"}
