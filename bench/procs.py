"""Server processes: start in their own session, wait for readiness, sample memory, stop.

Every server runs in a new session (its own process group), so one `killpg` reaches its
workers; processes that left the group are still tracked through their parents and
stopped by pid (checked against their start time, so a reused pid is never hit).
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class ProcInfo:
    pid: int
    ppid: int
    pgid: int
    start: int  # start time in clock ticks since boot
    rss: int  # bytes
    comm: str


def read_proc(pid: int) -> ProcInfo | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return parse_stat(raw)


def parse_stat(raw: str) -> ProcInfo:
    """One /proc/PID/stat line (the command name may hold spaces and parentheses)."""
    head, _, tail = raw.rpartition(")")
    pid_text, _, comm = head.partition(" (")
    fields = tail.split()
    # fields[0] is field 3 (state): ppid=4, pgrp=5, starttime=22, rss=24 (pages)
    return ProcInfo(
        pid=int(pid_text),
        ppid=int(fields[1]),
        pgid=int(fields[2]),
        start=int(fields[19]),
        rss=int(fields[21]) * PAGE,
        comm=comm,
    )


def command_line(pid: int, limit: int = 160) -> str:
    with contextlib.suppress(OSError):
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        return raw.replace(b"\0", b" ").decode(errors="replace").strip()[:limit]
    return ""


def all_procs() -> list[ProcInfo]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            info = read_proc(int(entry))
            if info is not None:
                out.append(info)
    return out


def members(root: int, procs: list[ProcInfo]) -> list[ProcInfo]:
    """The processes in `root`'s process group or descended from it."""
    children: dict[int, list[ProcInfo]] = {}
    for p in procs:
        children.setdefault(p.ppid, []).append(p)
    found = {p.pid: p for p in procs if p.pgid == root}
    stack = [root]
    while stack:
        for child in children.get(stack.pop(), ()):
            found[child.pid] = child
            stack.append(child.pid)
    return list(found.values())


@dataclass
class MemorySampler:
    """The RSS of one server's processes: peak of the sum, and the peak of each process
    (the largest is the per-worker figure). Fed by the shared `MONITOR` thread, which reads
    /proc once per interval for every server (one scan, not one per server: the scans
    cost CPU on the machine being measured)."""

    root: int
    peak_total: int = 0
    peak_per_pid: dict[int, int] = field(default_factory=dict)
    seen: dict[int, int] = field(default_factory=dict)  # pid -> start time
    names: dict[int, str] = field(default_factory=dict)  # pid -> short command line

    def update(self, snapshot: list[ProcInfo]) -> None:
        total = 0
        for p in members(self.root, snapshot):
            total += p.rss
            self.seen[p.pid] = p.start
            if p.pid not in self.names:
                self.names[p.pid] = command_line(p.pid) or p.comm
            self.peak_per_pid[p.pid] = max(self.peak_per_pid.get(p.pid, 0), p.rss)
        self.peak_total = max(self.peak_total, total)

    def sample(self) -> None:
        self.update(all_procs())

    def start(self) -> None:
        self.sample()
        MONITOR.add(self)

    def stop(self) -> None:
        MONITOR.remove(self)

    def summary(self) -> dict:
        per = sorted(self.peak_per_pid.values(), reverse=True)
        return {
            "peak_total_mb": round(self.peak_total / 2**20, 1),
            "peak_max_process_mb": round(per[0] / 2**20, 1) if per else None,
            "processes": len(per),
            "per_process_mb": [
                {"pid": pid, "peak_mb": round(rss / 2**20, 1), "cmd": self.names.get(pid, "")}
                for pid, rss in sorted(self.peak_per_pid.items(), key=lambda kv: -kv[1])
            ],
        }


class Monitor:
    """One daemon thread that feeds every registered `MemorySampler` from one /proc scan
    per `interval`; it runs only while a sampler is registered."""

    def __init__(self, interval: float = 0.5):
        self.interval = interval
        self._samplers: list[MemorySampler] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()

    def add(self, sampler: MemorySampler) -> None:
        with self._lock:
            self._samplers.append(sampler)
            if self._thread is None or not self._thread.is_alive():
                self._wake.clear()
                self._thread = threading.Thread(target=self._run, daemon=True)
                self._thread.start()

    def remove(self, sampler: MemorySampler) -> None:
        with self._lock:
            if sampler in self._samplers:
                self._samplers.remove(sampler)
            if not self._samplers:
                self._wake.set()
        thread = self._thread
        if not self._samplers and thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)

    def _run(self) -> None:
        while not self._wake.wait(self.interval):
            with self._lock:
                samplers = list(self._samplers)
            if not samplers:
                return
            snapshot = all_procs()
            for sampler in samplers:
                sampler.update(snapshot)


