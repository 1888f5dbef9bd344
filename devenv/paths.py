"""Where things are: the repository, the binary cache, the pinned versions."""

from __future__ import annotations

import os
import socket
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def cache_dir() -> Path:
    """Binary cache outside the work tree ($FORECASTOPS_CACHE, else ~/.cache/forecastops)."""
    if env := os.environ.get("FORECASTOPS_CACHE"):
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "forecastops"


def bin_dir() -> Path:
    return cache_dir() / "bin"


@cache
def versions() -> dict[str, str]:
    """The pinned versions in hack/versions.env (KEY=VALUE lines)."""
    out: dict[str, str] = {}
    for line in (REPO / "hack" / "versions.env").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}
