"""The controller's part in rollouts: it reads its own writes, and keeps the rollout's clock."""

from __future__ import annotations

import asyncio
import copy
from dataclasses import replace
from typing import Any

import pytest
from forecastops.analysis.factory import ProviderFactory
from forecastops.kube.kinds import Capabilities
from forecastops.rollout.state import Phase, RolloutStatus, to_dict
from forecastops.runtime.config import OperatorSettings
from forecastops.runtime.controller import Controller, newest
from forecastops.telemetry.metrics import NoMetrics

from devenv.harness import forecastmodel, revision_of
from tests.unit.deployment_bodies import deployment_body

KEY = ("retail", "demand")
UID = "u-1"
ROLLOUT = {
    "strategy": "Canary",
    "canary": {"steps": [{"setWeight": 50}, {"pause": {}}, {"pause": {}}]},
    "analysis": {
        "metrics": [
            {"name": "m", "prometheus": {"query": "vector(0)"}, "failureCondition": "result > 1"}
        ]
    },
}


def fm_body(version: str, *, rv: str, status: RolloutStatus, command: str | None = None):
    """The ForecastModel as the API server hands it over, with its rollout status."""
    annotations = {"forecastops.io/command": command} if command else {}
    fm = forecastmodel(
        "demand",
        {"model": {"uri": f"file:///m/{version}.onnx", "version": version}, "rollout": ROLLOUT},
        namespace="retail",
        uid=UID,
        generation=2,
        resourceVersion=rv,
        annotations=annotations,
    )
    return {**fm, "status": {"rollout": to_dict(status)}}


def deployment(name: str, revision: str, replicas: int) -> dict[str, Any]:
    """A Deployment the ForecastModel controls, its rollout over (as the index holds it)."""
    owner = {
        "apiVersion": "forecastops.io/v1alpha1",
        "kind": "ForecastModel",
        "name": "demand",
        "uid": UID,
        "controller": True,
    }
    body = deployment_body(
        revision, name=name, replicas=replicas, namespace="retail", ownerReferences=[owner]
    )
    return {"apiVersion": "apps/v1", **body}


class FakeKube:
    """Applies nothing anywhere; a status patch returns the object as the API would."""

    def __init__(self, body: dict[str, Any]) -> None:
        self.body = copy.deepcopy(body)
        self.patches: list[dict[str, Any]] = []

    async def apply(self, manifest):
        return manifest

    async def delete(self, kind, namespace, name):
        pass

    async def patch_status(self, ref, status):
        self.patches.append(status)
        rollout = self.body["status"].get("rollout", {})
        for key, value in (status.get("rollout") or {}).items():
            if value is None:
                rollout.pop(key, None)
            else:
                rollout[key] = value
        self.body["status"] = {**self.body["status"], **status, "rollout": rollout}
        version = int(self.body["metadata"]["resourceVersion"]) + 1
        self.body["metadata"]["resourceVersion"] = str(version)
        return copy.deepcopy(self.body)

    async def post_event(self, ref, event):
        pass

    async def read_capabilities(self):
        return Capabilities()


def test_given_bodies_when_compared_then_the_newest_resource_version_wins():
    old, new = {"metadata": {"resourceVersion": "9"}}, {"metadata": {"resourceVersion": "10"}}
    assert newest(old, new) is new and newest(new, old) is new
    assert newest(None, old) is old and newest() is None


def test_given_stale_index_when_next_pass_then_a_command_is_not_applied_twice():
    paused = RolloutStatus(
        phase=Phase.PAUSED,
        stable_revision="old",
        reason="PauseStep",
        route_weight=50,
        step_index=1,
    )
    candidate = revision_of(fm_body("v2", rv="5", status=paused))
    paused = replace(paused, candidate_revision=candidate)
    body = fm_body("v2", rv="5", status=paused, command="promote:1")
    children = [
        deployment("demand", "old", 2),
        deployment("demand-canary", candidate, 2),
    ]
    kube = FakeKube(body)
    ctl = Controller(
        OperatorSettings(),
        kube,  # type: ignore[arg-type]
        {KEY: [body]},  # the index never sees the status writes: as stale as it gets
        ({KEY: children},),
        NoMetrics(),
        ProviderFactory(prometheus_url=None),
    )

    async def two_passes() -> None:
        await ctl.reconcile_now(KEY)
        await ctl.reconcile_now(KEY)
        for timer in ctl._timers.values():
            timer.cancel()

    asyncio.run(two_passes())
    first, *rest = kube.patches
    assert first["rollout"]["stepIndex"] == 2, "promoted past the first pause"
    assert all("stepIndex" not in p.get("rollout", {}) for p in rest), "not promoted again"
    assert kube.body["status"]["rollout"]["stepIndex"] == 2


@pytest.mark.parametrize(
    ("first", "second", "kept"),
    [(5.0, 1.0, 1.0), (1.0, 5.0, 1.0), (2.0, 2.0, 2.0)],
    ids=["sooner-replaces", "later-is-ignored", "same"],
)
def test_given_requeues_when_scheduled_then_the_earliest_pass_is_kept(first, second, kept):
    ctl = Controller(
        OperatorSettings(),
        None,  # type: ignore[arg-type]
        {},
        (),
        NoMetrics(),
        ProviderFactory(prometheus_url=None),
    )

    async def schedule() -> float:
        loop = asyncio.get_running_loop()
        start = loop.time()
        ctl._requeue(KEY, first)
        ctl._requeue(KEY, second)
        due = ctl._timers[KEY].when() - start
        ctl._timers[KEY].cancel()
        return due

    assert asyncio.run(schedule()) == pytest.approx(kept, abs=0.05)
