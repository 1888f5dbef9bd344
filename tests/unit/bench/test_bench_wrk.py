"""The pure parts of the serving benchmark's wrk driver: output parsing and the Lua script."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from bench import procs, wrk

TEXT = """Running 5s test @ http://127.0.0.1:8080/v2/models/forecast/infer
  1 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.05ms  404.57us   1.20s    86.64%
    Req/Sec     7.85k   445.78     8.40k    84.00%
  Latency Distribution
     50%  812.00us
     75%    2.16ms
     90%    2.41ms
     99%    3.55ms
  39046 requests in 5.00s, 6.29MB read
  Non-2xx or 3xx responses: 12
  Socket errors: connect 0, read 2, write 0, timeout 3
Requests/sec:   7808.64
Transfer/sec:      1.26MB
"""

JSON_LINE = (
    'BENCH_JSON {"requests":1000,"duration_us":2000000,"bytes":1,"connect":0,"read":1,'
    '"write":0,"status":4,"timeout":0,"p50_us":250,"p90_us":400,"p99_us":600,'
    '"p999_us":900,"max_us":1500,"mean_us":260.5}'
)


def test_parse_text_report():
    r = wrk.parse_text(TEXT)
    assert r.requests == 39046
    assert r.duration_s == pytest.approx(5.0)
    assert r.rps == pytest.approx(7808.64)
    assert r.p50_ms == pytest.approx(0.812)
    assert r.p90_ms == pytest.approx(2.41)
    assert r.p99_ms == pytest.approx(3.55)
    assert r.max_ms == pytest.approx(1200.0)
    assert (r.non_2xx, r.socket_errors, r.errors) == (12, 5, 17)


def test_parse_text_without_errors_or_percentiles():
    text = "\n".join(
        line for line in TEXT.splitlines() if "%" not in line[:8] and "errors" not in line
    )
    text = text.replace("  Non-2xx or 3xx responses: 12\n", "")
    r = wrk.parse_text(text)
    assert r.errors == 0
    assert math.isnan(r.p99_ms)


def test_parse_prefers_the_exact_json_line():
    r = wrk.parse(TEXT + JSON_LINE + "\n")
    assert r.requests == 1000
    assert r.rps == pytest.approx(500.0)
    assert (r.p50_ms, r.p99_ms, r.max_ms) == (0.25, 0.6, 1.5)
    assert (r.non_2xx, r.socket_errors) == (4, 1)
    assert r.to_dict()["errors"] == 5


def test_parse_rejects_garbage():
    with pytest.raises(ValueError):
        wrk.parse("wrk: connection refused")


@pytest.mark.parametrize(
    ("text", "ms"),
    [("812.00us", 0.812), ("1.23ms", 1.23), ("2.00s", 2000.0), ("1.50m", 90_000.0)],
)
def test_duration_units(text, ms):
    assert wrk.duration_ms(text) == pytest.approx(ms)


def test_lua_script_quotes_path_and_headers():
    script = wrk.lua_script(Path('/tmp/a "b"/body.json'), {"X-API-Key": 'k"\\'})
    assert 'io.open("/tmp/a \\"b\\"/body.json", "rb")' in script
    assert 'wrk.headers["X-API-Key"] = "k\\"\\\\"' in script
    assert 'wrk.headers["Content-Type"] = "application/json"' in script
    assert wrk.MARKER in script and "function done(" in script


def test_parse_proc_stat_with_odd_command_name():
    raw = "4242 (uvicorn (w) 1) S 4000 4000 4000 0 -1 4194560 " + " ".join(["0"] * 12)
    raw += " 123456 0 2560 18446744073709551615 " + " ".join(["0"] * 20)
    info = procs.parse_stat(raw)
    assert (info.pid, info.ppid, info.pgid, info.comm) == (4242, 4000, 4000, "uvicorn (w) 1")
    assert info.start == 123456
    assert info.rss == 2560 * procs.PAGE


def test_members_follow_group_and_children():
    P = procs.ProcInfo
    ps = [
        P(10, 1, 10, 0, 0, "root"),
        P(11, 10, 10, 0, 0, "worker"),
        P(12, 11, 12, 0, 0, "escaped-session"),
        P(13, 12, 12, 0, 0, "grandchild"),
        P(20, 1, 20, 0, 0, "other"),
    ]
    assert sorted(p.pid for p in procs.members(10, ps)) == [10, 11, 12, 13]


def test_addresses():
    assert procs._hex_addr("0100007F:1F90") == "127.0.0.1:8080"
    assert procs._hex_addr("00000000000000000000000001000000:1F90") == "[::1]:8080"
    assert procs.is_loopback("[::1]:8080")
    mapped = procs._hex_addr("0000000000000000FFFF00000100007F:CE27")
    assert mapped == "[::ffff:7f00:1]:52775"
    assert procs.is_loopback(mapped)
    assert not procs.is_loopback(procs._hex_addr("00000000:0050"))
    assert not procs.is_loopback(procs._hex_addr("00000000000000000000000000000000:0050"))


def test_direct_client_parses_response_heads():
    from bench import direct

    head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nContent-Length: 42"
    assert direct.parse_response_head(head) == (200, 42)
    assert direct.parse_response_head(b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 0") == (
        401,
        0,
    )
    with pytest.raises(direct.DirectError):
        direct.parse_response_head(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked")
    with pytest.raises(direct.DirectError):
        direct.parse_response_head(b"SSH-2.0-OpenSSH")


def test_direct_summary_percentiles_are_uncorrected():
    from bench import direct

    samples = [100_000] * 990 + [50_000_000] * 10  # 0.1 ms, and 1 % at 50 ms
    out = direct.summarize(samples, errors=1, duration_s=1.0)
    assert out["requests"] == 1000 and out["errors"] == 1
    assert out["p50_ms"] == pytest.approx(0.1)
    assert out["p90_ms"] == pytest.approx(0.1)
    assert out["max_ms"] == pytest.approx(50.0)
    assert direct.summarize([], 0, 1.0) == {"requests": 0, "errors": 0}
