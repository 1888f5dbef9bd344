"""The container images, built for real with buildah and run with podman on this machine.

    python -m devenv.images build   # the stand-in base if missing, then both images; sizes
    python -m devenv.images sizes   # sizes of the built images, and the estimate on the real base
    python -m devenv.images scan    # pip-audit of each image's Python packages, and pending
                                    # Debian security updates in each image

Dockerfile.server and Dockerfile.operator are built exactly as users build them with
`docker build`; only the engine differs (see docs/images.md):

- No registry is reachable here, so `python:3.11-slim-bookworm` is a local stand-in made
  with mmdebstrap from Debian bookworm's packages and imported under that very name. It is
  labelled with a hash of its recipe and remade only when missing or when the recipe
  changes; an image of that name without the label (a real one) is never touched.
- podman and buildah read hack/containers.conf through CONTAINERS_CONF (rlimits this
  machine can grant, runc, cgroupfs): /etc/containers is never changed.
- PyPI is reached through a TLS-intercepting proxy whose CA is in the host's bundle: the
  bundle is bind-mounted into the build's RUN steps only, never into an image layer.

Images live in podman's own storage; the stand-in's root file system is made under
$FORECASTOPS_CACHE/images and deleted once imported.

Public API, for tests: SERVER_IMAGE, OPERATOR_IMAGE, podman_argv(), podman(), image_exists().
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devenv.paths import REPO, cache_dir

SERVER_IMAGE = "localhost/forecast-server:dev"
OPERATOR_IMAGE = "localhost/forecast-operator:dev"
DOCKERFILES = {SERVER_IMAGE: "Dockerfile.server", OPERATOR_IMAGE: "Dockerfile.operator"}
BASE_IMAGE = "docker.io/library/python:3.11-slim-bookworm"

# The real python:3.11-slim-bookworm (linux/amd64) is about 125-155 MB uncompressed, as
# `docker images` reports it (Docker Hub shows ~45 MB compressed); the figure drifts a
# little with each rebuild of the tag. It cannot be measured here (no registry), so the
# size estimate takes the top of that range: an estimate, erring on the large side.
REAL_SLIM_BASE_BYTES = 155_000_000

CONTAINERS_CONF = REPO / "hack" / "containers.conf"
RUNC = "/usr/sbin/runc"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
TOOLS = ("podman", "buildah", "mmdebstrap", RUNC)
RECIPE_LABEL = "io.forecastops.standin-recipe"
# buildah 1.28 keys a cached RUN layer without the content of what is bind-mounted into it
# (BuildKit includes it): the final stage's install, which mounts the build stage's wheels
# and hack/docker, would be reused from an older build after a source change. So each image
# carries the hash of its build context and Dockerfile, and a change rebuilds it without the
# layer cache (pip's download cache, a cache mount, is kept).
CONTEXT_LABEL = "io.forecastops.context"

# --- the stand-in base: what the real python:3.11-slim-bookworm is, from Debian packages
STANDIN_PACKAGES = (
    "python3",
    "python3-venv",
    "python3-pip",
    "python-is-python3",
    "ca-certificates",
    "netbase",
)
STANDIN_SOURCES = (
    "deb http://deb.debian.org/debian bookworm main",
    "deb http://deb.debian.org/debian bookworm-updates main",
    "deb http://deb.debian.org/debian-security bookworm-security main",
)
# As debian:bookworm-slim (the real image's base): no docs but copyrights, no man pages,
# no translations; and apt as in every official Debian image: no package caches kept.
STANDIN_DPKG_OPTIONS = (
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/locale/*",
    "path-exclude=/usr/share/groff/*",
    "path-exclude=/usr/share/lintian/*",
)
STANDIN_APT_CONF = {
    "docker-clean": (
        'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb '
        '/var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };\n'
        'APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb '
        '/var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };\n'
        'Dir::Cache::pkgcache "";\nDir::Cache::srcpkgcache "";\n'
    ),
    "docker-autoremove-suggests": 'Apt::AutoRemove::SuggestsImportant "false";\n',
    "docker-gzip-indexes": 'Acquire::GzipIndexes "true";\n',
    "docker-no-languages": 'Acquire::Languages "none";\n',
}
# The real image's python has no EXTERNALLY-MANAGED marker, and keeps no apt lists.
STANDIN_CLEANUP = (
    'rm -f "$1"/usr/lib/python3*/EXTERNALLY-MANAGED',
    'rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/* "$1"/var/log/apt/* "$1"/tmp/*',
)
STANDIN_CHANGES = ("ENV LANG=C.UTF-8", 'CMD ["python3"]')


class ImageError(RuntimeError):
    pass


def log(msg: str) -> None:
    print(f"[images] {msg}", flush=True)


# --- podman and buildah, configured for this machine -----------------------------------


def container_env() -> dict[str, str]:
    """The environment podman and buildah run with: our containers.conf."""
    return {**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)}


def missing_tools() -> list[str]:
    return [tool for tool in TOOLS if shutil.which(tool) is None]


def podman_argv() -> list[str]:
    """The podman command line prefix (run it with container_env(), as podman() does)."""
    return ["podman", "--runtime", RUNC, "--cgroup-manager", "cgroupfs"]


def podman(
    *args: str,
    check: bool = True,
    timeout: float = 600,
    capture_output: bool = True,
    **kw: Any,
) -> subprocess.CompletedProcess[str]:
    """Run `podman ARGS` with our containers.conf and runc; text output captured."""
    return subprocess.run(
        [*podman_argv(), *args],
        env={**container_env(), **kw.pop("env", {})},
        check=check,
        timeout=timeout,
        capture_output=capture_output,
        text=True,
        **kw,
    )


def image_exists(ref: str) -> bool:
    """Whether podman's storage holds `ref` (False when podman itself is missing)."""
    if shutil.which("podman") is None:
        return False
    return podman("image", "exists", ref, check=False, timeout=60).returncode == 0


