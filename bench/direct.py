"""A closed-loop, one-connection client in Python: latency percentiles without wrk's
coordinated-omission correction.

wrk 4 "corrects" its latency histogram after the run: for every response slower than the
mean interval between requests it adds synthetic samples, as if requests had kept
arriving on schedule during the stall. At concurrency 1 and ~6,000 requests/s one stall of
100 ms (the server or wrk descheduled by another process on a busy 2-core machine) adds
~600 samples and can by itself move p99 from 0.2 ms to tens of milliseconds. That is the
right measure of what a client with a schedule would see; it is not a measure of the
server's own per-request time. This client records each request's round trip as it
happened (perf_counter_ns around send and receive), so the two together tell machine
stalls from server tails. Its own cost (a few tens of µs of Python per request) is in
every figure, the same for every server.
"""

from __future__ import annotations

import socket
import time

import numpy as np


class DirectError(RuntimeError):
    pass


def _request_bytes(path: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [
        f"POST {path} HTTP/1.1",
        "Host: 127.0.0.1",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        *(f"{k}: {v}" for k, v in headers.items()),
        "",
        "",
    ]
    return "\r\n".join(lines).encode() + body


def parse_response_head(head: bytes) -> tuple[int, int]:
    """Status code and Content-Length of an HTTP/1.1 response head (without the blank
    line); raises `DirectError` when the body length is not given by Content-Length."""
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
        raise DirectError(f"not an HTTP/1.x response: {lines[0][:80]!r}")
    status = int(parts[1])
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return status, int(value.strip())
    raise DirectError("response without Content-Length (chunked?)")


def _one(sock: socket.socket, request: bytes, buf: bytearray) -> int:
    sock.sendall(request)
    while True:
        end = buf.find(b"\r\n\r\n")
        if end >= 0:
            break
        chunk = sock.recv(65536)
        if not chunk:
            raise DirectError("connection closed")
        buf += chunk
    status, length = parse_response_head(bytes(buf[:end]))
    need = end + 4 + length
    while len(buf) < need:
        chunk = sock.recv(65536)
        if not chunk:
            raise DirectError("connection closed")
        buf += chunk
    del buf[:need]
    return status


def run(port: int, path: str, body: bytes, headers: dict[str, str], duration_s: float) -> dict:
    """Requests back to back on one keep-alive connection for `duration_s` (bounded)."""
    request = _request_bytes(path, body, headers)
    samples: list[int] = []
    errors = 0
    buf = bytearray()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for _ in range(20):  # warm the connection
            _one(sock, request, buf)
        deadline = time.perf_counter_ns() + int(duration_s * 1e9)
        while True:
            t0 = time.perf_counter_ns()
            if t0 >= deadline:
                break
            status = _one(sock, request, buf)
            samples.append(time.perf_counter_ns() - t0)
            if not 200 <= status < 300:
                errors += 1
    return summarize(samples, errors, duration_s)


def summarize(samples_ns: list[int], errors: int, duration_s: float) -> dict:
    if not samples_ns:
        return {"requests": 0, "errors": errors}
    ms = np.asarray(samples_ns, dtype=np.float64) / 1e6
    p50, p90, p99, p999 = np.percentile(ms, [50, 90, 99, 99.9])
    return {
        "requests": len(ms),
        "rps": len(ms) / duration_s,
        "p50_ms": float(p50),
        "p90_ms": float(p90),
        "p99_ms": float(p99),
        "p999_ms": float(p999),
        "max_ms": float(ms.max()),
        "mean_ms": float(ms.mean()),
        "errors": errors,
    }
