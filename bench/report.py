"""Ratios, target verdicts and the Markdown table: pure functions over the results dict.

Results layout (what `serving` writes as JSON)::

    {"servers": {"ours-2w": {"label": ..., "kind": "ours"|"bare"|"peer", "workers": 2,
                             "ready_s": 0.7, "memory": {"peak_total_mb": ...,
                             "peak_max_process_mb": ...}, "cells": {"1r_c16": {wrk result}}},
                 ...},
     "onnx_us": {...}, "sklearn_us": {...}, ...}
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

PEERS = ("mlserver", "kserve")
OURS = ("ours-2w", "ours-1w")  # the first present is the headline
BARE_FOR = {"ours-2w": "bare-2w", "ours-1w": "bare-1w"}

# The targets (issue 4, "Performance").
MIN_RATIO_1ROW_C16 = 8.0
MIN_RATIO_100ROWS_C16 = 5.0
MAX_P50_C1_MS = 0.25
MAX_P99_C1_MS = 0.6
MAX_TAIL_RATIO_C64 = 3.0
MAX_RSS_PER_WORKER_MB = 110.0
MAX_READY_S = 1.0
BUSY_LOAD = 2.5  # median 1-min load above which the report warns (2 cores, ~2 is our own)


def cell_key(rows: int, concurrency: int) -> str:
    return f"{rows}r_c{concurrency}"


@dataclass(frozen=True)
class Verdict:
    target: str
    server: str
    value: float | None
    threshold: str
    ok: bool | None  # None: not measured in this run
    reference: float | None = None  # the bare app of as many workers, same run

    @property
    def word(self) -> str:
        return {True: "PASS", False: "FAIL", None: "n/a"}[self.ok]


def _rps(results: dict, server: str, key: str) -> float | None:
    cell = results["servers"].get(server, {}).get("cells", {}).get(key)
    return None if cell is None else cell["rps"]


def best_peer(results: dict, key: str) -> tuple[str | None, float | None]:
    """The peer (MLServer or KServe) with the most requests/s in cell `key`."""
    found = [(p, _rps(results, p, key)) for p in PEERS]
    found = [(p, r) for p, r in found if r is not None]
    if not found:
        return None, None
    return max(found, key=lambda pr: pr[1])


def headline(results: dict) -> str | None:
    return next((s for s in OURS if s in results["servers"]), None)


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b <= 0:
        return None
    return a / b


def cell_ratios(results: dict, key: str) -> dict:
    """Ours (each variant) over the best peer and over the bare app of as many workers."""
    peer, peer_rps = best_peer(results, key)
    out: dict = {"best_peer": peer}
    for ours in OURS:
        rps = _rps(results, ours, key)
        if rps is None:
            continue
        out[f"{ours}/best_peer"] = ratio(rps, peer_rps)
        out[f"{ours}/{BARE_FOR[ours]}"] = ratio(rps, _rps(results, BARE_FOR[ours], key))
    return out


MEDIAN_KEYS = ("rps", "p50_ms", "p90_ms", "p99_ms", "p999_ms", "mean_ms")
SUM_KEYS = ("requests", "non_2xx", "socket_errors", "errors", "duration_s")


def combine(runs: list[dict]) -> dict:
    """One cell from its rounds: the median of requests/s and of each latency percentile,
    the worst max, the sum of requests and errors, and each round's requests/s."""
    if len(runs) == 1:
        return {**runs[0], "rounds_rps": [runs[0].get("rps")]}

    def median(key: str) -> float:
        values = sorted(r[key] for r in runs)
        mid = len(values) // 2
        return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2

    out = {key: median(key) for key in MEDIAN_KEYS if all(key in r for r in runs)}
    if all("max_ms" in r for r in runs):
        out["max_ms"] = max(r["max_ms"] for r in runs)
    for key in SUM_KEYS:
        if all(key in r for r in runs):
            out[key] = sum(r[key] for r in runs)
    out["rounds_rps"] = [r.get("rps") for r in runs]
    return out


def _check(value: float | None, ok) -> bool | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return bool(ok(value))


