"""When and how often a ForecastModel is reconciled; what each pass gathers.

Four things start a pass: kopf's create/update/resume handlers, an event on a child
(deleted, edited, or its status moved), the level-triggered resync of every
ForecastModel, and a rollout's own clock (a pass asks for the next one when a
measurement, the end of a pause or a delay is due). Passes of one ForecastModel never
overlap, and requests that arrive while one is queued fold into it. A pass gathers from the in-memory indices kopf fills
from its watch streams, so an idle operator reads nothing and writes nothing.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from forecastops.analysis.factory import ProviderFactory
from forecastops.kube.api import ApiError, Kube
from forecastops.kube.kinds import ChildKey
from forecastops.kube.names import API_VERSION, KIND
from forecastops.reconcile.pipeline import Snapshot, reconcile
from forecastops.reconcile.status import apply_merge_patch
from forecastops.runtime.config import OperatorSettings
from forecastops.telemetry.metrics import Metrics

log = logging.getLogger(__name__)

Key = tuple[str, str]
"""(namespace, name) of a ForecastModel."""

Index = Mapping[Key, Iterable[Mapping[str, Any]]]
"""Snapshots of objects by the ForecastModel they belong to (kopf indices have this shape)."""


def snapshot(body: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of an object to keep in memory, without its bulky managedFields."""
    kept = copy.deepcopy(dict(body))
    kept.get("metadata", {}).pop("managedFields", None)
    return kept


def controller_owner(body: Mapping[str, Any]) -> tuple[str, str] | None:
    """(name, uid) of the ForecastModel controlling `body`, if any."""
    for ref in body.get("metadata", {}).get("ownerReferences", []):
        if (
            ref.get("controller")
            and ref.get("apiVersion") == API_VERSION
            and ref.get("kind") == KIND
        ):
            return ref["name"], ref["uid"]
    return None


def newest(*bodies: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """The most recent version of an object (the API server's resourceVersions grow)."""
    known = [b for b in bodies if b is not None]
    return max(known, key=lambda b: int(b["metadata"].get("resourceVersion") or 0), default=None)


@dataclass
class Controller:
    settings: OperatorSettings
    kube: Kube
    forecastmodels: Index
    children: tuple[Index, ...]
    metrics: Metrics
    providers: ProviderFactory
    """Where rollouts' analysis metrics are measured."""
    backup_jobs: Index = field(default_factory=dict)
    """Backup Jobs by the ForecastModel their labels name (`handlers.index_backup_job`)."""
    _locks: weakref.WeakValueDictionary[Key, asyncio.Lock] = field(
        default_factory=weakref.WeakValueDictionary
    )
    _queued: set[Key] = field(default_factory=set)
    _written: dict[Key, Mapping[str, Any]] = field(default_factory=dict)
    """Each ForecastModel as this process last wrote it: the next pass reads its own
    writes even when the watch stream has not delivered them yet, so a rollout's command
    or measurement is never applied twice."""
    _timers: dict[Key, asyncio.TimerHandle] = field(default_factory=dict)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def reconcile_now(self, key: Key) -> None:
        """One pass, now or after the running one; API errors are raised to the caller."""
        async with self._lock(key):
            await self._pass(key)

    async def request(self, key: Key) -> None:
        """A pass soon; a no-op when one is already queued. Errors are logged: the next
        resync retries."""
        if key in self._queued:
            return
        self._queued.add(key)
        async with self._lock(key):
            self._queued.discard(key)
            try:
                await self._pass(key)
            except ApiError as error:
                log.warning("Reconcile failed namespace=%s name=%s error=%s", *key, error)

    async def resync_forever(self) -> None:
        """Level-triggered: every resync period, a pass of every ForecastModel."""
        limit = asyncio.Semaphore(self.settings.max_parallel_resyncs)

        async def one(key: Key) -> None:
            async with limit:
                await self.request(key)

        while True:
            await asyncio.sleep(self.settings.resync_seconds)
            await asyncio.gather(*(one(key) for key in list(self.forecastmodels)))

    async def gather(self, key: Key) -> Snapshot | None:
        bodies = list(self.forecastmodels.get(key, ()))
        if not bodies:
            return None  # deleted meanwhile
        written = self._written.get(key)
        same = written is not None and written["metadata"]["uid"] == bodies[0]["metadata"]["uid"]
        body = newest(bodies[0], written if same else None)
        assert body is not None
        uid = body["metadata"]["uid"]
        children = {
            ChildKey.of(child): child
            for index in self.children
            for child in index.get(key, ())
            if controller_owner(child) == (key[1], uid)
        }
        jobs = tuple(self.backup_jobs.get(key, ()))
        return Snapshot(body, children, await self.kube.read_capabilities(), jobs)

    def forget(self, key: Key) -> None:
        """The ForecastModel is gone."""
        self.metrics.forget(key)
        self._written.pop(key, None)
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()

    async def _pass(self, key: Key) -> None:
        observed = await self.gather(key)
        if observed is None:
            self.forget(key)
            return
        started = time.monotonic()
        try:
            outcome = await reconcile(
                self.kube,
                observed,
                self.settings,
                now=datetime.now(UTC),
                providers=self.providers,
            )
        except ApiError as error:
            result = "transient_error" if error.transient else "failed"
            self.metrics.observe_pass(result, time.monotonic() - started)
            raise
        plan = outcome.plan
        if outcome.written is not None:
            self._written[key] = outcome.written
        self.metrics.observe_pass("ok", time.monotonic() - started)
        self.metrics.observe_writes((w.key.kind, str(w.verb)) for w in plan.writes)
        status = apply_merge_patch(observed.body.get("status", {}), plan.status_patch)
        self.metrics.observe_status(key, status)
        if plan.delivery is not None:
            self.metrics.observe_rollout(key, plan.delivery.before, plan.delivery.decision)
            if plan.delivery.requeue_after is not None:
                self._requeue(key, plan.delivery.requeue_after)

    def _requeue(self, key: Key, after: float) -> None:
        """A pass in `after` seconds, unless one is already due sooner."""
        loop = asyncio.get_running_loop()
        timer = self._timers.get(key)
        if timer is not None and timer.when() <= loop.time() + after:
            return
        if timer is not None:
            timer.cancel()
        self._timers[key] = loop.call_later(after, self._start_pass, key)

    def _start_pass(self, key: Key) -> None:
        self._timers.pop(key, None)
        task = asyncio.create_task(self.request(key), name=f"requeue {key[0]}/{key[1]}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _lock(self, key: Key) -> asyncio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        return lock
