"""kopf wiring: indices over the watch streams, and thin handlers that start passes.

Nothing here decides anything. Indices keep in memory the ForecastModels and every
object they own; handlers map kopf's causes onto Controller passes and API errors onto
kopf's retry semantics (TemporaryError with a bounded backoff, PermanentError).

No handler needs a finalizer, and none is added: children go with their owner through
the garbage collector, so deleting a ForecastModel never waits for the operator. This is
also why the resync is one operator-wide task rather than a kopf timer per object
(kopf timers add a finalizer).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import kopf

from forecastops.analysis.factory import ProviderFactory
from forecastops.kube.api import ApiError, Kube
from forecastops.kube.kinds import CHILD_KINDS, JOB, Kind
from forecastops.kube.names import (
    API_VERSION,
    KOPF_PREFIX,
    LABEL_COMPONENT,
    LABEL_INSTANCE,
    LABEL_MANAGED_BY,
    MANAGED_BY,
    PLURAL,
    Component,
)
from forecastops.reconcile.backup_status import job_snapshot
from forecastops.runtime.config import OperatorSettings
from forecastops.runtime.controller import Controller, controller_owner, snapshot

FORECASTMODEL_INDEX = "forecastmodels"
BACKUP_JOB_INDEX = "backup_jobs"


def child_index(kind: Kind) -> str:
    return f"owned_{kind.plural}"


def build_kopf_settings() -> kopf.OperatorSettings:
    """kopf keeps its bookkeeping (handler progress, the last handled spec) in annotations
    under our prefix: metadata is never pruned by the CRD's structural schema."""
    settings = kopf.OperatorSettings()
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=KOPF_PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=KOPF_PREFIX, key="last-handled-configuration"
    )
    settings.posting.level = logging.WARNING  # our own Events tell what changed
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    return settings


def build_registry(settings: OperatorSettings) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()
    kopf.on.login(registry=registry)(kopf.login_via_client)  # in-cluster, else the kubeconfig
    kopf.on.startup(registry=registry)(start_operator)
    kopf.on.cleanup(registry=registry)(stop_operator)
    kopf.index(API_VERSION, PLURAL, id=FORECASTMODEL_INDEX, registry=registry)(index_forecastmodel)
    owned = {LABEL_MANAGED_BY: MANAGED_BY}
    for kind in CHILD_KINDS:
        kopf.index(
            kind.api_version, kind.plural, labels=owned, id=child_index(kind), registry=registry
        )(index_child)
        kopf.on.event(
            kind.api_version,
            kind.plural,
            labels=owned,
            id=f"watch_{kind.plural}",
            registry=registry,
        )(on_child_event)
    # Jobs belong to the backup CronJob, not to the ForecastModel: found by the labels
    # the CronJob's jobTemplate gives them, and matched to the CronJob by owner later.
    backup_jobs = {LABEL_MANAGED_BY: MANAGED_BY, LABEL_COMPONENT: str(Component.BACKUP)}
    kopf.index(
        JOB.api_version, JOB.plural, labels=backup_jobs, id=BACKUP_JOB_INDEX, registry=registry
    )(index_backup_job)
    kopf.on.event(
        JOB.api_version, JOB.plural, labels=backup_jobs, id="watch_backup_jobs", registry=registry
    )(on_backup_job_event)
    kopf.on.event(API_VERSION, PLURAL, id="watch_forecastmodels", registry=registry)(
        on_forecastmodel_event
    )
    for cause in (kopf.on.create, kopf.on.update, kopf.on.resume):
        cause(API_VERSION, PLURAL, id="reconcile", retries=settings.retry_limit, registry=registry)(
            reconcile_forecastmodel
        )
    return registry


async def start_operator(memo: kopf.Memo, **indices: Any) -> None:
    settings: OperatorSettings = memo.settings
    kube = await Kube.connect(
        timeout=settings.api_timeout_seconds, capability_ttl=settings.capability_ttl_seconds
    )
    memo.controller = Controller(
        settings,
        kube,
        indices[FORECASTMODEL_INDEX],
        tuple(indices[child_index(kind)] for kind in CHILD_KINDS),
        memo.metrics,
        ProviderFactory(
            prometheus_url=settings.prometheus_url, timeout=settings.analysis_timeout_seconds
        ),
    )
    memo.controller.backup_jobs = indices[BACKUP_JOB_INDEX]
    memo.resync = asyncio.create_task(memo.controller.resync_forever(), name="resync")


async def stop_operator(memo: kopf.Memo, **_: Any) -> None:
    memo.resync.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await memo.resync
    await memo.controller.kube.close()
    memo.controller.providers.close()


def index_forecastmodel(body: kopf.Body, namespace: str, name: str, **_: Any) -> dict:
    return {(namespace, name): snapshot(body)}


def index_child(body: kopf.Body, namespace: str, **_: Any) -> dict:
    owner = controller_owner(body)
    return {(namespace, owner[0]): snapshot(body)} if owner else {}


def on_forecastmodel_event(type: str, namespace: str, name: str, memo: kopf.Memo, **_: Any) -> None:
    if type == "DELETED":
        memo.controller.forget((namespace, name))


async def on_child_event(body: kopf.Body, namespace: str, memo: kopf.Memo, **_: Any) -> None:
    """A child was added, changed or deleted: its owner gets a pass, which restores it."""
    owner = controller_owner(body)
    if owner:
        await memo.controller.request((namespace, owner[0]))


def index_backup_job(body: kopf.Body, namespace: str, labels: kopf.Labels, **_: Any) -> dict:
    instance = labels.get(LABEL_INSTANCE)
    return {(namespace, instance): job_snapshot(body)} if instance else {}


async def on_backup_job_event(
    namespace: str, labels: kopf.Labels, memo: kopf.Memo, **_: Any
) -> None:
    """A backup Job was created, finished or deleted: its ForecastModel's status.backup
    follows."""
    instance = labels.get(LABEL_INSTANCE)
    if instance:
        await memo.controller.request((namespace, instance))


async def reconcile_forecastmodel(
    namespace: str, name: str, retry: int, memo: kopf.Memo, **_: Any
) -> None:
    settings: OperatorSettings = memo.settings
    try:
        await memo.controller.reconcile_now((namespace, name))
    except ApiError as error:
        if error.transient:
            raise kopf.TemporaryError(str(error), delay=settings.retry_delay(retry)) from error
        raise kopf.PermanentError(str(error)) from error
