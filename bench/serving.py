"""Serving benchmark: our model server side by side with MLServer, KServe and a bare
FastAPI + ONNX Runtime app, same model, same V2 JSON requests, wrk on loopback.

``python -m bench serving [--quick] [--only ours,bare] [--duration S]``

One server runs at a time; each is started in its own process group, waited for on its
model's own ready endpoint, checked to answer the payloads correctly, warmed up, loaded
with wrk at each (rows, concurrency) cell for a bounded duration, and stopped (always,
also on errors and Ctrl-C). Results: ``bench/results/serving-<time>.json`` and ``.md``
(and ``serving-latest.*``), and the table printed with ratios and target verdicts.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import orjson

from bench import direct, envs, model, procs, report, wrk

API_KEY = "bench-key-0123456789abcdef"  # a throwaway key for a loopback-only server
FULL_CELLS = [(1, 1), (1, 16), (1, 64), (100, 1), (100, 16), (100, 64)]
QUICK_CELLS = [(1, 1), (1, 16), (1, 64), (100, 16), (100, 64)]
ALL_SERVERS = ("ours-1w", "ours-2w", "bare-1w", "bare-2w", "mlserver", "kserve")
QUICK_SERVERS = ("ours-2w", "bare-2w", "mlserver", "kserve")
GROUPS = {
    "ours": ("ours-1w", "ours-2w"),
    "bare": ("bare-1w", "bare-2w"),
    "peers": ("mlserver", "kserve"),
}
# Unset for every server: they slow a current numpy on some processors (see the env notes).
OPENBLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
DIRECT_S = 3.0  # seconds of the direct (uncorrected) c=1 client per cell and round
READY_TIMEOUT_S = {"ours": 60.0, "bare": 60.0, "peer": 180.0}


@dataclass
class Spec:
    name: str
    kind: str  # ours | bare | peer
    label: str
    workers: int
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    port: int
    infer_path: str
    ready_path: str
    headers: dict[str, str] = field(default_factory=dict)
    expected: str = "onnx"  # which predictions its answers must match: onnx | sklearn


def log(msg: str) -> None:
    print(msg, flush=True)


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in OPENBLAS_VARS}
    env.pop("PYTHONPATH", None)
    return env


def ours_available() -> tuple[bool, str]:
    exe = Path(sys.executable).with_name("forecast-server")
    if not exe.exists():
        return False, f"{exe} is missing (run `make venv`)"
    if not (model.REPO / "model_server" / "main.py").exists():
        return False, "model_server/main.py does not exist yet"
    return True, str(exe)


def build_specs(names: list[str], files: model.ModelFiles, run_dir: Path) -> list[Spec]:
    cores = os.cpu_count() or 1
    specs = []
    name = files.name
    infer = f"/v2/models/{name}/infer"
    ready = f"/v2/models/{name}/ready"
    for server in names:
        port = procs.free_port()
        cwd, expected = model.REPO, "onnx"
        headers: dict[str, str] = {}
        if server.startswith("ours"):
            workers = int(server[-2])
            env = base_env()
            # Our defaults are under test: no thread tuning from outside.
            env.pop("OMP_NUM_THREADS", None)
            env.update(
                PREDICTION_WORKERS=str(workers),
                PREDICTION_API_KEYS=API_KEY,
                PREDICTION_MODEL_SHA256=files.sha256,
                PREDICTION_LOG_LEVEL="warning",
            )
            argv = [
                str(Path(sys.executable).with_name("forecast-server")),
                "--model-uri",
                f"file://{files.onnx}",
                "--model-name",
                name,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ]
            kind, label = "ours", "forecast-server (metrics + API key on, defaults)"
            headers = {"X-API-Key": API_KEY}
        elif server.startswith("bare"):
            workers = int(server[-2])
            env = base_env()
            env.update(
                OMP_NUM_THREADS="1",
                BENCH_MODEL_PATH=str(files.onnx),
                BENCH_MODEL_NAME=name,
                BENCH_ORT_THREADS=str(max(1, cores // workers)),
            )
            argv = [
                sys.executable,
                "-m",
                "uvicorn",
                "bench.apps.bare_app:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                str(workers),
                "--loop",
                "uvloop",
                "--http",
                "httptools",
                "--no-access-log",
                "--log-level",
                "warning",
            ]
            kind, label = "bare", "bare FastAPI + onnxruntime (raw body, orjson)"
        elif server == "mlserver":
            repo = run_dir / "mlserver"
            (repo / name).mkdir(parents=True, exist_ok=True)
            settings = {
                "debug": False,
                "parallel_workers": 2,
                "host": "127.0.0.1",
                "http_port": port,
                "grpc_port": procs.free_port(),
                "metrics_port": procs.free_port(),
            }
            (repo / "settings.json").write_text(json.dumps(settings, indent=2))
            model_settings = {
                "name": name,
                "implementation": "mlserver_sklearn.SKLearnModel",
                "parameters": {"uri": str(files.joblib), "version": "1"},
            }
            (repo / name / "model-settings.json").write_text(json.dumps(model_settings, indent=2))
            env = base_env()
            env.update(OMP_NUM_THREADS="1")
            argv = [str(envs.venv_dir(envs.MLSERVER) / "bin" / "mlserver"), "start", str(repo)]
            kind, workers, cwd, expected = "peer", 2, repo, "sklearn"
            label = (
                "MLServer 1.7.1 + mlserver-sklearn, tuned (parallel_workers=2, debug off, OMP=1)"
            )
        elif server == "kserve":
            env = base_env()
            # Tuned: no per-request log lines (see kserve_app), and no deprecation warning
            # that its FastAPI would print on every request.
            env.update(OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore", BENCH_KSERVE_QUIET="1")
            argv = [
                str(envs.python_of(envs.KSERVE)),
                "-m",
                "bench.apps.kserve_app",
                "--model_path",
                str(files.joblib),
                "--model_name",
                name,
                "--http_port",
                str(port),
                "--workers",
                "2",
                "--enable_grpc",
                "false",
                "--enable_latency_logging",
                "false",
            ]
            kind, workers, expected = "peer", 2, "sklearn"
            label = "KServe 0.21 sklearn Model, tuned (--workers 2, request logging off, OMP=1), v2"
        else:
            raise ValueError(f"unknown server {server!r}")
        specs.append(
            Spec(
                server, kind, label, workers, argv, env, cwd, port, infer, ready, headers, expected
            )
        )
    return specs


def response_values(body: bytes) -> np.ndarray:
    doc = orjson.loads(body)
    return np.asarray(doc["outputs"][0]["data"], dtype=np.float64).reshape(-1)


def verify(
    spec: Spec, payloads: dict[int, bytes], expected: dict[str, dict[int, np.ndarray]]
) -> dict:
    """Each payload once: 200, and the predictions of the model this server should serve."""
    out: dict = {"ok": True}
    for rows, body in payloads.items():
        status, answer = procs.http_request(
            spec.port,
            "POST",
            spec.infer_path,
            body,
            {"Content-Type": "application/json", **spec.headers},
        )
        entry: dict = {"status": status}
        if status == 200:
            got = response_values(answer)
            want = expected[spec.expected][rows]
            if got.shape != want.shape:
                entry["problem"] = f"shape {got.shape} != {want.shape}"
            else:
                rel = np.abs(got - want) / np.maximum(np.abs(want), 1.0)
                entry["max_rel_diff"] = float(rel.max(initial=0.0))
                if entry["max_rel_diff"] > 1e-4:
                    entry["problem"] = "predictions differ from the model's"
        else:
            entry["problem"] = answer[:300].decode(errors="replace")
        out[f"{rows}_rows"] = entry
        if "problem" in entry:
            out["ok"] = False
    return out


@dataclass
class Running:
    spec: Spec
    server: procs.Server
    data: dict
    scripts: dict[int, Path]
    bodies: dict[int, bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.spec.port}{self.spec.infer_path}"


def launch(spec: Spec, data: dict, body_paths: dict[int, Path], run_dir: Path) -> Running:
    """Write the server's wrk scripts and start its process group (not yet ready)."""
    bodies = {rows: path.read_bytes() for rows, path in body_paths.items()}
    scripts = {}
    for rows, body_path in body_paths.items():
        script = run_dir / f"{spec.name}-{rows}.lua"
        script.write_text(wrk.lua_script(body_path, spec.headers))
        scripts[rows] = script
    log(f"[{spec.name}] starting: {spec.label}")
    server = procs.Server(spec.name, spec.argv, spec.env, spec.cwd, run_dir / f"{spec.name}.log")
    return Running(spec, server, data, scripts, bodies)


