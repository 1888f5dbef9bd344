"""Routers: the Services they need, and the HTTPRoute weights they set (API faked)."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import pytest
from forecastops.kube.kinds import DEPLOYMENT, SERVICE, Kind
from forecastops.kube.names import LABEL_ROLE, Role
from forecastops.rollout.spec import parse_rollout
from forecastops.spec import ObjectRef
from forecastops.traffic.factory import router_for
from forecastops.traffic.gateway_api import (
    HTTPROUTE,
    GatewayAPIRouter,
    read_weights,
    with_weights,
    without_canary,
)
from forecastops.traffic.null import NullRouter
from forecastops.traffic.router import RouteError, Routes, RouteTarget
from forecastops.traffic.service import ServiceRouter, selected_role

OWNER = ObjectRef("demand", "retail", "uid-1", 3)


class FakeClient:
    """The API as routers see it: objects by (kind, name); every replace recorded."""

    def __init__(self, *objects: tuple[Kind, dict[str, Any]]) -> None:
        self.objects = {(kind.kind, body["metadata"]["name"]): body for kind, body in objects}
        self.replaced: list[dict[str, Any]] = []

    async def get(self, kind: Kind, namespace: str, name: str) -> dict[str, Any] | None:
        found = self.objects.get((kind.kind, name))
        return copy.deepcopy(found) if found else None

    async def replace(self, kind: Kind, manifest: dict[str, Any]) -> dict[str, Any]:
        self.replaced.append(manifest)
        self.objects[(manifest["kind"], manifest["metadata"]["name"])] = manifest
        return manifest


def http_route(*refs: dict[str, Any], extra_rule: bool = True) -> dict[str, Any]:
    rules = [{"matches": [{"path": {"value": "/v2"}}], "backendRefs": list(refs)}]
    if extra_rule:
        rules.append({"backendRefs": [{"name": "docs", "port": 80}]})
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "demand", "namespace": "retail", "resourceVersion": "7"},
        "spec": {"parentRefs": [{"name": "gw"}], "rules": rules},
    }


def selector(service: dict[str, Any]) -> dict[str, str]:
    return service["spec"]["selector"]


# --- the Service router ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("routes", "candidate", "role"),
    [
        (Routes(100, 0), Role.CANARY, Role.STABLE),
        (Routes(90, 10), Role.CANARY, None),
        (Routes(50, 50), Role.CANARY, None),
        (Routes(0, 100), Role.CANARY, Role.CANARY),
        (Routes(100, 0), Role.PREVIEW, Role.STABLE),
        (Routes(0, 100), Role.PREVIEW, Role.PREVIEW),
    ],
)
def test_given_routes_when_service_built_then_selector_narrows_to_the_right_role(
    routes, candidate, role
):
    services = ServiceRouter.services(RouteTarget(OWNER, candidate), routes)
    main = services[0]
    assert main["metadata"]["name"] == "demand"
    assert selector(main).get(LABEL_ROLE) == (str(role) if role else None)
    assert selector(main)["app.kubernetes.io/instance"] == "demand"


def test_given_blue_green_when_services_built_then_preview_service_selects_preview_only():
    main, preview = ServiceRouter.services(RouteTarget(OWNER, Role.PREVIEW), Routes(100, 0))
    assert preview["metadata"]["name"] == "demand-preview"
    assert selector(preview)[LABEL_ROLE] == "preview"
    assert preview["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    assert preview["spec"]["ports"] == main["spec"]["ports"]


def test_given_shared_selector_when_routes_read_then_split_by_ready_replicas():
    service = {
        "metadata": {"name": "demand"},
        "spec": {"selector": {"app.kubernetes.io/instance": "demand"}},
    }
    stable = {"metadata": {"name": "demand"}, "status": {"readyReplicas": 9}}
    canary = {"metadata": {"name": "demand-canary"}, "status": {"readyReplicas": 1}}
    client = FakeClient((SERVICE, service), (DEPLOYMENT, stable), (DEPLOYMENT, canary))
    assert asyncio.run(ServiceRouter(client).get_routes(RouteTarget(OWNER))) == Routes(90, 10)


@pytest.mark.parametrize(
    ("role", "routes"), [("stable", Routes(100, 0)), ("preview", Routes(0, 100))]
)
def test_given_narrowed_selector_when_routes_read_then_all_on_one_side(role, routes):
    service = {"metadata": {"name": "demand"}, "spec": {"selector": {LABEL_ROLE: role}}}
    router = ServiceRouter(FakeClient((SERVICE, service)))
    assert asyncio.run(router.get_routes(RouteTarget(OWNER, Role.PREVIEW))) == routes


def test_given_service_router_when_routes_set_then_no_api_write_outside_children():
    client = FakeClient()
    router = ServiceRouter(client)
    asyncio.run(router.set_routes(RouteTarget(OWNER), Routes(90, 10)))
    asyncio.run(router.finalize(RouteTarget(OWNER)))
    assert client.replaced == []


def test_given_no_rollout_when_null_router_then_one_service_over_every_pod():
    (service,) = NullRouter.services(RouteTarget(OWNER), Routes(100, 0))
    assert LABEL_ROLE not in selector(service)
    assert asyncio.run(NullRouter(FakeClient()).get_routes(RouteTarget(OWNER))) == Routes(100, 0)


def test_given_selected_role_when_weights_extreme_then_one_side():
    assert selected_role(Routes(100, 0), Role.CANARY) is Role.STABLE
    assert selected_role(Routes(1, 99), Role.CANARY) is None


# --- the Gateway API router --------------------------------------------------------------


def test_given_route_to_stable_when_weights_set_then_canary_ref_added_beside_it():
    route = http_route({"name": "demand", "port": 8000})
    updated = with_weights(route, "demand", "demand-canary", Routes(90, 10))
    assert updated["spec"]["rules"][0]["backendRefs"] == [
        {"name": "demand", "port": 8000, "weight": 90},
        {"name": "demand-canary", "port": 8000, "weight": 10},
    ]
    assert updated["spec"]["rules"][1] == route["spec"]["rules"][1], "other rules untouched"
    assert updated["spec"]["parentRefs"] == route["spec"]["parentRefs"]
    assert route["spec"]["rules"][0]["backendRefs"] == [{"name": "demand", "port": 8000}], (
        "input kept"
    )


def test_given_weights_set_twice_when_compared_then_same_route():
    route = http_route({"name": "demand", "port": 8000})
    once = with_weights(route, "demand", "demand-canary", Routes(50, 50))
    assert with_weights(once, "demand", "demand-canary", Routes(50, 50)) == once


def test_given_other_backends_in_rule_when_weights_set_then_they_are_kept():
    route = http_route(
        {"name": "mirror", "port": 8000, "weight": 0}, {"name": "demand", "port": 8000}
    )
    refs = with_weights(route, "demand", "demand-canary", Routes(75, 25))["spec"]["rules"][0][
        "backendRefs"
    ]
    assert [r["name"] for r in refs] == ["mirror", "demand", "demand-canary"]


def test_given_ref_of_other_kind_with_same_name_when_weights_set_then_not_taken_for_the_service():
    route = http_route(
        {"name": "demand", "kind": "ServiceImport", "group": "multicluster.x-k8s.io"}
    )
    with pytest.raises(RouteError, match="no rule with a backendRef to Service demand"):
        with_weights(route, "demand", "demand-canary", Routes(90, 10))


def test_given_route_when_rollout_ends_then_canary_ref_removed_and_stable_full():
    route = with_weights(
        http_route({"name": "demand", "port": 8000}), "demand", "demand-canary", Routes(50, 50)
    )
    assert without_canary(route, "demand", "demand-canary")["spec"]["rules"][0]["backendRefs"] == [
        {"name": "demand", "port": 8000, "weight": 100}
    ]


@pytest.mark.parametrize(
    ("refs", "routes"),
    [
        ([{"name": "demand"}], Routes(100, 0)),
        (
            [{"name": "demand", "weight": 90}, {"name": "demand-canary", "weight": 10}],
            Routes(90, 10),
        ),
        ([{"name": "demand", "weight": 1}, {"name": "demand-canary", "weight": 3}], Routes(25, 75)),
        ([{"name": "demand", "weight": 0}, {"name": "demand-canary", "weight": 0}], Routes(100, 0)),
    ],
)
def test_given_route_when_weights_read_then_split_in_percent(refs, routes):
    assert read_weights(http_route(*refs), "demand", "demand-canary") == routes


def test_given_gateway_router_when_routes_set_then_route_replaced_once_with_its_version():
    client = FakeClient((HTTPROUTE, http_route({"name": "demand", "port": 8000})))
    router = GatewayAPIRouter(client)
    target = RouteTarget(OWNER, Role.CANARY, http_route="demand")
    asyncio.run(router.set_routes(target, Routes(90, 10)))
    asyncio.run(router.set_routes(target, Routes(90, 10)))  # unchanged: no second write
    assert len(client.replaced) == 1
    assert client.replaced[0]["metadata"]["resourceVersion"] == "7", "optimistic concurrency"
    assert asyncio.run(router.get_routes(target)) == Routes(90, 10)
    asyncio.run(router.finalize(target))
    assert asyncio.run(router.get_routes(target)) == Routes(100, 0)


@pytest.mark.parametrize(
    ("objects", "http_route_name", "problem"),
    [
        ((), "demand", "HTTPRoute retail/demand does not exist"),
        ((), None, "httpRoute is empty"),
        (
            ((HTTPROUTE, http_route({"name": "other"}, extra_rule=False)),),
            "demand",
            "no rule with a backendRef",
        ),
    ],
    ids=["missing", "unnamed", "not-routing-to-us"],
)
def test_given_unusable_route_when_reconciled_then_error_tells_what_to_fix(
    objects, http_route_name, problem
):
    router = GatewayAPIRouter(FakeClient(*objects))
    with pytest.raises(RouteError, match=problem):
        asyncio.run(router.reconcile(RouteTarget(OWNER, http_route=http_route_name)))


def test_given_gateway_router_when_services_built_then_main_selects_stable_and_canary_its_own():
    main, canary = GatewayAPIRouter.services(RouteTarget(OWNER), Routes(90, 10))
    assert (main["metadata"]["name"], selector(main)[LABEL_ROLE]) == ("demand", "stable")
    assert (canary["metadata"]["name"], selector(canary)[LABEL_ROLE]) == ("demand-canary", "canary")


# --- the factory -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "router"),
    [
        (None, NullRouter),
        ({"canary": {"steps": [{"setWeight": 10}]}}, ServiceRouter),
        ({"strategy": "BlueGreen"}, ServiceRouter),
        (
            {
                "canary": {
                    "steps": [{"setWeight": 10}],
                    "trafficRouting": {"gatewayAPI": {"httpRoute": "r"}},
                }
            },
            GatewayAPIRouter,
        ),
    ],
    ids=["none", "canary", "blue-green", "gateway"],
)
def test_given_rollout_spec_when_router_chosen_then_it_fits(raw, router):
    assert isinstance(router_for(parse_rollout(raw), FakeClient()), router)
