"""The children a ForecastModel should have, as manifests (pure).

This is the one place that lists them: whatever a ForecastModel owns and is neither
listed here nor kept (see `DesiredChildren.kept`) is deleted. Which model-server
Deployments and Services exist follows the rollout's decision (`delivery.Delivery`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from forecastops.builders.cronjob import build_backup_cronjob
from forecastops.builders.deployment import build_deployment
from forecastops.builders.hpa import build_hpa
from forecastops.builders.networkpolicy import build_network_policy
from forecastops.builders.pdb import build_pdb
from forecastops.builders.service import build_metrics_service
from forecastops.builders.servicemonitor import build_service_monitor
from forecastops.builders.vpa import build_vpa
from forecastops.kube.kinds import CHILD_KINDS, SERVICE_MONITOR, VPA, Capabilities, ChildKey, Kind
from forecastops.kube.names import Role
from forecastops.reconcile.delivery import Delivery
from forecastops.reconcile.drift import with_input_hash
from forecastops.spec import ForecastModel


@dataclass(frozen=True)
class DesiredChildren:
    manifests: dict[ChildKey, dict[str, Any]]
    """Every child to have, each annotated with its input hash, in the order to apply."""
    optional: dict[Kind, bool]
    """Each optional kind the spec asks for, and whether the cluster serves it."""
    kept: frozenset[ChildKey] = frozenset()
    """Children to leave exactly as they are: neither written nor deleted (a rollout keeps
    stable's Deployment untouched, and an aborted candidate's for its abort delay)."""


def build_children(
    fm: ForecastModel,
    *,
    revision: str,
    capabilities: Capabilities,
    pod_uid: int,
    delivery: Delivery,
) -> DesiredChildren:
    owner, spec = fm.ref, fm.spec
    manifests = [
        *delivery.services(),
        build_pdb(owner),
        *_deployments(fm, revision=revision, pod_uid=pod_uid, delivery=delivery),
    ]
    if spec.network_policy.enabled:
        manifests.append(build_network_policy(owner, spec.network_policy))
    if spec.autoscaling:
        manifests.append(build_hpa(owner, spec.autoscaling))
    if spec.backup:
        manifests.append(build_backup_cronjob(owner, spec.backup, spec.pod, pod_uid=pod_uid))
    optional: dict[Kind, bool] = {}
    if spec.autoscaling and spec.autoscaling.vpa_update_mode:
        optional[VPA] = capabilities.serves(VPA)
        if optional[VPA]:
            manifests.append(build_vpa(owner, spec.autoscaling.vpa_update_mode))
    if spec.service_monitor.enabled:
        optional[SERVICE_MONITOR] = capabilities.serves(SERVICE_MONITOR)
        if optional[SERVICE_MONITOR]:
            manifests.append(build_service_monitor(owner, spec.service_monitor))
            manifests.append(build_metrics_service(owner))
    order = {kind.kind: index for index, kind in enumerate(CHILD_KINDS)}
    manifests.sort(key=lambda m: order[m["kind"]])
    return DesiredChildren(
        {ChildKey.of(m): with_input_hash(m) for m in manifests}, optional, delivery.kept()
    )


def _deployments(
    fm: ForecastModel, *, revision: str, pod_uid: int, delivery: Delivery
) -> list[dict[str, Any]]:
    """The model-server Deployments the rollout asks to write, all at the spec's revision:
    stable (its replicas left to the HPA when autoscaling) and a canary or preview."""
    owner, spec = fm.ref, fm.spec
    wanted: list[tuple[Role, int | None]] = []
    if delivery.stable_revision is not None:
        wanted.append((Role.STABLE, None if spec.autoscaling else spec.replicas))
    for role in (Role.CANARY, Role.PREVIEW):
        replicas = delivery.candidate_replicas(role)
        if isinstance(replicas, int):
            wanted.append((role, replicas))
    return [
        build_deployment(
            owner, spec.pod, revision=revision, role=role, replicas=replicas, pod_uid=pod_uid
        )
        for role, replicas in wanted
    ]
