"""Ratios and target verdicts of the serving benchmark, on made-up results."""

from __future__ import annotations

import pytest

from bench import report
from bench.__main__ import dispatch


def cell(rps, p50=1.0, p99=2.0, errors=0):
    return {"rps": rps, "p50_ms": p50, "p99_ms": p99, "errors": errors}


def results(ours_1r_c16=8000.0, ours_100r_c16=2500.0, c1=(0.2, 0.5), c64_100=(10.0, 25.0)):
    return {
        "servers": {
            "ours-2w": {
                "kind": "ours",
                "ready_s": 0.8,
                "memory": {"peak_max_process_mb": 95.0},
                "direct": {"1r_c1": {"p50_ms": 0.15, "p99_ms": 0.4}},
                "cells": {
                    "1r_c1": cell(4000, *c1),
                    "1r_c16": cell(ours_1r_c16),
                    "1r_c64": cell(9000, 5.0, 9.0),
                    "100r_c16": cell(ours_100r_c16),
                    "100r_c64": cell(2400, *c64_100),
                },
            },
            "bare-2w": {"kind": "bare", "cells": {"1r_c16": cell(7000), "100r_c16": cell(2200)}},
            "mlserver": {"kind": "peer", "cells": {"1r_c16": cell(500), "100r_c16": cell(300)}},
            "kserve": {"kind": "peer", "cells": {"1r_c16": cell(900), "100r_c16": cell(400)}},
        }
    }


def by_target(verdicts):
    return {v.target.split(":")[0] + ":" + v.target.split(":")[1][:12]: v for v in verdicts}


def test_best_peer_and_ratios():
    r = results()
    assert report.best_peer(r, "1r_c16") == ("kserve", 900)
    ratios = report.cell_ratios(r, "1r_c16")
    assert ratios["best_peer"] == "kserve"
    assert ratios["ours-2w/best_peer"] == pytest.approx(8000 / 900)
    assert ratios["ours-2w/bare-2w"] == pytest.approx(8000 / 7000)
    assert "ours-1w/best_peer" not in ratios


def test_all_targets_pass():
    verdicts = report.evaluate(results())
    assert verdicts and all(v.ok is True for v in verdicts), [
        (v.target, v.value) for v in verdicts if not v.ok
    ]
    assert {v.server for v in verdicts} == {"ours-2w"}


def test_failures_are_reported():
    r = results(ours_1r_c16=6000.0, ours_100r_c16=1000.0, c1=(0.3, 0.9), c64_100=(10.0, 40.0))
    r["servers"]["ours-2w"]["cells"]["100r_c64"]["errors"] = 3
    r["servers"]["ours-2w"]["memory"]["peak_max_process_mb"] = 130.0
    r["servers"]["ours-2w"]["ready_s"] = 1.4
    r["servers"]["ours-2w"]["direct"]["1r_c1"]["p99_ms"] = 0.7
    failed = {v.target for v in report.evaluate(r) if v.ok is False}
    assert failed == {
        "1 row c=16: ≥ 8x the better of MLServer/KServe",
        "100 rows c=16: ≥ 5x the better of MLServer/KServe",
        "1 row c=16: not below the bare app (bare-2w)",
        "c=1, 1 row: p50 ≤ 0.25 ms",
        "c=1, 1 row: p99 ≤ 0.6 ms",
        "c=64, 100 rows: p99 ≤ 3x p50",
        "c=64, 100 rows: zero errors",
        "RSS per worker ≤ 110 MB (largest process, peak)",
        "ready ≤ 1 s (process start → model ready; file local)",
        "c=1, 1 row: p99 ≤ 0.6 ms, uncorrected (direct client)",
    }


def test_missing_measurements_are_not_verdicts():
    r = results()
    del r["servers"]["mlserver"], r["servers"]["kserve"]
    del r["servers"]["ours-2w"]["cells"]["1r_c64"]
    verdicts = {v.target: v for v in report.evaluate(r)}
    assert verdicts["1 row c=16: ≥ 8x the better of MLServer/KServe"].ok is None
    assert verdicts["c=64, 1 row: zero errors"].ok is None
    assert verdicts["c=64, 1 row: zero errors"].word == "n/a"


def test_no_ours_no_verdicts():
    r = results()
    del r["servers"]["ours-2w"]
    assert report.evaluate(r) == []


def test_markdown_table_has_ratio_columns():
    r = results()
    text = report.markdown(r, [(1, 16), (100, 16)], report.evaluate(r))
    assert "| cell | ours-2w | bare-2w | mlserver | kserve | ours-2w ÷ best peer |" in text
    assert "8.89x" in text  # 8000 / 900
    assert "PASS" in text and "FAIL" not in text


def test_combine_rounds_takes_medians_and_sums_errors():
    runs = [
        {
            **cell(900, 1.0, 3.0, 0),
            "p90_ms": 2.0,
            "max_ms": 9.0,
            "requests": 9000,
            "non_2xx": 0,
            "socket_errors": 0,
            "duration_s": 10.0,
        },
        {
            **cell(1000, 2.0, 4.0, 1),
            "p90_ms": 3.0,
            "max_ms": 5.0,
            "requests": 10000,
            "non_2xx": 1,
            "socket_errors": 0,
            "duration_s": 10.0,
        },
        {
            **cell(1300, 3.0, 9.0, 2),
            "p90_ms": 4.0,
            "max_ms": 7.0,
            "requests": 13000,
            "non_2xx": 0,
            "socket_errors": 2,
            "duration_s": 10.0,
        },
    ]
    out = report.combine(runs)
    assert (out["rps"], out["p50_ms"], out["p99_ms"], out["p90_ms"]) == (1000, 2.0, 4.0, 3.0)
    assert (out["max_ms"], out["requests"], out["errors"]) == (9.0, 32000, 3)
    assert (out["non_2xx"], out["socket_errors"]) == (1, 2)
    assert out["rounds_rps"] == [900, 1000, 1300]
    two = report.combine(runs[:2])
    assert two["rps"] == 950 and two["p99_ms"] == 3.5
    assert report.combine(runs[:1])["rounds_rps"] == [900]


def test_dispatch():
    assert dispatch([]) == ("serving", [])
    assert dispatch(["--quick"]) == ("serving", ["--quick"])
    assert dispatch(["serving", "--only", "ours"]) == ("serving", ["--only", "ours"])
    assert dispatch(["--help"]) == ("help", [])
    with pytest.raises(SystemExit):
        dispatch(["nope"])


def test_the_model_cache_key_reads_files_that_exist() -> None:
    """The key hashes the training code: a moved file must not break the benchmark."""
    from bench import model

    assert len(model._key()) == 16
