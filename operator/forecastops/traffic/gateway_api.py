"""Exact weights through a Gateway API HTTPRoute that the user owns.

The user writes the HTTPRoute (parentRefs to their Gateway, hostnames, matches) with a
backendRef to the ForecastModel's main Service, `<name>`. During a canary the operator
sets that backendRef's weight and adds or updates one to `<name>-canary` beside it, in
every rule that routes to `<name>`; nothing else in the route is touched. The main
Service then selects only stable's pods, and `<name>-canary` only the canary's.

    rules:
    - backendRefs:
      - {name: store-demand, port: 8000, weight: 90}          # set by the operator
      - {name: store-demand-canary, port: 8000, weight: 10}   # added by the operator
"""

from __future__ import annotations

import copy
from typing import Any

from forecastops.kube.kinds import Kind
from forecastops.kube.names import SERVER_PORT, Role, role_service_name, service_name
from forecastops.traffic.router import RouteClient, RouteError, Routes, RouteTarget
from forecastops.traffic.service import role_service

HTTPROUTE = Kind("gateway.networking.k8s.io/v1", "HTTPRoute", "httproutes", optional=True)


def with_weights(route: dict[str, Any], stable: str, canary: str, routes: Routes) -> dict[str, Any]:
    """`route` with `stable` weighted routes.stable and `canary` routes.canary, in every
    rule that has a backendRef to `stable`; raises RouteError when none has one.

    >>> route = {"spec": {"rules": [{"backendRefs": [{"name": "demand", "port": 8000}]}]}}
    >>> with_weights(route, "demand", "demand-canary", Routes(90, 10))["spec"]["rules"][0]
    {'backendRefs': [{'name': 'demand', 'port': 8000, 'weight': 90}, {'name': 'demand-canary', 'port': 8000, 'weight': 10}]}
    """
    updated = copy.deepcopy(route)
    managed = [
        rule
        for rule in updated.get("spec", {}).get("rules", [])
        if any(_is_service(ref, stable) for ref in rule.get("backendRefs", []))
    ]
    if not managed:
        name = route.get("metadata", {}).get("name", "?")
        raise RouteError(f"HTTPRoute {name} has no rule with a backendRef to Service {stable}")
    for rule in managed:
        refs = [ref for ref in rule["backendRefs"] if not _is_service(ref, canary)]
        at, stable_ref = next((i, r) for i, r in enumerate(refs) if _is_service(r, stable))
        stable_ref["weight"] = routes.stable
        port = stable_ref.get("port", SERVER_PORT)
        refs.insert(at + 1, {"name": canary, "port": port, "weight": routes.canary})
        rule["backendRefs"] = refs
    return updated


def without_canary(route: dict[str, Any], stable: str, canary: str) -> dict[str, Any]:
    """`route` with every backendRef to `canary` removed and `stable` at its full weight."""
    updated = copy.deepcopy(route)
    for rule in updated.get("spec", {}).get("rules", []):
        refs = rule.get("backendRefs", [])
        if any(_is_service(ref, canary) for ref in refs):
            rule["backendRefs"] = [ref for ref in refs if not _is_service(ref, canary)]
            for ref in rule["backendRefs"]:
                if _is_service(ref, stable):
                    ref["weight"] = 100
    return updated


def read_weights(route: dict[str, Any], stable: str, canary: str) -> Routes:
    """The split of the first rule that routes to `stable` (weights default to 1)."""
    for rule in route.get("spec", {}).get("rules", []):
        refs = rule.get("backendRefs", [])
        if any(_is_service(ref, stable) for ref in refs):
            weights = {
                ref["name"]: ref.get("weight", 1) for ref in refs if _is_service(ref, ref["name"])
            }
            total = weights.get(stable, 0) + weights.get(canary, 0)
            return Routes.to_canary(round(100 * weights.get(canary, 0) / total) if total else 0)
    return Routes(100, 0)


def _is_service(ref: dict[str, Any], name: str) -> bool:
    """A backendRef to the core Service `name` (group "" and kind Service are the defaults)."""
    return (
        ref.get("name") == name
        and ref.get("group", "") == ""
        and ref.get("kind", "Service") == "Service"
    )


class GatewayAPIRouter:
    def __init__(self, client: RouteClient) -> None:
        self.client = client

    @staticmethod
    def services(target: RouteTarget, routes: Routes) -> list[dict[str, Any]]:
        name = target.owner.name
        return [
            role_service(target, Role.STABLE, name=service_name(name)),
            role_service(target, Role.CANARY, name=role_service_name(name, Role.CANARY)),
        ]

    async def reconcile(self, target: RouteTarget) -> None:
        route = await self._route(target)
        with_weights(route, *self._backends(target), Routes(100, 0))  # raises if unusable

    async def set_routes(self, target: RouteTarget, routes: Routes) -> None:
        route = await self._route(target)
        updated = with_weights(route, *self._backends(target), routes)
        if updated != route:
            await self.client.replace(HTTPROUTE, updated)

    async def get_routes(self, target: RouteTarget) -> Routes:
        return read_weights(await self._route(target), *self._backends(target))

    async def finalize(self, target: RouteTarget) -> None:
        route = await self._route(target)
        updated = without_canary(route, *self._backends(target))
        if updated != route:
            await self.client.replace(HTTPROUTE, updated)

    async def _route(self, target: RouteTarget) -> dict[str, Any]:
        if not target.http_route:
            raise RouteError("spec.rollout.canary.trafficRouting.gatewayAPI.httpRoute is empty")
        namespace = target.owner.namespace
        route = await self.client.get(HTTPROUTE, namespace, target.http_route)
        if route is None:
            raise RouteError(f"HTTPRoute {namespace}/{target.http_route} does not exist")
        return route

    @staticmethod
    def _backends(target: RouteTarget) -> tuple[str, str]:
        name = target.owner.name
        return service_name(name), role_service_name(name, Role.CANARY)