def image_inspect(ref: str) -> dict[str, Any]:
    return json.loads(podman("image", "inspect", ref, timeout=60).stdout)[0]


def image_size(ref: str) -> int:
    """The image's size in bytes, all layers, uncompressed (as `podman images` shows)."""
    return int(image_inspect(ref)["Size"])


def image_labels(ref: str) -> dict[str, str]:
    return image_inspect(ref).get("Labels") or {}


# --- the stand-in base ------------------------------------------------------------------


def standin_recipe() -> str:
    """The stand-in's whole recipe as text: its hash decides when to remake it."""
    return json.dumps(
        {
            "packages": STANDIN_PACKAGES,
            "sources": STANDIN_SOURCES,
            "dpkg": STANDIN_DPKG_OPTIONS,
            "apt": STANDIN_APT_CONF,
            "cleanup": STANDIN_CLEANUP,
            "changes": STANDIN_CHANGES,
        },
        sort_keys=True,
    )


def standin_hash() -> str:
    return hashlib.sha256(standin_recipe().encode()).hexdigest()[:16]


def base_is_standin(ref: str = BASE_IMAGE) -> bool:
    return RECIPE_LABEL in image_labels(ref)


def ensure_base() -> bool:
    """Make and import the stand-in base unless an up-to-date one (or a real one) exists.

    Returns True when it was (re)made.
    """
    if image_exists(BASE_IMAGE):
        labels = image_labels(BASE_IMAGE)
        if RECIPE_LABEL not in labels:
            log(f"{BASE_IMAGE}: a real image (no stand-in label), used as it is")
            return False
        if labels[RECIPE_LABEL] == standin_hash():
            log(f"{BASE_IMAGE}: stand-in up to date (recipe {standin_hash()})")
            return False
        log(f"{BASE_IMAGE}: stand-in recipe changed, remaking it")
    work = cache_dir() / "images"
    work.mkdir(parents=True, exist_ok=True)
    rootfs = work / f"standin-{standin_hash()}.tar"
    hooks = [
        *(
            f"printf '%s' {_sh_quote(text)} > \"$1\"/etc/apt/apt.conf.d/{name}"
            for name, text in STANDIN_APT_CONF.items()
        ),
        *STANDIN_CLEANUP,
    ]
    argv = [
        "mmdebstrap",
        "--variant=minbase",
        "--include=" + ",".join(STANDIN_PACKAGES),
        *(f"--dpkgopt={option}" for option in STANDIN_DPKG_OPTIONS),
        *(f"--customize-hook={hook}" for hook in hooks),
        "bookworm",
        str(rootfs),
        *STANDIN_SOURCES,
    ]
    started = time.monotonic()
    log(f"making the stand-in for {BASE_IMAGE} with mmdebstrap (about a minute)")
    done = subprocess.run(
        argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=1200, check=False
    )
    if done.returncode:
        rootfs.unlink(missing_ok=True)
        raise ImageError(f"mmdebstrap failed:\n{done.stderr[-4000:]}")
    changes = [*STANDIN_CHANGES, f"LABEL {RECIPE_LABEL}={standin_hash()}"]
    try:
        podman(
            "import",
            *(arg for change in changes for arg in ("--change", change)),
            str(rootfs),
            BASE_IMAGE,
        )
    finally:
        rootfs.unlink(missing_ok=True)
    log(f"{BASE_IMAGE}: stand-in made in {time.monotonic() - started:.0f}s")
    return True


def _sh_quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


