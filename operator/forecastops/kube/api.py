"""The one module that talks to the Kubernetes API (kopf's own bookkeeping aside).

Writes are server-side applies under one field manager, status patches and Events, and
the update of a user's HTTPRoute (a canary with exact weights). Reads are capability
checks (which optional CRDs are served) and that HTTPRoute; everything else the
operator knows comes from the watch streams kopf keeps.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
from kubernetes.aio.client import ApiClient, Configuration
from kubernetes.aio.config import load_incluster_config, load_kube_config

from forecastops.kube.kinds import OPTIONAL_KINDS, Capabilities, Kind, kind_of
from forecastops.kube.names import API_VERSION, FIELD_MANAGER, KIND, PLURAL
from forecastops.reconcile.events import Event
from forecastops.spec import ObjectRef

log = logging.getLogger(__name__)

_TRANSIENT_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
_APPLY = "application/apply-patch+yaml"
_MERGE = "application/merge-patch+json"


class ApiError(Exception):
    """A failed API request; `transient` ones are worth retrying as they are."""

    def __init__(self, status: int, reason: str, message: str, causes: tuple[str, ...] = ()):
        super().__init__(f"{status} {reason}: {message}" if status else message)
        self.status = status
        self.reason = reason
        self.message = message
        self.causes = causes

    @property
    def transient(self) -> bool:
        return self.status == 0 or self.status in _TRANSIENT_STATUSES

    @property
    def namespace_terminating(self) -> bool:
        """Writes into a namespace being deleted are refused; nothing there needs writing."""
        return self.status == 403 and "NamespaceTerminating" in self.causes

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @classmethod
    def from_response(cls, status: int, data: bytes) -> ApiError:
        try:
            body = json.loads(data)
        except ValueError:
            return cls(status, "", data.decode(errors="replace")[:500])
        causes = tuple(c.get("reason", "") for c in body.get("details", {}).get("causes", []))
        return cls(status, body.get("reason", ""), body.get("message", ""), causes)


@dataclass
class Kube:
    """Async access to the API server with the operator's identity."""

    api: ApiClient
    timeout: float = 30.0
    capability_ttl: float = 60.0
    _capabilities: tuple[float, Capabilities] | None = field(default=None, repr=False)

    @classmethod
    async def connect(cls, *, timeout: float, capability_ttl: float) -> Kube:
        """In a pod, the service account; elsewhere, $KUBECONFIG or ~/.kube/config."""
        config = Configuration()
        if os.environ.get("KUBERNETES_SERVICE_HOST") and not os.environ.get("KUBECONFIG"):
            load_incluster_config(client_configuration=config)
        else:
            await load_kube_config(client_configuration=config)
        api = ApiClient(configuration=config)
        api.user_agent = "forecastops-operator"
        return cls(api, timeout, capability_ttl)

    async def close(self) -> None:
        await self.api.close()

    async def apply(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply: the fields in `manifest` become the operator's, conflicts forced."""
        meta = manifest["metadata"]
        path = kind_of(manifest).object_path(meta["namespace"], meta["name"])
        query = [("fieldManager", FIELD_MANAGER), ("force", "true")]
        return await self._request("PATCH", path, body=manifest, query=query, content_type=_APPLY)

    async def delete(self, kind: Kind, namespace: str, name: str) -> None:
        """Delete a child; one already gone is fine. Dependents go in the background."""
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}
        try:
            await self._request("DELETE", kind.object_path(namespace, name), body=body)
        except ApiError as exc:
            if not exc.not_found:
                raise

    async def patch_status(self, ref: ObjectRef, status: dict[str, Any]) -> dict[str, Any]:
        """JSON merge patch of the status subresource; None values remove fields. Returns
        the ForecastModel as written."""
        path = f"/apis/{API_VERSION}/namespaces/{ref.namespace}/{PLURAL}/{ref.name}/status"
        body = {"metadata": {"uid": ref.uid}, "status": status}  # the uid guards a re-created FM
        query = [("fieldManager", FIELD_MANAGER)]
        return await self._request("PATCH", path, body=body, query=query, content_type=_MERGE)

    async def get(self, kind: Kind, namespace: str, name: str) -> dict[str, Any] | None:
        """One object outside the watched children (a user's HTTPRoute); None if absent."""
        try:
            return await self._request("GET", kind.object_path(namespace, name))
        except ApiError as exc:
            if exc.not_found:
                return None
            raise

    async def replace(self, kind: Kind, manifest: dict[str, Any]) -> dict[str, Any]:
        """PUT `manifest` as read and changed: its resourceVersion makes a concurrent
        change fail with 409 (transient), to be read and changed again."""
        meta = manifest["metadata"]
        path = kind.object_path(meta["namespace"], meta["name"])
        query = [("fieldManager", FIELD_MANAGER)]
        return await self._request("PUT", path, body=manifest, query=query)

    async def post_event(self, ref: ObjectRef, event: Event) -> None:
        """Best effort: a failure to report is logged, never raised."""
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{ref.name}.", "namespace": ref.namespace},
            "involvedObject": {
                "apiVersion": API_VERSION,
                "kind": KIND,
                "name": ref.name,
                "namespace": ref.namespace,
                "uid": ref.uid,
            },
            "type": event.type,
            "reason": event.reason,
            "message": event.message[:1024],
            "source": {"component": FIELD_MANAGER},
            "reportingComponent": f"{FIELD_MANAGER}-operator",
            "reportingInstance": socket.gethostname(),
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        try:
            path = f"/api/v1/namespaces/{ref.namespace}/events"
            await self._request("POST", path, body=body, query=[("fieldManager", FIELD_MANAGER)])
        except ApiError as exc:
            if not exc.namespace_terminating:
                log.warning("Could not post event reason=%s error=%s", event.reason, exc)

    async def read_capabilities(self) -> Capabilities:
        """Which optional CRDs the cluster serves, from API discovery; cached for a while."""
        now = time.monotonic()
        if self._capabilities and now - self._capabilities[0] < self.capability_ttl:
            return self._capabilities[1]
        installed = [kind for kind in OPTIONAL_KINDS if await self._serves(kind)]
        capabilities = Capabilities(frozenset(installed))
        self._capabilities = (now, capabilities)
        return capabilities

    async def _serves(self, kind: Kind) -> bool:
        try:
            discovery = await self._request("GET", f"/apis/{kind.api_version}")
        except ApiError as exc:
            if exc.not_found:
                return False
            raise
        return any(r.get("name") == kind.plural for r in discovery.get("resources", []))

    async def _request(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        query: list[tuple[str, str]] | None = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        headers = {"Content-Type": content_type, "Accept": "application/json"}
        try:
            method, url, headers, body, _ = await self.api.param_serialize(
                method=method,
                resource_path=path,
                query_params=query,
                header_params=headers,
                body=body,
                auth_settings=["BearerToken"],
            )
            response = await self.api.call_api(
                method, url, header_params=headers, body=body, _request_timeout=self.timeout
            )
            data = await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ApiError(0, "Unreachable", f"{method} {path}: {exc!r}") from exc
        if response.status >= 400:
            raise ApiError.from_response(response.status, data)
        return json.loads(data) if data else {}
