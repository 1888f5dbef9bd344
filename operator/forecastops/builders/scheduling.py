"""Where the model server's pods may run: the node selector and tolerations of
``spec.server``, shared by the server's Deployments and the backup CronJob's pods."""

from __future__ import annotations

from typing import Any

from forecastops.spec import Server, Toleration


def scheduling(server: Server) -> dict[str, Any]:
    """The pod spec's ``nodeSelector`` and ``tolerations``, each only when set."""
    fields: dict[str, Any] = {}
    if server.node_selector:
        fields["nodeSelector"] = dict(server.node_selector)
    if server.tolerations:
        fields["tolerations"] = [build_toleration(t) for t in server.tolerations]
    return fields


def build_toleration(toleration: Toleration) -> dict[str, Any]:
    built: dict[str, Any] = {"operator": str(toleration.operator)}
    if toleration.key:
        built["key"] = toleration.key
    if toleration.value:
        built["value"] = toleration.value
    if toleration.effect:
        built["effect"] = str(toleration.effect)
    if toleration.toleration_seconds is not None:
        built["tolerationSeconds"] = toleration.toleration_seconds
    return built
