"""The processes the local cluster and its real node start: one table of them, kept in a
JSON state file, so that `down` (possibly in a later Python process) stops exactly those.

One definition of "alive" serves starting, waiting, stopping and the leftover check: a
process is alive while its pid runs the executable we started and is not a zombie. That
is why `terminate` asks `alive()` instead of looking at /proc by itself.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass
class Proc:
    name: str
    pid: int
    exe: str
    log: str


def tail(path: str | Path, lines: int = 25) -> str:
    try:
        text = Path(path).read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return "(no log)"
    return "\n".join(text[-lines:])


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] == "Z"
    except OSError:
        return False


class ProcessTable:
    """The processes recorded in `state_file` (under the key "procs"), with their logs in
    `log_dir`. Other keys of the state file belong to the caller (`read`, `update`)."""

    def __init__(self, state_file: Path, log_dir: Path, cwd: Path) -> None:
        self.state_file = state_file
        self.log_dir = log_dir
        self.cwd = cwd
        self._children: dict[int, subprocess.Popen] = {}

    # --- the state file -----------------------------------------------------------------
    def read(self) -> dict:
        try:
            return json.loads(self.state_file.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

    def write(self, state: dict) -> None:
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(self.state_file)

    def update(self, **kv) -> None:
        self.write(self.read() | kv)

    def procs(self) -> list[Proc]:
        return [Proc(**p) for p in self.read().get("procs", [])]

    # --- processes ----------------------------------------------------------------------
    def spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Proc:
        """Start `argv` in a session of its own (it survives `make`; only `down` stops it),
        its output appended to `<log_dir>/<name>.log`, and record it at once."""
        logfile = self.log_dir / f"{name}.log"
        logfile.parent.mkdir(parents=True, exist_ok=True)
        with logfile.open("ab") as out:
            popen = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.cwd,
                env=env,
                start_new_session=True,
            )
        self._children[popen.pid] = popen
        proc = Proc(name=name, pid=popen.pid, exe=argv[0], log=str(logfile))
        state = self.read()
        state["procs"] = [*state.get("procs", []), asdict(proc)]
        self.write(state)
        return proc

    def alive(self, proc: Proc) -> bool:
        """True while `proc.pid` runs what we started (pids get reused) and has not exited."""
        child = self._children.get(proc.pid)
        if child is not None:  # started by this process: its handle reaps and knows
            return child.poll() is None
        try:
            cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes()
        except OSError:
            return False
        if _zombie(proc.pid):  # exited; its parent has not reaped it yet
            return False
        if not cmdline:  # between fork and exec: nothing else can hold a pid we just got
            return True
        return cmdline.split(b"\0", 1)[0].decode(errors="replace") == proc.exe

    def wait(
        self,
        proc: Proc,
        check: Callable[[], bool],
        what: str,
        timeout: float,
        error: type[Exception] = RuntimeError,
        interval: float = 0.25,
    ) -> float:
        """Wait until `check()` is true and return the seconds it took; `proc` exiting, or
        the time running out, raises `error` with the tail of its log. An exception from
        `check()` counts as not yet."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if not self.alive(proc):
                raise error(
                    f"{proc.name} exited while waiting for {what}; "
                    f"last lines of {proc.log}:\n{tail(proc.log)}"
                )
            with contextlib.suppress(Exception):
                if check():
                    return time.monotonic() - start
            time.sleep(interval)
        raise error(
            f"{proc.name}: {what} not reached in {timeout:.0f}s; "
            f"last lines of {proc.log}:\n{tail(proc.log)}"
        )

    def stop(self, proc: Proc, grace: float = 10.0) -> bool:
        """SIGTERM, up to `grace` seconds to go, then SIGKILL. True if it is gone."""
        if not self.alive(proc):
            return True
        terminate(proc.pid, grace, alive=lambda: self.alive(proc))
        return not self.alive(proc)


def terminate(pid: int, grace: float = 10.0, alive: Callable[[], bool] | None = None) -> None:
    """Stop a process: SIGTERM, wait up to `grace` seconds while `alive()` (default: the
    pid exists and is not a zombie), then SIGKILL and wait a little more."""

    def running() -> bool:
        if alive is not None:
            return alive()
        exited = _zombie(pid) or not Path(f"/proc/{pid}").exists()
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reap it if it is our child
        return not exited

    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not running():
                return
            time.sleep(0.1)
