"""What one reconcile pass saw, gathered into a frozen value before anything is decided."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from forecastops.kube.names import Role

COMMAND_ANNOTATION = "forecastops.io/command"
"""`<command>` or `<command>:<nonce>`; a value is applied once, however often it is seen."""


class CommandKind(StrEnum):
    PROMOTE = "promote"
    """Finish the current step (a pause, an analysis, the wait for promotion)."""
    PROMOTE_FULL = "promote-full"
    """Skip every remaining step and analysis and promote now."""
    ABORT = "abort"
    """Send all traffic back to stable and scale the candidate down."""
    RETRY = "retry"
    """Roll out a rolled-back revision again."""
    PAUSE = "pause"
    """Hold the rollout where it is (analysis keeps guarding it)."""
    RESUME = "resume"
    """Continue after a pause of any kind."""


@dataclass(frozen=True)
class Command:
    token: str
    """The annotation's whole value: the same token is never applied twice."""
    kind: CommandKind | None
    """None when the token names no known command."""


def parse_command(value: str | None) -> Command | None:
    """`promote`, `promote:7f3a` (a nonce lets the same command be given again), ...

    >>> parse_command("promote-full:1")
    Command(token='promote-full:1', kind=<CommandKind.PROMOTE_FULL: 'promote-full'>)
    >>> parse_command("launch").kind is None
    True
    """
    if not value or not value.strip():
        return None
    token = value.strip()
    name = token.partition(":")[0].strip().lower()
    try:
        return Command(token, CommandKind(name))
    except ValueError:
        return Command(token, None)


@dataclass(frozen=True)
class DeploymentState:
    """A model-server Deployment as the API reports it."""

    revision: str | None
    """Its pod template's `forecastops.io/revision` label."""
    replicas: int
    """spec.replicas (for stable: what the HorizontalPodAutoscaler chose)."""
    ready: int = 0
    """Pods ready (status.availableReplicas)."""
    updated: int = 0
    """Pods of the current template (status.updatedReplicas)."""
    total: int = 0
    """Pods of every template, old ones still terminating included (status.replicas)."""
    current: bool = True
    """status.observedGeneration has caught up with metadata.generation."""

    def complete_at(self, revision: str | None) -> bool:
        """Every replica runs `revision` and is ready: the rolling update is over."""
        return self.ready_at(revision, self.replicas)

    def ready_at(self, revision: str | None, replicas: int) -> bool:
        """At least `replicas` ready pods, all of `revision`, none of an older template."""
        return (
            revision is not None
            and self.revision == revision
            and self.current
            and self.updated >= replicas
            and self.ready >= replicas
            and self.total <= self.updated
        )


@dataclass(frozen=True)
class Observed:
    now: datetime
    desired_revision: str
    """The revision of the spec as it stands (hash of everything that shapes the pods)."""
    stable: DeploymentState | None = None
    canary: DeploymentState | None = None
    preview: DeploymentState | None = None
    command: Command | None = None

    def candidate(self, role: Role) -> DeploymentState | None:
        """The canary or the preview Deployment."""
        return self.preview if role is Role.PREVIEW else self.canary
