"""Which router a ForecastModel's rollout uses."""

from __future__ import annotations

from forecastops.rollout.spec import RolloutSpec
from forecastops.traffic.gateway_api import GatewayAPIRouter
from forecastops.traffic.null import NullRouter
from forecastops.traffic.router import RouteClient, TrafficRouter
from forecastops.traffic.service import ServiceRouter


def router_type(spec: RolloutSpec | None) -> type[TrafficRouter]:
    """No rollout: NullRouter; exact weights asked for: GatewayAPIRouter; else ServiceRouter.

    The type alone builds the Services (pure); an instance with a client moves traffic.
    """
    if spec is None:
        return NullRouter
    if spec.exact_weights:
        return GatewayAPIRouter
    return ServiceRouter


def router_for(spec: RolloutSpec | None, client: RouteClient) -> TrafficRouter:
    return router_type(spec)(client)
