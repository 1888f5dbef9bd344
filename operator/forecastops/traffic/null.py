"""The router without a rollout strategy: one Service over every model-server pod."""

from __future__ import annotations

from typing import Any

from forecastops.builders.service import build_service
from forecastops.traffic.router import RouteClient, Routes, RouteTarget


class NullRouter:
    def __init__(self, client: RouteClient) -> None:
        self.client = client

    @staticmethod
    def services(target: RouteTarget, routes: Routes) -> list[dict[str, Any]]:
        return [build_service(target.owner)]

    async def reconcile(self, target: RouteTarget) -> None:
        pass

    async def set_routes(self, target: RouteTarget, routes: Routes) -> None:
        pass

    async def get_routes(self, target: RouteTarget) -> Routes:
        return Routes(100, 0)

    async def finalize(self, target: RouteTarget) -> None:
        pass
