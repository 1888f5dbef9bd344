"""The test harness shared by the integration and end-to-end suites and `make demo`.

- `wait_for`: poll until something holds, failing with what was awaited;
- `OPERATOR_USER`, `OPERATOR_GROUPS`: the operator's identity of deploy/rbac/;
- `forecastmodel`, `revision_of`: ForecastModel manifests and the revision the operator
  computes for them;
- `Kit`: kubectl as admin, returning parsed JSON.
"""

from __future__ import annotations

import copy
import json
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")

FM = "forecastmodels.forecastops.io"
API_VERSION = "forecastops.io/v1alpha1"
CHILD_KINDS = (
    "deployments.apps",
    "services",
    "poddisruptionbudgets.policy",
    "networkpolicies.networking.k8s.io",
    "horizontalpodautoscalers.autoscaling",
    "verticalpodautoscalers.autoscaling.k8s.io",
    "servicemonitors.monitoring.coreos.com",
    "cronjobs.batch",
)


def operator_identity(namespace: str, service_account: str) -> tuple[str, tuple[str, ...]]:
    """The user name and groups the API server gives a ServiceAccount's token."""
    user = f"system:serviceaccount:{namespace}:{service_account}"
    return user, ("system:serviceaccounts", f"system:serviceaccounts:{namespace}")


OPERATOR_USER, OPERATOR_GROUPS = operator_identity("forecastops", "forecastops-operator")
"""The ServiceAccount that deploy/rbac/operator-binding.yaml binds."""


class WaitTimeout(AssertionError, TimeoutError):
    """A test fails with it (an assertion); a script may catch it as a TimeoutError."""


def wait_for(check: Callable[[], T], timeout: float = 60, what: str = "", every: float = 0.5) -> T:
    """Poll `check` until it returns something truthy, and return that; after `timeout`
    seconds raise WaitTimeout naming `what` and the last result."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            last = "" if result is None or result is False else f" (last: {result!r})"
            raise WaitTimeout(f"timed out after {timeout:.0f}s waiting for {what or check}{last}")
        time.sleep(every)


def forecastmodel(name: str, spec: Mapping[str, Any], **metadata: Any) -> dict[str, Any]:
    """A ForecastModel manifest; `metadata` adds namespace, uid, annotations and the like."""
    return {
        "apiVersion": API_VERSION,
        "kind": "ForecastModel",
        "metadata": {"name": name, **metadata},
        "spec": copy.deepcopy(dict(spec)),
    }


def revision_of(
    manifest: Mapping[str, Any], namespace: str | None = None, **operator_settings: Any
) -> str:
    """The revision the operator computes for `manifest`: the same function, same defaults
    (`operator_settings` as the operator under test has them, e.g. server_image=...)."""
    from forecastops.kube.revision import compute_revision
    from forecastops.runtime.config import OperatorSettings
    from forecastops.spec import parse_forecastmodel

    meta = {"uid": "x", **manifest["metadata"]}
    if namespace is not None:
        meta["namespace"] = namespace
    parsed = parse_forecastmodel(
        {**manifest, "metadata": meta}, OperatorSettings(**operator_settings).server_defaults()
    )
    return compute_revision(parsed.spec.pod)


def condition_of(fm: Mapping[str, Any] | None, kind: str) -> dict[str, Any]:
    """The condition of type `kind` in a ForecastModel's status, or {}."""
    conditions = ((fm or {}).get("status") or {}).get("conditions", [])
    return next((c for c in conditions if c["type"] == kind), {})


