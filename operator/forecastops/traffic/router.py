"""The traffic-router interface: how a rollout moves requests between stable and candidate.

Flagger's shape: a router builds what it needs, sets and reads the split, and cleans up.
Each router also says which Services the ForecastModel must have (pure manifests, applied
with the other children), because which pods a Service selects is part of the split.

| router             | split carried by                                  | weights     |
|--------------------|---------------------------------------------------|-------------|
| ServiceRouter      | the main Service's selector (replica ratio; blue-green switch) | by replicas, 0 and 100 exact |
| GatewayAPIRouter   | backendRef weights of a user's HTTPRoute           | exact       |
| NullRouter         | nothing: the main Service selects every pod        | -           |
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from forecastops.kube.kinds import Kind
from forecastops.kube.names import Role
from forecastops.spec import ObjectRef


class RouteError(Exception):
    """The split cannot be set; the message says what the user has to fix."""


@dataclass(frozen=True)
class Routes:
    """Percent of requests for stable and for the candidate; they add up to 100."""

    stable: int
    canary: int

    @classmethod
    def to_canary(cls, weight: int) -> Routes:
        """
        >>> Routes.to_canary(10)
        Routes(stable=90, canary=10)
        """
        weight = min(max(weight, 0), 100)
        return cls(100 - weight, weight)


@dataclass(frozen=True)
class RouteTarget:
    """Whose traffic is split: a ForecastModel and the role of its candidate."""

    owner: ObjectRef
    candidate: Role = Role.CANARY
    http_route: str | None = None
    """The Gateway API HTTPRoute carrying the weights, for the Gateway API router."""


class RouteClient(Protocol):
    """The few API calls routers make (kube.Kube provides them)."""

    async def get(self, kind: Kind, namespace: str, name: str) -> dict[str, Any] | None: ...

    async def replace(self, kind: Kind, manifest: dict[str, Any]) -> dict[str, Any]: ...


class TrafficRouter(Protocol):
    def __init__(self, client: RouteClient) -> None: ...

    @staticmethod
    def services(target: RouteTarget, routes: Routes) -> list[dict[str, Any]]:
        """Every Service the ForecastModel needs for `routes` (pure manifests)."""
        ...

    async def reconcile(self, target: RouteTarget) -> None:
        """Check that what the router depends on exists; raise RouteError if not."""
        ...

    async def set_routes(self, target: RouteTarget, routes: Routes) -> None:
        """Move the split outside the ForecastModel's own children (idempotent)."""
        ...

    async def get_routes(self, target: RouteTarget) -> Routes: ...

    async def finalize(self, target: RouteTarget) -> None:
        """The rollout is over: leave nothing that still points at the candidate."""
        ...