def evaluate(results: dict) -> list[Verdict]:
    """Every target of the issue, for the headline variant (throughput) and for each of our
    variants measured (latency, tail, errors, memory, ready time)."""
    verdicts: list[Verdict] = []
    top = headline(results)
    if top is None:
        return verdicts
    for rows, minimum in ((1, MIN_RATIO_1ROW_C16), (100, MIN_RATIO_100ROWS_C16)):
        key = cell_key(rows, 16)
        _, peer_rps = best_peer(results, key)
        r = ratio(_rps(results, top, key), peer_rps)
        verdicts.append(
            Verdict(
                f"{rows} row{'s' if rows > 1 else ''} c=16: ≥ {minimum:g}x the better of MLServer/KServe",
                top,
                r,
                f"≥ {minimum:g}x",
                _check(r, lambda v, m=minimum: v >= m),
                ratio(_rps(results, BARE_FOR[top], key), peer_rps),
            )
        )
    servers = results["servers"]
    for ours in OURS:
        if ours not in servers:
            continue
        bare = BARE_FOR[ours]
        key = cell_key(1, 16)
        r = ratio(_rps(results, ours, key), _rps(results, bare, key))
        verdicts.append(
            Verdict(
                f"1 row c=16: not below the bare app ({bare})",
                ours,
                r,
                "≥ 1.0x",
                _check(r, lambda v: v >= 1.0),
            )
        )
    for ours in OURS:
        if ours not in servers:
            continue
        bare = servers.get(BARE_FOR[ours])
        for target, measure, threshold, passes in PER_SERVER_TARGETS:
            value = measure(servers[ours])
            reference = measure(bare) if bare is not None else None
            verdicts.append(
                Verdict(target, ours, value, threshold, _check(value, passes), reference)
            )
    return verdicts


def _cell_value(data: dict, rows: int, conc: int, field: str) -> float | None:
    cell = data.get("cells", {}).get(cell_key(rows, conc))
    return None if cell is None else float(cell[field])


def _tail(data: dict, rows: int) -> float | None:
    cell = data.get("cells", {}).get(cell_key(rows, 64))
    return None if cell is None else ratio(cell["p99_ms"], cell["p50_ms"])


# (target, measure(server data) -> value, threshold text, passes(value) -> bool): checked
# for each of our variants, and measured on the bare app of as many workers for reference.
PER_SERVER_TARGETS = [
    (
        "c=1, 1 row: p50 ≤ 0.25 ms",
        lambda d: _cell_value(d, 1, 1, "p50_ms"),
        f"≤ {MAX_P50_C1_MS} ms",
        lambda v: v <= MAX_P50_C1_MS,
    ),
    (
        "c=1, 1 row: p99 ≤ 0.6 ms",
        lambda d: _cell_value(d, 1, 1, "p99_ms"),
        f"≤ {MAX_P99_C1_MS} ms",
        lambda v: v <= MAX_P99_C1_MS,
    ),
    (
        "c=1, 1 row: p99 ≤ 0.6 ms, uncorrected (direct client)",
        lambda d: d.get("direct", {}).get(cell_key(1, 1), {}).get("p99_ms"),
        f"≤ {MAX_P99_C1_MS} ms",
        lambda v: v <= MAX_P99_C1_MS,
    ),
    *(
        target
        for rows, label in ((1, "1 row"), (100, "100 rows"))
        for target in (
            (
                f"c=64, {label}: p99 ≤ 3x p50",
                lambda d, n=rows: _tail(d, n),
                f"≤ {MAX_TAIL_RATIO_C64:g}x",
                lambda v: v <= MAX_TAIL_RATIO_C64,
            ),
            (
                f"c=64, {label}: zero errors",
                lambda d, n=rows: _cell_value(d, n, 64, "errors"),
                "= 0",
                lambda v: v == 0,
            ),
        )
    ),
    (
        "RSS per worker ≤ 110 MB (largest process, peak)",
        lambda d: d.get("memory", {}).get("peak_max_process_mb"),
        f"≤ {MAX_RSS_PER_WORKER_MB:g} MB",
        lambda v: v <= MAX_RSS_PER_WORKER_MB,
    ),
    (
        "ready ≤ 1 s (process start → model ready; file local)",
        lambda d: d.get("ready_s"),
        f"≤ {MAX_READY_S:g} s",
        lambda v: v <= MAX_READY_S,
    ),
]