def get_ready(running: Running, payloads: dict[int, bytes], expected: dict) -> None:
    """Wait for the model's own ready endpoint, check that the server listens on loopback
    only and answers correctly, and warm it up; raises on any failure."""
    spec, data = running.spec, running.data
    ready_s, live_s = procs.wait_ready(
        running.server,
        spec.port,
        spec.ready_path,
        READY_TIMEOUT_S[spec.kind],
        spec.headers,
        None if spec.kind == "bare" else "/v2/health/live",
    )
    data["ready_s"] = round(ready_s, 3)
    data["live_s"] = None if live_s is None else round(live_s, 3)
    log(f"[{spec.name}] ready in {ready_s:.2f} s (HTTP live at {data['live_s']} s)")
    pids = [p.pid for p in procs.members(running.server.proc.pid, procs.all_procs())]
    data["listens"] = procs.listening(pids)
    exposed = [a for a in data["listens"] if not procs.is_loopback(a)]
    if exposed:
        raise RuntimeError(f"listens beyond loopback: {exposed}")
    data["verify"] = verify(spec, payloads, expected)
    if not data["verify"]["ok"]:
        log(f"[{spec.name}] WRONG ANSWERS: {data['verify']}")
    for rows in sorted(running.scripts):  # warm every worker for each body size
        wrk.run(running.url, running.scripts[rows], 16, 2)


