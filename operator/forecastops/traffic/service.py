"""The default router: the main Service's selector carries the split; no mesh needed.

Stable, canary and preview pods all carry the ForecastModel's selector labels plus
`forecastops.io/role`. The main Service selects:

| canary weight | Service selects          | effect                                          |
|---------------|--------------------------|-------------------------------------------------|
| 0             | role=stable              | stable only (a canary's pods get no requests)   |
| 1-99          | every role               | replica ratio: requests spread over ready pods  |
| 100           | role=<candidate>         | candidate only (blue-green after the switch)     |

Blue-green also gets `<name>-preview`, selecting only the preview's pods, so it can be
tested before the switch.
"""

from __future__ import annotations

from typing import Any

from forecastops.builders.service import build_service
from forecastops.kube.kinds import DEPLOYMENT, SERVICE
from forecastops.kube.names import (
    LABEL_ROLE,
    Role,
    deployment_name,
    role_service_name,
    service_name,
)
from forecastops.traffic.router import RouteClient, Routes, RouteTarget


def selected_role(routes: Routes, candidate: Role) -> Role | None:
    """The role the main Service selects, or None for every pod.

    >>> selected_role(Routes(100, 0), Role.CANARY), selected_role(Routes(0, 100), Role.PREVIEW)
    (<Role.STABLE: 'stable'>, <Role.PREVIEW: 'preview'>)
    >>> selected_role(Routes(90, 10), Role.CANARY) is None
    True
    """
    if routes.canary <= 0:
        return Role.STABLE
    if routes.stable <= 0:
        return candidate
    return None


def role_service(target: RouteTarget, role: Role | None, *, name: str) -> dict[str, Any]:
    """The model-server Service named `name`, narrowed to `role`'s pods (None: every pod)."""
    service = build_service(target.owner)
    service["metadata"]["name"] = name
    if role is not None:
        service["spec"]["selector"] = {**service["spec"]["selector"], LABEL_ROLE: str(role)}
    return service


class ServiceRouter:
    def __init__(self, client: RouteClient) -> None:
        self.client = client

    @staticmethod
    def services(target: RouteTarget, routes: Routes) -> list[dict[str, Any]]:
        name = target.owner.name
        main = role_service(
            target, selected_role(routes, target.candidate), name=service_name(name)
        )
        if target.candidate is not Role.PREVIEW:
            return [main]
        preview = role_service(target, Role.PREVIEW, name=role_service_name(name, Role.PREVIEW))
        return [main, preview]

    async def reconcile(self, target: RouteTarget) -> None:
        """Nothing outside the ForecastModel's own Services."""

    async def set_routes(self, target: RouteTarget, routes: Routes) -> None:
        """The split is the Services' selectors, applied with the other children."""

    async def get_routes(self, target: RouteTarget) -> Routes:
        """From the main Service's selector; a shared one splits by ready replicas."""
        owner = target.owner
        service = await self.client.get(SERVICE, owner.namespace, service_name(owner.name))
        role = ((service or {}).get("spec", {}).get("selector") or {}).get(LABEL_ROLE)
        if role == str(Role.STABLE):
            return Routes(100, 0)
        if role == str(target.candidate):
            return Routes(0, 100)
        stable = await self._ready(owner.namespace, deployment_name(owner.name, Role.STABLE))
        candidate = await self._ready(
            owner.namespace, deployment_name(owner.name, target.candidate)
        )
        total = stable + candidate
        return Routes.to_canary(round(100 * candidate / total) if total else 0)

    async def finalize(self, target: RouteTarget) -> None:
        """Nothing: the next Services applied select stable again."""

    async def _ready(self, namespace: str, name: str) -> int:
        deployment = await self.client.get(DEPLOYMENT, namespace, name)
        return int(((deployment or {}).get("status") or {}).get("readyReplicas", 0))
