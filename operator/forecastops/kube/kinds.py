"""The Kubernetes kinds the operator owns, and how the API serves them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Kind:
    api_version: str
    kind: str
    plural: str
    optional: bool = False
    """Served only where a CRD is installed (the operator checks before using it)."""

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def version(self) -> str:
        return self.api_version.rpartition("/")[2]

    def collection_path(self, namespace: str) -> str:
        prefix = f"/apis/{self.api_version}" if self.group else f"/api/{self.api_version}"
        return f"{prefix}/namespaces/{namespace}/{self.plural}"

    def object_path(self, namespace: str, name: str) -> str:
        return f"{self.collection_path(namespace)}/{name}"


DEPLOYMENT = Kind("apps/v1", "Deployment", "deployments")
SERVICE = Kind("v1", "Service", "services")
HPA = Kind("autoscaling/v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers")
VPA = Kind("autoscaling.k8s.io/v1", "VerticalPodAutoscaler", "verticalpodautoscalers", True)
PDB = Kind("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets")
NETWORK_POLICY = Kind("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies")
CRONJOB = Kind("batch/v1", "CronJob", "cronjobs")
JOB = Kind("batch/v1", "Job", "jobs")
"""Not a child: the backup CronJob's; watched (never written) for status.backup."""
SERVICE_MONITOR = Kind("monitoring.coreos.com/v1", "ServiceMonitor", "servicemonitors", True)

CHILD_KINDS: tuple[Kind, ...] = (
    NETWORK_POLICY,
    SERVICE,
    PDB,
    DEPLOYMENT,
    HPA,
    VPA,
    SERVICE_MONITOR,
    CRONJOB,
)
"""Every kind of child, in the order they are applied: the network policy and the
Service before the pods they guard and expose."""

BY_API_KIND: dict[tuple[str, str], Kind] = {(k.api_version, k.kind): k for k in CHILD_KINDS}
BY_KIND_NAME: dict[str, Kind] = {k.kind: k for k in CHILD_KINDS}


@dataclass(frozen=True, order=True)
class ChildKey:
    """Identifies one child of a ForecastModel (all children live in its namespace)."""

    kind: str
    name: str

    @classmethod
    def of(cls, manifest: dict) -> ChildKey:
        return cls(manifest["kind"], manifest["metadata"]["name"])


def kind_of(manifest: dict) -> Kind:
    return BY_API_KIND[(manifest["apiVersion"], manifest["kind"])]


@dataclass(frozen=True)
class Capabilities:
    """Which optional kinds the cluster serves (their CRDs are installed)."""

    installed: frozenset[Kind] = frozenset()

    def serves(self, kind: Kind) -> bool:
        return not kind.optional or kind in self.installed


OPTIONAL_KINDS: tuple[Kind, ...] = tuple(k for k in CHILD_KINDS if k.optional)