def measure(
    running: list[Running], cells: list[tuple[int, int]], duration: float, rounds: int
) -> dict[str, dict[str, list[dict]]]:
    """Every cell for every running server, interleaved: for each round and cell the servers
    take turns (in an order rotated from cell to cell), so that a change in the machine's
    background load hits all of them alike rather than whichever ran at that time."""
    samples: dict[str, dict[str, list[dict]]] = {r.spec.name: {} for r in running}
    samples["_loadavg_1min"] = {}
    step = 0
    for rnd in range(rounds):
        for rows, conc in cells:
            key = report.cell_key(rows, conc)
            samples["_loadavg_1min"].setdefault(key, []).append(round(os.getloadavg()[0], 2))
            turn = [r for r in running if "error" not in r.data]
            if turn:
                shift = step % len(turn)
                turn = turn[shift:] + turn[:shift]
            step += 1
            for r in turn:
                try:
                    result, _ = wrk.run(r.url, r.scripts[rows], conc, duration)
                except Exception as exc:
                    r.data["error"] = f"{type(exc).__name__}: {exc}"[:3000]
                    log(f"[{r.spec.name}] FAILED in {key}: {r.data['error']}")
                    continue
                samples[r.spec.name].setdefault(key, []).append(result.to_dict())
                log(
                    f"[round {rnd + 1}/{rounds}] {r.spec.name:<8} {rows:>3} rows c={conc:<2}: "
                    f"{result.rps:>8,.0f} req/s  p50 {result.p50_ms:.3f} ms  "
                    f"p99 {result.p99_ms:.3f} ms  errors {result.errors}"
                )
                if conc == 1:
                    try:
                        seen = direct.run(
                            r.spec.port,
                            r.spec.infer_path,
                            r.bodies[rows],
                            r.spec.headers,
                            min(duration, DIRECT_S),
                        )
                    except Exception as exc:  # informational; wrk's figures stand
                        log(f"[{r.spec.name}] direct client failed: {exc}")
                        continue
                    samples[r.spec.name].setdefault(f"direct:{key}", []).append(seen)
                    log(
                        f"[round {rnd + 1}/{rounds}] {r.spec.name:<8} {rows:>3} rows c=1 direct: "
                        f"p50 {seen['p50_ms']:.3f} ms  p99 {seen['p99_ms']:.3f} ms  "
                        f"p99.9 {seen['p999_ms']:.3f} ms"
                    )
    return samples


def select(only: str | None, quick: bool) -> list[str]:
    default = QUICK_SERVERS if quick else ALL_SERVERS
    if not only:
        return list(default)
    chosen: list[str] = []
    for part in (p.strip() for p in only.split(",") if p.strip()):
        group = GROUPS.get(part, (part,))
        for name in group:
            if name not in ALL_SERVERS:
                raise SystemExit(
                    f"--only: unknown server {name!r} (choose from {', '.join((*GROUPS, *ALL_SERVERS))})"
                )
            if quick and part in GROUPS and name not in QUICK_SERVERS:
                continue
            if name not in chosen:
                chosen.append(name)
    return [s for s in ALL_SERVERS if s in chosen]


