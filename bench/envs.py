"""Virtual environments of the peers (MLServer, KServe), built once and reused.

Each peer gets its own venv under ``$FORECASTOPS_CACHE/bench-venvs/<name>`` (default
``~/.cache/forecastops``), outside the repository: their pins clash with ours and with
each other (MLServer 1.7.1 wants starlette 0.46 and uvloop 0.21; KServe 0.21 wants a
newer starlette). A venv is rebuilt only when its requirement list changes (a stamp file
holds the list it was built from).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

PIP_TIMEOUT_S = 1200


@dataclass(frozen=True)
class PeerEnv:
    name: str
    requirements: tuple[str, ...]
    # packages whose versions the report records
    report: tuple[str, ...]


# scikit-learn ~1.5 in both, so that one joblib file serves both (KServe's sklearn
# server pins ~1.5; mlserver-sklearn does not pin it). uvloop 0.21: MLServer's inference
# worker dies with 0.22+ while its server-level readiness still answers 200.
MLSERVER = PeerEnv(
    "mlserver",
    (
        "mlserver==1.7.1",
        "mlserver-sklearn==1.7.1",
        "uvloop==0.21.0",
        "scikit-learn~=1.5.0",
        "joblib",
    ),
    ("mlserver", "mlserver-sklearn", "scikit-learn", "uvloop", "uvicorn", "fastapi", "numpy"),
)
KSERVE = PeerEnv(
    "kserve",
    ("kserve==0.21.0", "scikit-learn~=1.5.0", "joblib"),
    ("kserve", "scikit-learn", "uvicorn", "fastapi", "numpy"),
)
PEER_ENVS = {env.name: env for env in (MLSERVER, KSERVE)}


def cache_root() -> Path:
    base = os.environ.get("FORECASTOPS_CACHE") or str(Path.home() / ".cache" / "forecastops")
    return Path(base)


def venv_dir(env: PeerEnv) -> Path:
    return cache_root() / "bench-venvs" / env.name


def python_of(env: PeerEnv) -> Path:
    return venv_dir(env) / "bin" / "python"


def _stamp(env: PeerEnv) -> str:
    text = "\n".join((sys.version.split()[0], *env.requirements))
    return hashlib.sha256(text.encode()).hexdigest()


def _base_python() -> str:
    # A venv made from inside a venv uses the base interpreter either way; be explicit.
    return getattr(sys, "_base_executable", None) or sys.executable


def ensure(env: PeerEnv, log=print) -> Path:
    """The venv's python, building the venv first when missing or stale."""
    root = venv_dir(env)
    stamp_file = root / ".bench-stamp"
    if stamp_file.exists() and stamp_file.read_text().strip() == _stamp(env):
        return python_of(env)
    if root.exists():
        shutil.rmtree(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    log(f"[env] creating {root} ({' '.join(env.requirements)}); once, a few minutes")
    subprocess.run([_base_python(), "-m", "venv", str(root)], check=True, timeout=300)
    pip = [str(python_of(env)), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True, timeout=PIP_TIMEOUT_S)
    subprocess.run([*pip, *env.requirements], check=True, timeout=PIP_TIMEOUT_S)
    stamp_file.write_text(_stamp(env) + "\n")
    return python_of(env)


def versions(python: Path | str, packages: tuple[str, ...]) -> dict[str, str]:
    """Installed versions of `packages` in the interpreter `python` (missing ones omitted)."""
    code = (
        "import sys, json\n"
        "from importlib.metadata import version, PackageNotFoundError\n"
        "out = {'python': sys.version.split()[0]}\n"
        "for name in sys.argv[1:]:\n"
        "    try:\n"
        "        out[name] = version(name)\n"
        "    except PackageNotFoundError:\n"
        "        pass\n"
        "print(json.dumps(out))\n"
    )
    import json

    done = subprocess.run(
        [str(python), "-c", code, *packages], capture_output=True, text=True, timeout=60
    )
    if done.returncode != 0:
        return {}
    return json.loads(done.stdout)


if __name__ == "__main__":
    for peer in PEER_ENVS.values():
        print(ensure(peer), versions(python_of(peer), peer.report))