# --- building ---------------------------------------------------------------------------


def project_version() -> str:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]


def context_hash(dockerfile: str) -> str:
    """The hash of the Dockerfile and of every file of the build context it can see: the
    paths .dockerignore keeps (`!path` lines), without bytecode."""
    keep = [
        line[1:].strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    ]
    files = [REPO / dockerfile, REPO / ".dockerignore"]
    for entry in keep:
        path = REPO / entry
        files += sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    digest = hashlib.sha256()
    for path in files:
        if "__pycache__" in path.parts or path.suffix in {".pyc", ".pyo", ".pyd"}:
            continue
        digest.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def buildah_argv(dockerfile: str, tag: str, *, no_cache: bool = False) -> list[str]:
    argv = [
        "buildah",
        "bud",
        "--runtime",
        RUNC,
        "--network",
        "host",
        "--format",
        "docker",  # keeps HEALTHCHECK
        "--layers",
        "--pull=never",  # the base is local: a real one, or the stand-in
        "--build-arg",
        f"VERSION={project_version()}",
        "--label",
        f"{CONTEXT_LABEL}={context_hash(dockerfile)}",
        *(["--no-cache"] if no_cache else []),
    ]
    if CA_BUNDLE.exists():  # the RUN steps only: no layer keeps a bind mount
        argv += ["-v", f"{CA_BUNDLE}:{CA_BUNDLE}:ro"]
    return [*argv, "-f", dockerfile, "-t", tag, "."]


def build_image(tag: str) -> float:
    """Build one image from its Dockerfile; the seconds it took."""
    dockerfile = DOCKERFILES[tag]
    started = time.monotonic()
    # Not built yet: nothing of ours is cached either (a cached layer of an earlier image of
    # that name would be as stale).
    stale = not image_exists(tag) or image_labels(tag).get(CONTEXT_LABEL) != context_hash(
        dockerfile
    )
    if not stale:
        # Built from exactly these sources. Never rebuild it from buildah's layer cache: the
        # install layer's key ignores the wheels bind-mounted into it, so a cached build can
        # bring back an older build's code under the current label.
        log(f"{tag}: up to date (built from these sources)")
        return 0.0
    log(f"building {tag} from {dockerfile} (no layer cache)")
    logfile = cache_dir() / "images" / f"build-{Path(dockerfile).suffix.lstrip('.')}.log"
    logfile.parent.mkdir(parents=True, exist_ok=True)
    with logfile.open("w") as out:
        done = subprocess.run(
            buildah_argv(dockerfile, tag, no_cache=stale),
            cwd=REPO,
            env=container_env(),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=1800,
            check=False,
        )
    seconds = time.monotonic() - started
    if done.returncode:
        tail = "\n".join(logfile.read_text(errors="replace").splitlines()[-40:])
        raise ImageError(f"building {tag} failed (full log: {logfile}):\n{tail}")
    log(f"{tag}: built in {seconds:.0f}s (log: {logfile})")
    return seconds


# --- sizes -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Size:
    ref: str
    bytes: int
    base_bytes: int  # the base image it was built on, as it is here
    base_is_standin: bool

    @property
    def on_real_base(self) -> int:
        """The size on the real python:3.11-slim-bookworm: exact on a real base, else an
        estimate (minus the stand-in, plus REAL_SLIM_BASE_BYTES)."""
        if not self.base_is_standin:
            return self.bytes
        return self.bytes - self.base_bytes + REAL_SLIM_BASE_BYTES

    def line(self) -> str:
        mb = 1_000_000
        text = f"{self.ref}: {self.bytes / mb:.0f} MB"
        if self.base_is_standin:
            text += (
                f" (stand-in base {self.base_bytes / mb:.0f} MB); on the real slim base"
                f" (~{REAL_SLIM_BASE_BYTES / mb:.0f} MB, estimated): ~{self.on_real_base / mb:.0f} MB"
            )
        return text


def size_of(ref: str) -> Size:
    return Size(ref, image_size(ref), image_size(BASE_IMAGE), base_is_standin())


# --- scanning ----------------------------------------------------------------------------

_DISTRIBUTIONS = (
    "import importlib.metadata as m\n"
    "for d in sorted(m.distributions(), key=lambda d: d.metadata['Name'].lower()):\n"
    "    print(f\"{d.metadata['Name']}=={d.version}\")\n"
)


def installed_packages(ref: str) -> list[str]:
    """`name==version` of every distribution in the image's /opt/forecastops environment."""
    done = podman(
        "run",
        "--rm",
        "--network",
        "none",
        "--entrypoint",
        "/opt/forecastops/bin/python",
        ref,
        "-c",
        _DISTRIBUTIONS,
        timeout=120,
    )
    return [line for line in done.stdout.splitlines() if line.strip()]


