"""Controller: gathering from the indices, serialised and coalesced passes, API errors."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fmsamples import UID, example
from forecastops.analysis.factory import ProviderFactory
from forecastops.kube.api import ApiError
from forecastops.kube.kinds import Capabilities, ChildKey
from forecastops.runtime.controller import Controller, controller_owner, snapshot
from forecastops.telemetry.prometheus import PrometheusMetrics

KEY = ("retail", "store-demand")


class FakeKube:
    """Records writes; `fail_with` makes every apply raise."""

    def __init__(self, fail_with: ApiError | None = None, gate: asyncio.Event | None = None):
        self.fail_with = fail_with
        self.gate = gate
        self.applied: list[dict[str, Any]] = []
        self.statuses: list[dict[str, Any]] = []
        self.events: list[str] = []

    async def apply(self, manifest):
        if self.gate:
            await self.gate.wait()
        if self.fail_with:
            raise self.fail_with
        self.applied.append(manifest)
        return manifest

    async def delete(self, kind, namespace, name):
        raise AssertionError("nothing to delete here")

    async def patch_status(self, ref, status):
        self.statuses.append(status)

    async def post_event(self, ref, event):
        self.events.append(event.reason)

    async def read_capabilities(self):
        return Capabilities()


def controller(kube, settings, children=()) -> Controller:
    fms = {KEY: [example("minimal")]}
    return Controller(
        settings,
        kube,
        fms,
        ({KEY: list(children)},),
        PrometheusMetrics(),
        ProviderFactory(prometheus_url=None),
    )


def owned(kind, name, uid=UID):
    return {
        "kind": kind,
        "metadata": {
            "name": name,
            "ownerReferences": [
                {
                    "apiVersion": "forecastops.io/v1alpha1",
                    "kind": "ForecastModel",
                    "name": "store-demand",
                    "uid": uid,
                    "controller": True,
                }
            ],
        },
    }


@pytest.mark.asyncio
async def test_gather_keeps_only_children_of_this_very_forecastmodel(settings):
    mine, stale = owned("Service", "store-demand"), owned("Deployment", "store-demand", uid="old")
    observed = await controller(FakeKube(), settings, [mine, stale]).gather(KEY)
    assert observed.children == {ChildKey("Service", "store-demand"): mine}
    assert await controller(FakeKube(), settings).gather(("retail", "gone")) is None


@pytest.mark.asyncio
async def test_a_pass_writes_children_then_status_then_events(settings):
    kube = FakeKube()
    await controller(kube, settings).reconcile_now(KEY)
    assert [m["kind"] for m in kube.applied] == [
        "NetworkPolicy",
        "Service",
        "PodDisruptionBudget",
        "Deployment",
    ]
    assert kube.statuses[0]["phase"] == "Pending"
    assert kube.events == ["Created"] * 4


def sample(ctl: Controller, metric: str, **labels: str) -> float | None:
    return ctl.metrics.registry.get_sample_value(metric, labels)


@pytest.mark.asyncio
async def test_passes_writes_and_phases_are_counted_and_forgotten_with_the_model(settings):
    ctl = controller(FakeKube(), settings)
    await ctl.reconcile_now(KEY)
    assert sample(ctl, "forecastops_reconcile_total", result="ok") == 1
    assert sample(ctl, "forecastops_child_writes_total", kind="Deployment", verb="Created") == 1
    labels = {"namespace": "retail", "name": "store-demand"}
    assert sample(ctl, "forecastops_rollout_phase", **labels, phase="Pending") == 1
    assert sample(ctl, "forecastops_rollout_phase", **labels, phase="Healthy") == 0
    ctl.forget(KEY)
    assert sample(ctl, "forecastops_rollout_phase", **labels, phase="Pending") is None


@pytest.mark.asyncio
async def test_transient_errors_are_raised_for_kopf_to_retry(settings):
    kube = FakeKube(fail_with=ApiError(503, "ServiceUnavailable", "etcd is away"))
    ctl = controller(kube, settings)
    with pytest.raises(ApiError):
        await ctl.reconcile_now(KEY)
    assert kube.statuses == []
    assert sample(ctl, "forecastops_reconcile_total", result="transient_error") == 1


@pytest.mark.asyncio
async def test_permanent_errors_are_reported_in_status_then_raised(settings):
    kube = FakeKube(fail_with=ApiError(422, "Invalid", "spec.template: bad"))
    with pytest.raises(ApiError):
        await controller(kube, settings).reconcile_now(KEY)
    (status,) = kube.statuses
    degraded = next(c for c in status["conditions"] if c["type"] == "Degraded")
    assert degraded["reason"] == "ApplyFailed" and "spec.template: bad" in degraded["message"]
    assert "ApplyFailed" in kube.events


@pytest.mark.asyncio
async def test_a_namespace_being_deleted_is_not_an_error(settings):
    error = ApiError(403, "Forbidden", "being terminated", ("NamespaceTerminating",))
    kube = FakeKube(fail_with=error)
    await controller(kube, settings).reconcile_now(KEY)
    assert kube.statuses == []


@pytest.mark.asyncio
async def test_requests_fold_into_one_queued_pass_and_errors_are_only_logged(settings, caplog):
    gate = asyncio.Event()
    kube = FakeKube(gate=gate)
    ctl = controller(kube, settings)
    running = asyncio.create_task(ctl.request(KEY))
    await asyncio.sleep(0)
    queued = [asyncio.create_task(ctl.request(KEY)) for _ in range(5)]
    await asyncio.sleep(0)
    gate.set()
    await asyncio.gather(running, *queued)
    assert len(kube.statuses) == 2  # the running pass and one queued pass, not six

    kube.fail_with = ApiError(500, "InternalError", "boom")
    await ctl.request(KEY)
    assert "Reconcile failed namespace=retail name=store-demand" in caplog.text


def test_snapshot_drops_managed_fields_and_copies():
    body = {"metadata": {"name": "a", "managedFields": [{}]}, "spec": {"x": [1]}}
    kept = snapshot(body)
    kept["spec"]["x"].append(2)
    assert kept["metadata"] == {"name": "a"} and body["spec"]["x"] == [1]


def test_only_a_controlling_forecastmodel_is_an_owner():
    assert controller_owner(owned("Service", "s")) == ("store-demand", UID)
    assert (
        controller_owner(
            {"metadata": {"ownerReferences": [{"kind": "ReplicaSet", "controller": True}]}}
        )
        is None
    )
    assert controller_owner({"metadata": {}}) is None
