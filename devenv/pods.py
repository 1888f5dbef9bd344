"""Start one container of a pod spec the way a kubelet starts it, on this machine.

Kwok's pods run nothing, so this is how a test runs what the operator wrote: the
container's own command, args and env, with its Secrets resolved as the kubelet resolves
them, and its probes polled as the kubelet polls them. Two runtimes:

- `start_process`: the command found on the image's PATH, which here is the project's
  virtual environment (the image installs the same wheel); the process gets the image's
  environment plus the container's, nothing of the test's.
- `start_podman`: the built image under podman, restricted as the pod's security context
  says (user, read-only root, capabilities, no privilege escalation, emptyDir volumes as
  tmpfs).

Both use the host's network, as a pod with ``hostNetwork`` would: the Deployment's port
is bound on this machine, and the services the Secrets point at are on loopback.
Kubernetes' rules followed here: ``command`` replaces the image's ENTRYPOINT and ``args``
its CMD; ``$(VAR)`` in command, args and env values expands to an earlier variable, ``$$``
escapes; a missing Secret or key fails the start (``CreateContainerConfigError``) unless
the reference is optional.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devenv.paths import REPO

SecretReader = Callable[[str], Mapping[str, str] | None]
"""A Secret's data (decoded) by name, or None when there is no such Secret."""

_REFERENCE = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


class ContainerConfigError(RuntimeError):
    """What a kubelet reports as CreateContainerConfigError: the container cannot start."""


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion: known names expand, ``$$`` is ``$``, the rest stays."""

    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return env.get(name, match.group(0))

    return _REFERENCE.sub(one, text)


def resolve_env(container: Mapping[str, Any], read_secret: SecretReader) -> dict[str, str]:
    """The container's environment, in order, as the kubelet builds it."""
    env: dict[str, str] = {}
    for var in container.get("env", []):
        name = var["name"]
        if "value" in var:
            env[name] = expand(var["value"], env)
            continue
        source = var.get("valueFrom", {})
        ref = source.get("secretKeyRef")
        if ref is None:
            raise ContainerConfigError(f"env {name}: only value and secretKeyRef are supported")
        data = read_secret(ref["name"])
        if data is None or ref["key"] not in data:
            if ref.get("optional"):
                continue
            missing = "secret" if data is None else "key"
            raise ContainerConfigError(
                f"env {name}: {missing} not found: secret {ref['name']!r} key {ref['key']!r}"
            )
        env[name] = data[ref["key"]]
    return env


@dataclass(frozen=True)
class ImageConfig:
    """What an image gives a container: ENTRYPOINT, CMD and ENV."""

    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)


def argv(container: Mapping[str, Any], image: ImageConfig, env: Mapping[str, str]) -> list[str]:
    """The process's argv: command replaces ENTRYPOINT (and drops CMD), args replace CMD."""
    if "command" in container:
        words = [*container["command"], *container.get("args", [])]
    else:
        words = [*image.entrypoint, *container.get("args", image.cmd)]
    return [expand(word, env) for word in words]


def local_image(home: Path, extra: Mapping[str, str]) -> ImageConfig:
    """The images' ENV for a process: PATH starts with the venv's bin, as
    /opt/forecastops/bin does in the image; HOME and caches in the pod's /tmp."""
    venv_bin = Path(os.environ.get("VIRTUAL_ENV", REPO / ".venv")) / "bin"
    return ImageConfig(
        env={
            "PATH": f"{venv_bin}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(home),
            "XDG_CACHE_HOME": str(home / ".cache"),
            "TMPDIR": str(home),
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONUNBUFFERED": "1",
            **extra,
        }
    )


class Container:
    """A started container: its log, its probes, and a stop that waits for it."""

    def __init__(self, spec: Mapping[str, Any], log: Path) -> None:
        self.spec = spec
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    # --- the kubelet's view ---------------------------------------------------------------
    def port(self, name_or_number: str | int) -> int:
        if isinstance(name_or_number, int):
            return name_or_number
        for port in self.spec.get("ports", []):
            if port.get("name") == name_or_number:
                return int(port["containerPort"])
        raise ContainerConfigError(f"no container port named {name_or_number!r}")

    def url(self, path: str = "", port: str | int | None = None) -> str:
        if port is None:
            port = self.spec["ports"][0]["containerPort"]
        return f"http://127.0.0.1:{self.port(port)}{path}"

    def probe(self, kind: str) -> bool:
        """One try of the container's `kind` probe (readinessProbe, livenessProbe, ...)."""
        http = self.spec[kind]["httpGet"]
        timeout = self.spec[kind].get("timeoutSeconds", 1)
        try:
            with urllib.request.urlopen(self.url(http["path"], http["port"]), timeout=timeout):
                return True
        except (urllib.error.URLError, OSError):
            return False

    def wait_ready(self, timeout: float = 60) -> None:
        """Until the readiness probe passes; fail with the log if it exits or times out."""
        deadline = time.monotonic() + timeout
        while not self.probe("readinessProbe"):
            if not self.running():
                raise ContainerConfigError(f"the container exited:\n{self.text()[-4000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"not ready after {timeout:.0f}s:\n{self.text()[-4000:]}")
            time.sleep(0.2)

    def wait_exit(self, timeout: float = 30) -> int:
        assert self.process is not None
        return self.process.wait(timeout)

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self, grace: float = 10) -> None:
        """SIGTERM, then SIGKILL after `grace` seconds, as the kubelet stops a container."""
        if not self.running():
            return
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(grace)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


