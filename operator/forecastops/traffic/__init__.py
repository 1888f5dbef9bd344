"""Traffic routing for rollouts: routers behind a small Protocol, one file each.

`router.TrafficRouter` is the interface; `service.ServiceRouter` (replica ratio and the
blue-green switch, no mesh), `gateway_api.GatewayAPIRouter` (exact weights on an
HTTPRoute) and `null.NullRouter` implement it; `factory.router_for` picks one.
"""