def _fmt(value: float | None, digits: int = 2, suffix: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}{suffix}"
    return f"{value:.{digits}f}{suffix}"


def cells_table(results: dict, cells: list[tuple[int, int]]) -> list[str]:
    """Markdown: one row per (rows, concurrency); per server `rps (p50/p99 ms)`; ratios."""
    names = list(results["servers"])
    ratio_cols = [
        (f"{ours}/best_peer", f"{ours} ÷ best peer") for ours in OURS if ours in names
    ] + [
        (f"{ours}/{BARE_FOR[ours]}", f"{ours} ÷ {BARE_FOR[ours]}")
        for ours in OURS
        if ours in names and BARE_FOR[ours] in names
    ]
    head = ["cell", *names, *(label for _, label in ratio_cols)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for rows, conc in cells:
        key = cell_key(rows, conc)
        row = [f"{rows} row{'s' if rows > 1 else ''}, c={conc}"]
        for name in names:
            cell = results["servers"][name].get("cells", {}).get(key)
            if cell is None:
                row.append("-")
                continue
            text = f"{_fmt(cell['rps'], 0)} ({_fmt(cell['p50_ms'])}/{_fmt(cell['p99_ms'])})"
            if cell.get("errors"):
                text += f" **{cell['errors']} err**"
            row.append(text)
        ratios = cell_ratios(results, key)
        row.extend(_fmt(ratios.get(col), 2, "x") for col, _ in ratio_cols)
        lines.append("| " + " | ".join(row) + " |")
    return lines


def servers_table(results: dict) -> list[str]:
    lines = [
        "| server | what | workers | live s | ready s | peak RSS total MB | largest process MB | response check |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, data in results["servers"].items():
        mem = data.get("memory", {})
        check = data.get("verify", {})
        word = "ok" if check.get("ok") else ("FAILED" if check else "-")
        lines.append(
            f"| {name} | {data.get('label', '')} | {data.get('workers', '')} | "
            f"{_fmt(data.get('live_s'))} | {_fmt(data.get('ready_s'))} | "
            f"{_fmt(mem.get('peak_total_mb'), 0)} | "
            f"{_fmt(mem.get('peak_max_process_mb'), 0)} | {word} |"
        )
    return lines


def model_time_lines(results: dict) -> list[str]:
    """In-process prediction time, and its share of a c=1 round trip per server."""
    onnx = results.get("onnx_us", {})
    sk = results.get("sklearn_us", {})
    text = (
        "In-process prediction time (median us): ONNX Runtime 1 row "
        f"{_fmt(onnx.get('1_rows_1_threads_us'), 1)}, 100 rows "
        f"{_fmt(onnx.get('100_rows_1_threads_us'), 0)} (1 thread) / "
        f"{_fmt(onnx.get('100_rows_2_threads_us'), 0)} (2 threads)"
    )
    if "1_rows_us" in sk:
        text += (
            f"; scikit-learn predict (what the peers run, OMP_NUM_THREADS=1) 1 row "
            f"{_fmt(sk.get('1_rows_us'), 0)}, 100 rows {_fmt(sk.get('100_rows_us'), 0)}"
        )
    lines = [text + ".", ""]
    rows = []
    for name, data in results["servers"].items():
        model_us = sk if data.get("kind") == "peer" else onnx
        for n in (1, 100):
            cell = data.get("cells", {}).get(cell_key(n, 1))
            us = model_us.get(f"{n}_rows_us", model_us.get(f"{n}_rows_1_threads_us"))
            if cell is None or us is None:
                continue
            p50_us = cell["p50_ms"] * 1000
            rows.append(
                f"| {name} | {n} | {_fmt(p50_us, 0)} | {_fmt(us, 0)} | "
                f"{_fmt(p50_us - us, 0)} | {_fmt(100 * us / p50_us, 0)} % |"
            )
    if rows:
        lines += [
            "| server | rows | c=1 p50 us | model us | serving overhead us | model share |",
            "|---|---|---|---|---|---|",
            *rows,
        ]
    return lines


def direct_table(results: dict) -> list[str]:
    """c=1 latency as each request saw it (no coordinated-omission correction)."""
    rows = []
    for name, data in results["servers"].items():
        for key, label in ((cell_key(1, 1), "1"), (cell_key(100, 1), "100")):
            d = data.get("direct", {}).get(key)
            if d and d.get("requests"):
                wrk_cell = data.get("cells", {}).get(key, {})
                rows.append(
                    f"| {name} | {label} | {_fmt(d['p50_ms'], 3)} | {_fmt(d['p90_ms'], 3)} | "
                    f"{_fmt(d['p99_ms'], 3)} | {_fmt(d['p999_ms'], 3)} | "
                    f"{_fmt(wrk_cell.get('p99_ms'), 3)} |"
                )
    if not rows:
        return []
    return [
        "c=1 latency without wrk's coordinated-omission correction (one keep-alive connection, "
        "Python closed-loop client, its own ~30 us per request included), ms:",
        "",
        "| server | rows | p50 | p90 | p99 | p99.9 | wrk p99 (corrected) |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
    ]


def verdicts_table(verdicts: list[Verdict]) -> list[str]:
    lines = [
        "| target | server | measured | threshold | verdict | bare app, same run |",
        "|---|---|---|---|---|---|",
    ]
    for v in verdicts:
        lines.append(
            f"| {v.target} | {v.server} | {_fmt(v.value)} | {v.threshold} | {v.word} | "
            f"{_fmt(v.reference)} |"
        )
    return lines


def _load_during(meta: dict) -> str:
    during = meta.get("loadavg_1min_during")
    if not during:
        return "?"
    return f"min {during['min']:.2f} / median {during['median']:.2f} / max {during['max']:.2f}"


def markdown(results: dict, cells: list[tuple[int, int]], verdicts: list[Verdict]) -> str:
    meta = results.get("meta", {})
    parts = [
        "# Serving benchmark",
        "",
        f"Run {meta.get('started', '')}; {meta.get('cores', '?')} cores; load average (1, 5, 15 "
        f"min) before {meta.get('loadavg_before', '?')}, after {meta.get('loadavg_after', '?')}; "
        f"1-min load during the cells {_load_during(meta)} (the benchmark itself, server + wrk, "
        "adds about 2); "
        f"{meta.get('duration_s', '?')} s per cell and round, {meta.get('rounds', 1)} "
        "interleaved round(s) (medians), wrk 1 thread, loopback. "
        "Cells: requests/s (p50/p99 ms). Ratios are requests/s ratios within this run.",
        "",
        *cells_table(results, cells),
        "",
        *servers_table(results),
        "",
        *model_time_lines(results),
        "",
        *direct_table(results),
        *verdicts_table(verdicts),
        "",
    ]
    versions = results.get("versions", {})
    if versions:
        parts += [
            "Versions: "
            + "; ".join(
                f"{name}: " + ", ".join(f"{k} {v}" for k, v in pkgs.items())
                for name, pkgs in versions.items()
            ),
            "",
        ]
    notes = list(results.get("notes", []))
    during = meta.get("loadavg_1min_during")
    if during and during["median"] > BUSY_LOAD:
        notes.append(
            f"The machine was busy (median 1-min load {during['median']:.2f} during the cells, "
            f"of which about 2 is the benchmark itself): absolute latencies, p99 above all, "
            "carry other processes' scheduling delays; the ratios were measured interleaved "
            "and are the figures to trust."
        )
    if notes:
        parts += ["Notes:", "", *(f"- {n}" for n in notes), ""]
    return "\n".join(parts)


def verdicts_json(verdicts: list[Verdict]) -> list[dict]:
    return [{**asdict(v), "verdict": v.word} for v in verdicts]