def blas_info() -> dict:
    try:
        from threadpoolctl import threadpool_info

        return {
            "threadpools": [
                {
                    k: p.get(k)
                    for k in ("user_api", "internal_api", "architecture", "version", "num_threads")
                }
                for p in threadpool_info()
            ]
        }
    except Exception as exc:  # informational only
        return {"error": str(exc)}


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench serving", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--quick", action="store_true", help="ours-2w, bare-2w, MLServer, KServe; 5 cells; 3 s each"
    )
    parser.add_argument(
        "--only",
        help=f"comma-separated: ours, bare, peers, or server names ({', '.join(ALL_SERVERS)})",
    )
    parser.add_argument(
        "--duration", type=float, help="seconds per cell and round (default 5, quick 3)"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        help="interleaved rounds over all cells; each cell reports the median (default 2, quick 1)",
    )
    parser.add_argument(
        "--strict", action="store_true", help="exit 1 when a target is missed (default: 0)"
    )
    parser.add_argument("--out", type=Path, default=model.RESULTS, help="results directory")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    duration = args.duration or (3.0 if args.quick else 5.0)
    rounds = args.rounds or (1 if args.quick else 2)
    if not 1 <= rounds <= 5:
        raise SystemExit("--rounds must be between 1 and 5")
    if not 1 <= duration <= 60:
        raise SystemExit("--duration must be between 1 and 60 seconds")
    cells = QUICK_CELLS if args.quick else FULL_CELLS
    names = select(args.only, args.quick)
    notes: list[str] = []
    ok, why = ours_available()
    if not ok:
        dropped = [n for n in names if n.startswith("ours")]
        names = [n for n in names if not n.startswith("ours")]
        if dropped:
            notes.append(f"our server not measured: {why}")
            log(f"[bench] skipping {', '.join(dropped)}: {why}")
    if not names:
        raise SystemExit("nothing to run")
    signal.signal(signal.SIGTERM, _interrupt)  # stop the servers as Ctrl-C does
    wrk.ensure_installed(log)
    peers = [n for n in names if n in GROUPS["peers"]]
    peer_python = {}
    for n in peers:
        peer_python[n] = envs.ensure(envs.PEER_ENVS[n], log)
    files = model.prepare(envs.ensure(envs.KSERVE, log) if peers else None, log)

    x = np.load(files.x_test)
    sizes = sorted({r for r, _ in cells})
    expected: dict[str, dict[int, np.ndarray]] = {"onnx": {}, "sklearn": {}}
    onnx_all = model.onnx_predict(files.onnx, x[: max(sizes)]).astype(np.float64)
    sk_path = files.joblib.parent / "sklearn_pred.npy"
    sk_all = np.load(sk_path)[: max(sizes)] if sk_path.exists() else None
    for rows in sizes:
        expected["onnx"][rows] = onnx_all[:rows]
        if sk_all is not None:
            expected["sklearn"][rows] = sk_all[:rows]

    started = datetime.now(UTC)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    args.out.mkdir(parents=True, exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix=f"serving-{stamp}-", dir=args.out))
    payloads = {rows: model.v2_body(x[:rows]) for rows in sizes}
    payload_paths = {}
    for rows, body in payloads.items():
        payload_paths[rows] = run_dir / f"body-{rows}.json"
        payload_paths[rows].write_bytes(body)

    results: dict = {
        "meta": {
            "started": started.isoformat(timespec="seconds"),
            "cores": os.cpu_count(),
            "loadavg_before": " ".join(f"{v:.2f}" for v in os.getloadavg()),
            "duration_s": duration,
            "rounds": rounds,
            "cells": [report.cell_key(r, c) for r, c in cells],
            "wrk": "1 thread, --latency, Lua POST of a V2 JSON body",
            "payload_bytes": {str(r): len(b) for r, b in payloads.items()},
            "model": {"sha256": files.sha256, "training": files.metadata.get("training")},
            "openblas_env_unset_for_servers": {k: os.environ.get(k) for k in OPENBLAS_VARS},
            "blas": blas_info(),
        },
        "versions": {},
        "servers": {},
        "notes": notes,
    }
    log(f"[bench] load average {results['meta']['loadavg_before']}; servers: {', '.join(names)}")
    results["same_model"] = model.same_model_check(files) if peers else {"checked": False}
    results["onnx_us"] = model.onnx_timings(files)
    if peers:
        results["sklearn_us"] = model.sklearn_timings(files, envs.python_of(envs.KSERVE))
        for n in peers:
            env = envs.PEER_ENVS[n]
            results["versions"][n] = envs.versions(peer_python[n], env.report)
    results["versions"]["ours"] = envs.versions(
        sys.executable,
        ("forecastops", "fastapi", "uvicorn", "onnxruntime", "numpy", "orjson", "uvloop"),
    )

    specs = build_specs(names, files, run_dir)
    running: list[Running] = []
    try:
        for spec in specs:
            data = results["servers"][spec.name] = {
                "label": spec.label,
                "kind": spec.kind,
                "workers": spec.workers,
                "cells": {},
            }
            try:
                running.append(launch(spec, data, payload_paths, run_dir))
                get_ready(running[-1], payloads, expected)
            except Exception as exc:  # recorded; the others still run
                data["error"] = f"{type(exc).__name__}: {exc}"[:3000]
                log(f"[{spec.name}] FAILED: {data['error']}")
        results["meta"]["loadavg_start_of_load"] = " ".join(f"{v:.2f}" for v in os.getloadavg())
        samples = measure([r for r in running if "error" not in r.data], cells, duration, rounds)
        load = [v for values in samples.pop("_loadavg_1min").values() for v in values]
        if load:
            results["meta"]["loadavg_1min_during"] = {
                "min": min(load),
                "median": sorted(load)[len(load) // 2],
                "max": max(load),
            }
        for name, per_cell in samples.items():
            for key, runs in per_cell.items():
                if key.startswith("direct:"):
                    direct_cells = results["servers"][name].setdefault("direct", {})
                    direct_cells[key.removeprefix("direct:")] = report.combine(runs)
                else:
                    results["servers"][name]["cells"][key] = report.combine(runs)
    except KeyboardInterrupt:
        notes.append("interrupted: partial results")
        log("[bench] interrupted; writing partial results")
    finally:
        for r in running:
            r.server.stop()
            r.data["memory"] = r.server.memory.summary()
            log(f"[{r.spec.name}] stopped; peak RSS {r.data['memory']['peak_total_mb']} MB")
    results["meta"]["loadavg_after"] = " ".join(f"{v:.2f}" for v in os.getloadavg())
    results["meta"]["wall_s"] = round((datetime.now(UTC) - started).total_seconds(), 1)
    same = results.get("same_model", {})
    if same.get("checked"):
        notes.append(
            "MLServer and KServe serve a scikit-learn estimator trained with the same data and "
            "parameters (200 trees, depth 6, 26 features) in their own scikit-learn "
            f"{results['versions'].get('kserve', {}).get('scikit-learn', '?')}; its predictions "
            f"differ from our ONNX export's by at most {same['max_rel_diff']:.3g} (relative, "
            f"{same['rows']} holdout rows), median {same.get('median_rel_diff', float('nan')):.3g}: "
            "same structure and cost, not bit-identical trees."
        )
    verdicts = report.evaluate(results)
    results["ratios"] = {
        report.cell_key(r, c): report.cell_ratios(results, report.cell_key(r, c)) for r, c in cells
    }
    results["verdicts"] = report.verdicts_json(verdicts)
    text = report.markdown(results, cells, verdicts)
    json_path = args.out / f"serving-{stamp}.json"
    md_path = args.out / f"serving-{stamp}.md"
    json_path.write_bytes(
        orjson.dumps(results, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY)
    )
    md_path.write_text(text)
    shutil.copyfile(json_path, args.out / "serving-latest.json")
    shutil.copyfile(md_path, args.out / "serving-latest.md")
    print()
    print(text)
    log(f"[bench] wrote {json_path} and {md_path} ({results['meta']['wall_s']} s)")
    broken = [
        name
        for name, data in results["servers"].items()
        if "error" in data or not data.get("verify", {}).get("ok", False)
    ]
    if broken:
        log(f"[bench] failed or answered wrongly: {', '.join(broken)}")
        return 2
    missed = [v for v in verdicts if v.ok is False]
    if missed:
        log(f"[bench] {len(missed)} target(s) missed (see the table)")
    return 1 if missed and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