def pip_audit() -> Path:
    """pip-audit in its own environment under the cache (not one of the project's deps)."""
    venv = cache_dir() / "tools" / "pip-audit"
    exe = venv / "bin" / "pip-audit"
    if not exe.exists():
        log(f"installing pip-audit into {venv}")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "pip-audit"], check=True
        )
    return exe


def scan_python(ref: str) -> dict[str, Any]:
    """pip-audit of the image's packages (not forecastops itself: it is not on PyPI)."""
    packages = [p for p in installed_packages(ref) if not p.lower().startswith("forecastops==")]
    work = cache_dir() / "images"
    work.mkdir(parents=True, exist_ok=True)
    requirements = work / f"requirements-{ref.rsplit('/', 1)[-1].replace(':', '-')}.txt"
    requirements.write_text("\n".join(packages) + "\n")
    done = subprocess.run(
        [
            str(pip_audit()),
            "--requirement",
            str(requirements),
            "--no-deps",  # every version is pinned: nothing to resolve
            "--disable-pip",
            "--vulnerability-service",
            "pypi",
            "--format",
            "json",
            "--progress-spinner",
            "off",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError as exc:
        raise ImageError(f"pip-audit failed: {done.stderr[-3000:]}") from exc
    deps = report.get("dependencies", [])
    audited = [d for d in deps if "skip_reason" not in d]
    vulnerable = [d for d in audited if d.get("vulns")]
    return {
        "packages": len(packages),
        "audited": len(audited),
        "skipped": [f"{d['name']}: {d['skip_reason']}" for d in deps if "skip_reason" in d],
        "vulnerable": [
            {"name": d["name"], "version": d["version"], "vulns": [v["id"] for v in d["vulns"]]}
            for d in vulnerable
        ],
    }


def scan_debian(ref: str) -> list[str]:
    """Debian packages in the image for which bookworm (incl. bookworm-security) has a newer
    version: a throwaway root container refreshes apt's lists and asks apt."""
    done = podman(
        "run",
        "--rm",
        "--user",
        "0",
        "--network",
        "host",
        "--entrypoint",
        "sh",
        ref,
        "-c",
        "apt-get update -qq >/dev/null && apt list --upgradable 2>/dev/null | tail -n +2",
        timeout=600,
    )
    return [line for line in done.stdout.splitlines() if line.strip()]


# --- command line ------------------------------------------------------------------------


def require_tools() -> None:
    missing = missing_tools()
    if missing:
        raise ImageError(f"missing: {', '.join(missing)} (run `bash hack/install-image-tools.sh`)")


def cmd_build(_: argparse.Namespace) -> int:
    require_tools()
    started = time.monotonic()
    ensure_base()
    for ref in DOCKERFILES:
        build_image(ref)
    log(f"both images built in {time.monotonic() - started:.0f}s")
    return cmd_sizes(_)


def cmd_sizes(_: argparse.Namespace) -> int:
    for ref in DOCKERFILES:
        if image_exists(ref):
            print(size_of(ref).line())
        else:
            print(f"{ref}: not built (make images)")
    return 0


def cmd_scan(_: argparse.Namespace) -> int:
    require_tools()
    status = 0
    for ref in DOCKERFILES:
        if not image_exists(ref):
            raise ImageError(f"{ref} is not built (make images)")
        py = scan_python(ref)
        print(f"{ref}: {py['packages']} Python packages, {py['audited']} audited by pip-audit")
        if py["audited"] == 0:
            print(
                "  pip-audit could audit none: its vulnerability service (PyPI's JSON API)"
                " is not reachable from here; nothing is known about their vulnerabilities"
            )
            status = 2
        elif py["skipped"]:
            print(f"  skipped: {'; '.join(py['skipped'])}")
        for vuln in py["vulnerable"]:
            print(f"  VULNERABLE {vuln['name']} {vuln['version']}: {', '.join(vuln['vulns'])}")
            status = 1
        if py["audited"] and not py["vulnerable"]:
            print("  no known vulnerabilities in the audited packages")
        pending = scan_debian(ref)
        print(f"{ref}: {len(pending)} Debian packages with a newer version in bookworm(-security)")
        for line in pending:
            print(f"  {line}")
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devenv.images", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("build", help="the stand-in base if needed, both images, their sizes")
    sub.add_parser("sizes", help="the images' sizes, and the estimate on the real slim base")
    sub.add_parser("scan", help="pip-audit and pending Debian updates of both images")
    args = parser.parse_args(argv)
    handler = {"build": cmd_build, "sizes": cmd_sizes, "scan": cmd_scan}[args.command]
    try:
        return handler(args)
    except ImageError as exc:
        print(f"[images] error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