@dataclass
class Kit:
    """kubectl as admin, returning parsed JSON. `namespace`, when set, is the namespace of
    every call that names none."""

    cluster: Any
    namespace: str | None = None
    wait_for = staticmethod(wait_for)
    condition_of = staticmethod(condition_of)

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return self.cluster.kubectl(*args, input=input, check=check)

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        """The object, or None when there is none."""
        args = ("get", kind, name, "-n", self._ns(namespace), "-o", "json")
        done = self.kubectl(*args, check=False)
        if done.returncode:
            if "NotFound" in done.stderr:
                return None
            raise AssertionError(done.stderr)
        return json.loads(done.stdout)

    def list(
        self, kind: str, namespace: str | None = None, selector: str = ""
    ) -> list[dict[str, Any]]:
        args = ["get", kind, "-n", self._ns(namespace), "-o", "json"]
        if selector:
            args += ["-l", selector]
        return json.loads(self.kubectl(*args).stdout)["items"]

    def apply(
        self, source: Path | Mapping[str, Any], namespace: str | None = None, *, check: bool = False
    ) -> subprocess.CompletedProcess[str]:
        """`kubectl apply` of a file or a manifest; with `check`, a refusal raises."""
        text = source.read_text() if isinstance(source, Path) else yaml.safe_dump(dict(source))
        args = ("apply", "-n", self._ns(namespace), "-f", "-")
        return self.kubectl(*args, input=text, check=check)

    def fm(self, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        return self.get(FM, name, namespace)

    def condition(self, name: str, namespace: str | None, kind: str) -> dict[str, Any]:
        return condition_of(self.fm(name, namespace), kind)

    def wait_ready(self, name: str, namespace: str | None = None, timeout: float = 90) -> dict:
        """The ForecastModel once Ready=True for its current generation."""

        def ready() -> dict[str, Any] | None:
            fm = self.fm(name, namespace)
            if fm is None:
                return None
            current = fm.get("status", {}).get("observedGeneration") == fm["metadata"]["generation"]
            return fm if current and condition_of(fm, "Ready").get("status") == "True" else None

        return wait_for(ready, timeout=timeout, what=f"{self._ns(namespace)}/{name} Ready")

    def rollout(self, name: str, namespace: str | None = None) -> dict[str, Any]:
        """The ForecastModel's status.rollout ({} before the operator wrote one)."""
        return (self._present(name, namespace).get("status") or {}).get("rollout") or {}

    def wait_rollout(
        self,
        name: str,
        check: Callable[[dict[str, Any]], bool],
        *,
        timeout: float,
        what: str,
        namespace: str | None = None,
    ) -> dict[str, Any]:
        """The ForecastModel once `check(status.rollout)` holds."""

        def done() -> dict[str, Any] | None:
            fm = self._present(name, namespace)
            return fm if check((fm.get("status") or {}).get("rollout") or {}) else None

        return wait_for(done, timeout=timeout, what=f"{name}: {what}", every=0.25)

    def children(self, name: str, namespace: str | None = None) -> dict[tuple[str, str], dict]:
        """Every object labelled as a child of ForecastModel `name`, by (kind, name)."""
        selector = f"app.kubernetes.io/instance={name},app.kubernetes.io/managed-by=forecastops"
        items = self.list(",".join(CHILD_KINDS), namespace, selector)
        return {(i["kind"], i["metadata"]["name"]): i for i in items}

    def deployments(self, name: str, namespace: str | None = None) -> dict[str, dict[str, Any]]:
        items = self.list("deployments", namespace, f"app.kubernetes.io/instance={name}")
        return {d["metadata"]["name"]: d for d in items}

    def events(self, name: str, namespace: str | None = None) -> list[dict[str, Any]]:
        """The Events about `name`, oldest first."""
        items = self.list("events", namespace)
        events = [e for e in items if e["involvedObject"].get("name") == name]
        return sorted(events, key=lambda e: e.get("firstTimestamp") or "")

    def reasons(self, name: str, namespace: str | None = None) -> list[str]:
        return [e["reason"] for e in self.events(name, namespace)]

    def _present(self, name: str, namespace: str | None) -> dict[str, Any]:
        found = self.fm(name, namespace)
        assert found is not None, f"ForecastModel {name} is gone"
        return found

    def _ns(self, namespace: str | None) -> str:
        chosen = namespace or self.namespace
        assert chosen, "no namespace: name one, or make the Kit with one"
        return chosen
