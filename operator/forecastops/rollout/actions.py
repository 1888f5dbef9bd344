"""What a decision asks the world to do, as plain data; `reconcile` carries it out.

Every pass emits the actions its state needs, not only those of a transition: they are
idempotent (applies skip unchanged objects, routes compare before writing), so a pass
that was killed halfway is completed by the next one.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TypeAlias, TypeVar

from forecastops.kube.names import Role
from forecastops.rollout.state import RolloutStatus


@dataclass(frozen=True)
class ApplyStable:
    """Write the stable Deployment from the current spec, which is at `revision`."""

    revision: str


@dataclass(frozen=True)
class ScaleCandidate:
    """Write the candidate Deployment (canary or preview) from the current spec at `replicas`."""

    role: Role
    replicas: int


@dataclass(frozen=True)
class DeleteCandidate:
    role: Role


@dataclass(frozen=True)
class SetRoutes:
    """Route `canary_weight` percent to the candidate and the rest to stable."""

    canary_weight: int

    @property
    def stable_weight(self) -> int:
        return 100 - self.canary_weight


class EventType(StrEnum):
    NORMAL = "Normal"
    WARNING = "Warning"


@dataclass(frozen=True)
class Emit:
    """A Kubernetes Event on the ForecastModel."""

    type: EventType
    reason: str
    message: str


@dataclass(frozen=True)
class Requeue:
    """Come back after this many seconds (a measurement, a pause or a delay is due)."""

    after_seconds: float


Action: TypeAlias = ApplyStable | ScaleCandidate | DeleteCandidate | SetRoutes | Emit | Requeue
A = TypeVar("A")


@dataclass(frozen=True)
class Decision:
    status: RolloutStatus
    actions: tuple[Action, ...] = ()

    def of_type(self, kind: type[A]) -> list[A]:
        return [action for action in self.actions if isinstance(action, kind)]
