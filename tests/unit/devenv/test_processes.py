"""The process table the cluster and the real node share (devenv/processes.py), on real
processes: a `sleep` and a shell are cheap and say everything about pids and zombies."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from devenv.processes import Proc, ProcessTable, terminate

SLEEP = shutil.which("sleep") or "/bin/sleep"


@pytest.fixture
def table(tmp_path):
    return ProcessTable(tmp_path / "state.json", tmp_path / "logs", tmp_path)


def test_a_spawned_process_is_recorded_alive_and_stopped(table):
    proc = table.spawn("sleeper", [SLEEP, "60"])
    assert table.procs() == [proc]
    assert table.read()["procs"][0]["exe"] == SLEEP
    assert table.alive(proc)
    assert table.stop(proc, grace=5)
    assert not table.alive(proc)


def test_another_python_process_can_stop_what_this_one_started(table, tmp_path):
    """`make cluster-up` starts, a later `make cluster-down` stops: the second table has no
    child handle, and the process turns zombie until its parent reaps it."""
    proc = table.spawn("sleeper", [SLEEP, "60"])
    later = ProcessTable(table.state_file, table.log_dir, tmp_path)
    [seen] = later.procs()
    assert later.alive(seen)
    assert later.stop(seen, grace=5)  # a zombie counts as gone
    assert not later.alive(seen)
    assert not table.alive(proc)  # and the parent reaps it


def test_a_reused_pid_running_something_else_is_not_ours(table):
    other = subprocess.Popen(
        [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(30)"],
        stdout=subprocess.PIPE,
    )
    try:
        assert other.stdout.readline() == b"up\n"  # exec'd and running
        imposter = Proc(name="etcd", pid=other.pid, exe="/nonexistent/etcd", log="x")
        assert not table.alive(imposter)
        assert table.stop(imposter)  # never signals a process that is not ours
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()


def test_waiting_on_a_process_that_exits_reports_its_log(table):
    proc = table.spawn("crasher", ["/bin/sh", "-c", "echo 'bad flag --nope'; exit 3"])
    with pytest.raises(ValueError, match="crasher exited while waiting for ready") as err:
        table.wait(proc, lambda: False, "ready", timeout=10, error=ValueError)
    assert "bad flag --nope" in str(err.value)


def test_waiting_returns_when_the_check_passes_and_times_out_when_it_never_does(table):
    proc = table.spawn("sleeper", [SLEEP, "60"])
    try:
        calls = iter([OSError("not yet"), False, True])

        def check():
            step = next(calls)
            if isinstance(step, Exception):
                raise step
            return step

        assert table.wait(proc, check, "ready", timeout=10, interval=0.01) >= 0
        with pytest.raises(TimeoutError, match="sleeper: never not reached in 0s"):
            table.wait(proc, lambda: False, "never", timeout=0.2, error=TimeoutError)
    finally:
        table.stop(proc)


def test_terminate_kills_what_ignores_sigterm(tmp_path):
    stubborn = subprocess.Popen(
        ["/bin/sh", "-c", "trap '' TERM; echo trapped; while :; do sleep 0.1; done"],
        start_new_session=True,
        stdout=subprocess.PIPE,
    )
    assert stubborn.stdout.readline() == b"trapped\n"
    terminate(stubborn.pid, grace=0.5, alive=lambda: stubborn.poll() is None)
    assert stubborn.returncode == -9


def test_terminate_reaps_a_child_it_has_no_handle_for(tmp_path):
    child = subprocess.Popen([SLEEP, "60"], start_new_session=True)
    terminate(child.pid, grace=5)
    assert not (Path("/proc") / str(child.pid)).exists()  # reaped, not left a zombie