def start_process(
    container: Mapping[str, Any],
    read_secret: SecretReader,
    workdir: Path,
    image_env: Mapping[str, str] | None = None,
) -> Container:
    """`container` as a local process with the image's and the container's environment only.

    The pod's /tmp (an emptyDir) is a fresh directory under `workdir`, and the process's
    HOME and TMPDIR, as the images set HOME=/tmp. `image_env` adds to the image's ENV
    what a test bed's image would have (a CA bundle, say).
    """
    env = resolve_env(container, read_secret)
    home = workdir / "tmp"
    home.mkdir(parents=True, exist_ok=True)
    image = local_image(home, image_env or {})
    words = argv(container, image, env)
    executable = shutil.which(words[0], path=image.env["PATH"])
    if executable is None:
        raise ContainerConfigError(f"{words[0]!r}: executable file not found in $PATH")
    started = Container(container, workdir / "container.log")
    with started.log.open("wb") as log:
        started.process = subprocess.Popen(
            [executable, *words[1:]],
            env={**image.env, **env},
            cwd=home,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return started


class PodmanContainer(Container):
    def __init__(self, spec: Mapping[str, Any], log: Path, name: str, podman: list[str]) -> None:
        super().__init__(spec, log)
        self.name = name
        self.podman = podman

    def stop(self, grace: float = 10) -> None:
        subprocess.run(
            [*self.podman, "stop", "-t", str(int(grace)), self.name],
            capture_output=True,
            timeout=grace + 30,
        )
        super().stop(grace=5)


def start_podman(
    container: Mapping[str, Any],
    pod_spec: Mapping[str, Any],
    read_secret: SecretReader,
    workdir: Path,
    *,
    image: str | None = None,
    image_env: Mapping[str, str] | None = None,
    files: Mapping[Path, str] | None = None,
) -> PodmanContainer:
    """`container` in podman from `image` (default: the container's), restricted as the
    pod's and the container's security contexts say. `image_env` and `files` (host path:
    container path, mounted read-only) add what a test bed's image would have."""
    from devenv import images

    podman = images.podman_argv()
    env = {**(image_env or {}), **resolve_env(container, read_secret)}
    name = f"forecastops-pod-{os.getpid()}-{int(time.monotonic() * 1000)}"
    run = [*podman, "run", "--rm", "--name", name, "--network", "host", "--pull", "never"]
    run += security_flags(container, pod_spec)
    for mount in container.get("volumeMounts", []):
        volume = next(v for v in pod_spec.get("volumes", []) if v["name"] == mount["name"])
        if "emptyDir" in volume:
            run += ["--tmpfs", f"{mount['mountPath']}:rw,mode=1777"]
        else:
            raise ContainerConfigError(f"volume {mount['name']}: only emptyDir is supported")
    for source, target in (files or {}).items():
        run += ["--volume", f"{source}:{target}:ro"]
    for variable in env:  # values from the podman process's environment, never on a command line
        run += ["--env", variable]
    if "command" in container:
        run += ["--entrypoint", json.dumps(container["command"])]
    run.append(image or container["image"])
    run += [expand(word, env) for word in container.get("args", [])]
    started = PodmanContainer(container, workdir / "container.log", name, podman)
    with started.log.open("wb") as log:
        started.process = subprocess.Popen(
            run,
            env={**images.container_env(), **env},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return started


def security_flags(container: Mapping[str, Any], pod_spec: Mapping[str, Any]) -> list[str]:
    """podman flags for the pod's and container's securityContext (the container wins)."""
    context = {**pod_spec.get("securityContext", {}), **container.get("securityContext", {})}
    flags = []
    if "runAsUser" in context:
        user = str(context["runAsUser"])
        if "runAsGroup" in context:
            user += f":{context['runAsGroup']}"
        flags += ["--user", user]
    if context.get("readOnlyRootFilesystem"):
        # without --read-only-tmpfs=false podman adds a writable /run and /var/tmp
        flags += ["--read-only", "--read-only-tmpfs=false"]
    for capability in context.get("capabilities", {}).get("drop", []):
        flags += ["--cap-drop", capability]
    if context.get("allowPrivilegeEscalation") is False:
        flags += ["--security-opt", "no-new-privileges"]
    return flags


def secrets_from(objects: Mapping[str, Mapping[str, str]]) -> SecretReader:
    """A `SecretReader` over plain {name: {key: value}}."""
    return objects.get


def scratch_dir(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix))
