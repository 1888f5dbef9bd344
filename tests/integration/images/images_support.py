"""Helpers for the image tests: the restricted run flags and a named podman container."""

from __future__ import annotations

from dataclasses import dataclass

from devenv.images import podman

UID = "10001"
# What a Pod Security Standard "restricted" pod with readOnlyRootFilesystem and an emptyDir
# on /tmp amounts to. --read-only-tmpfs=false: podman would otherwise add writable /run and
# /var/tmp that a pod does not have.
RESTRICTED = (
    "--read-only",
    "--read-only-tmpfs=false",
    "--user",
    f"{UID}:{UID}",
    "--cap-drop",
    "ALL",
    "--security-opt",
    "no-new-privileges",
    "--tmpfs",
    "/tmp:rw,mode=1777,size=256m",
)


@dataclass
class Container:
    name: str

    def logs(self) -> str:
        done = podman("logs", self.name, check=False, timeout=60)
        return done.stdout + done.stderr

    def running(self) -> bool:
        done = podman("inspect", "--format", "{{.State.Running}}", self.name, check=False)
        return done.stdout.strip() == "true"

    def healthcheck(self) -> tuple[int, str]:
        done = podman("healthcheck", "run", self.name, check=False, timeout=60)
        return done.returncode, (done.stdout + done.stderr).strip()

    def exec(self, *argv: str) -> tuple[int, str]:
        done = podman("exec", self.name, *argv, check=False, timeout=60)
        return done.returncode, done.stdout + done.stderr

    def remove(self) -> None:
        podman("rm", "--force", "--time", "10", self.name, check=False, timeout=120)


def run_restricted(image: str, *options: str, args: tuple[str, ...] | list[str] = (), timeout=300):
    """A restricted container run to completion (removed afterwards); its CompletedProcess."""
    return podman("run", "--rm", *RESTRICTED, *options, image, *args, check=False, timeout=timeout)