MONITOR = Monitor()


class Server:
    """A started server process group; `stop()` is idempotent."""

    def __init__(self, name: str, argv: list[str], env: dict, cwd: Path, log_path: Path):
        self.name = name
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 (closed in stop)
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            argv,
            env=env,
            cwd=cwd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.memory = MemorySampler(self.proc.pid)
        self.memory.start()
        self._stopped = False

    def log_tail(self, n: int = 2000) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_bytes()[-n:].decode(errors="replace")
        return ""

    def stop(self, grace: float = 10.0) -> None:
        if self._stopped:
            return
        self._stopped = True
        self.memory.stop()
        with contextlib.suppress(Exception):
            self.memory.sample()
        pgid = self.proc.pid
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and self._alive():
            self.proc.poll()
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
        for pid, start in self.memory.seen.items():
            info = read_proc(pid)
            if info is not None and info.start == start:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        self._log.close()

    def _alive(self) -> bool:
        for pid, start in self.memory.seen.items():
            info = read_proc(pid)
            if info is not None and info.start == start and not _zombie(pid):
                return True
        return self.proc.poll() is None


def _zombie(pid: int) -> bool:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z"
    return True


def _socket_inodes(pids: list[int]) -> set[str]:
    inodes = set()
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    target = os.readlink(f"/proc/{pid}/fd/{fd}")
                    if target.startswith("socket:["):
                        inodes.add(target[8:-1])
    return inodes


def _hex_addr(text: str) -> str:
    """An address of /proc/net/tcp{,6} ("0100007F:1F90") as "127.0.0.1:8080" / "[::1]:80"."""
    host, port = text.split(":")
    raw = bytes.fromhex(host)
    if len(raw) == 4:
        return f"{ipaddress.IPv4Address(raw[::-1])}:{int(port, 16)}"
    # IPv6: four 32-bit words, each in host (little-endian) order
    packed = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
    return f"[{ipaddress.IPv6Address(packed)}]:{int(port, 16)}"


def listening(pids: list[int]) -> list[str]:
    """The TCP addresses the processes `pids` listen on (from /proc/net/tcp and tcp6)."""
    inodes = _socket_inodes(pids)
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                parts = line.split()
                if parts[3] == "0A" and parts[9] in inodes:
                    found.append(_hex_addr(parts[1]))
    return sorted(set(found))


def is_loopback(address: str) -> bool:
    """Loopback, including IPv4-mapped IPv6 (::ffff:127.0.0.1)."""
    ip = ipaddress.ip_address(address.rsplit(":", 1)[0].strip("[]"))
    mapped = getattr(ip, "ipv4_mapped", None)
    return ip.is_loopback or (mapped is not None and mapped.is_loopback)


def http_request(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict | None = None,
    timeout: float = 10.0,
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def wait_ready(
    server: Server, port: int, path: str, timeout: float, headers: dict, live_path: str | None
) -> tuple[float, float | None]:
    """Seconds from spawn until `path` first answered 200, and until `live_path` did (the
    HTTP server is up; the difference is the model's load and check). Raises if the process
    died or `timeout` passed. Then asks again until 10 answers in a row are 200 (several
    workers may share the port and become ready one by one)."""
    deadline = server.started + timeout
    ready_at = live_at = None
    streak = 0
    while time.perf_counter() < deadline:
        if live_path and live_at is None:
            try:
                if http_request(port, "GET", live_path, timeout=2.0)[0] == 200:
                    live_at = time.perf_counter()
            except OSError:
                pass
        if server.proc.poll() is not None:
            raise RuntimeError(
                f"{server.name} exited with {server.proc.returncode} before ready:\n"
                + server.log_tail()
            )
        try:
            status, _ = http_request(port, "GET", path, headers=headers, timeout=2.0)
        except OSError:
            status = 0
        if status == 200:
            if ready_at is None:
                ready_at = time.perf_counter()
            streak += 1
            if streak >= 10:
                live = None if live_at is None else live_at - server.started
                return ready_at - server.started, live
        else:
            streak = 0
        time.sleep(0.01 if ready_at is None else 0.05)
    raise TimeoutError(
        f"{server.name} not ready on {path} within {timeout:.0f} s:\n" + server.log_tail()
    )


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
