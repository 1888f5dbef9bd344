"""One pass of progressive delivery, from gathered objects to children (pure parts)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from forecastops.analysis.measurement import Verdict
from forecastops.kube.kinds import ChildKey
from forecastops.kube.names import LABEL_ROLE, Role
from forecastops.reconcile.delivery import KEEP, decide_delivery, prepare
from forecastops.reconcile.pipeline import measure_due, route
from forecastops.rollout.spec import parse_rollout
from forecastops.rollout.state import Phase, RolloutStatus, to_dict
from forecastops.traffic.router import Routes

from tests.unit.deployment_bodies import deployment_body

NOW = datetime(2025, 1, 1, 12, tzinfo=UTC)
CANARY = {
    "canary": {"steps": [{"setWeight": 20}, {"analysis": {"templates": ["error-rate"]}}]},
    "analysis": {
        "interval": "1s",
        "metrics": [
            {
                "name": "error-rate",
                "prometheus": {"query": 'x{revision="{{revision}}",ns="{{namespace}}"}'},
                "failureCondition": "result > 0.01",
            }
        ],
    },
}


def body(status: RolloutStatus | None = None, annotations: dict | None = None) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "demand",
            "namespace": "retail",
            "uid": "u1",
            "generation": 2,
            "annotations": annotations or {},
        },
        "spec": {"rollout": CANARY},
        "status": {"rollout": to_dict(status)} if status else {},
    }


def deployment(name: str, revision: str, replicas: int) -> dict[str, Any]:
    return deployment_body(revision, name=name, replicas=replicas)


STABLE = {ChildKey("Deployment", "demand"): deployment("demand", "aaa", 4)}


def test_given_new_revision_when_decided_then_stable_kept_canary_written_and_services_shared():
    spec = parse_rollout(CANARY)
    status = RolloutStatus(phase=Phase.HEALTHY, stable_revision="aaa")
    prep = prepare(body(status), spec, now=NOW)
    delivery = decide_delivery(prep, body(status), STABLE, revision="bbb", measurements={})
    assert delivery.status.phase is Phase.PROGRESSING
    assert delivery.stable_revision is None, "stable is not written during a rollout"
    assert ChildKey("Deployment", "demand") in delivery.kept()
    assert delivery.candidate_replicas(Role.CANARY) == 1
    assert delivery.candidate_replicas(Role.PREVIEW) is KEEP
    (service,) = delivery.services()
    assert service["spec"]["selector"][LABEL_ROLE] == "stable", "no traffic before pods are ready"
    assert delivery.requeue_after is not None
    assert [e.reason for e in delivery.events] == ["RolloutStarted"]


def test_given_healthy_when_decided_then_stable_written_and_leftover_canary_deleted():
    spec = parse_rollout(CANARY)
    status = RolloutStatus(phase=Phase.HEALTHY, stable_revision="aaa")
    children = {
        **STABLE,
        ChildKey("Deployment", "demand-canary"): deployment("demand-canary", "bbb", 1),
    }
    delivery = decide_delivery(
        prepare(body(status), spec, now=NOW),
        body(status),
        children,
        revision="aaa",
        measurements={},
    )
    assert delivery.stable_revision == "aaa"
    assert delivery.candidate_replicas(Role.CANARY) is None
    assert delivery.kept() == {ChildKey("Deployment", "demand-preview")}


def test_given_analysis_due_when_prepared_then_query_variables_name_the_candidate():
    spec = parse_rollout(CANARY)
    status = RolloutStatus(phase=Phase.HEALTHY, stable_revision="aaa")
    first = decide_delivery(
        prepare(body(status), spec, now=NOW), body(status), STABLE, revision="bbb", measurements={}
    )
    children = {
        **STABLE,
        ChildKey("Deployment", "demand-canary"): deployment("demand-canary", "bbb", 1),
    }
    later = NOW + timedelta(seconds=1)
    second = decide_delivery(
        prepare(body(first.status), spec, now=later),
        body(first.status),
        children,
        revision="bbb",
        measurements={},
    )
    assert second.status.step_index == 1 and second.status.runs
    prep = prepare(body(second.status), spec, now=later)
    assert [m.name for m in prep.due] == ["error-rate"]
    assert prep.variables["revision"] == "bbb" and prep.variables["namespace"] == "retail"

    class Factory:
        def provider_for(self, source):
            class Provider:
                def run_query(self, query):
                    assert query == 'x{revision="bbb",ns="retail"}'
                    return 0.5

                def is_online(self):
                    return True

            return Provider()

    measured = measure_due(prep, Factory())
    assert measured["error-rate"].verdict is Verdict.FAILED


def test_given_no_rollout_spec_when_prepared_then_nothing_due_and_plain_update():
    prep = prepare(body(), None, now=NOW)
    assert prep.due == () and prep.spec is None
    delivery = decide_delivery(prep, body(), STABLE, revision="bbb", measurements={})
    assert delivery.stable_revision == "bbb"
    assert "app.kubernetes.io/instance" in delivery.services()[0]["spec"]["selector"]
    assert LABEL_ROLE not in delivery.services()[0]["spec"]["selector"]


def test_given_status_when_written_then_rollout_object_and_summary_fields():
    spec = parse_rollout(CANARY)
    status = RolloutStatus(phase=Phase.HEALTHY, stable_revision="aaa")
    delivery = decide_delivery(
        prepare(body(status), spec, now=NOW), body(status), STABLE, revision="bbb", measurements={}
    )
    fields = delivery.status_fields()
    assert "phase" not in fields  # status.phase is decided by reconcile.status.phase_of
    assert fields["canaryRevision"] == "bbb"
    assert fields["rollout"]["candidateRevision"] == "bbb"


class Router:
    def __init__(self):
        self.calls: list[tuple[str, Any]] = []

    async def set_routes(self, target, routes):
        self.calls.append(("set", routes))

    async def finalize(self, target):
        self.calls.append(("finalize", None))


@pytest.mark.parametrize(
    ("phase", "call"),
    [
        (Phase.PROGRESSING, ("set", Routes(80, 20))),
        (Phase.PAUSED, ("set", Routes(80, 20))),
        (Phase.DEGRADED, ("set", Routes(80, 20))),
        (Phase.HEALTHY, ("finalize", None)),
        (Phase.ROLLED_BACK, ("finalize", None)),
    ],
)
def test_given_phase_when_routed_then_split_set_or_candidate_removed(phase, call):
    spec = parse_rollout(CANARY)
    status = RolloutStatus(phase=Phase.HEALTHY, stable_revision="aaa")
    delivery = decide_delivery(
        prepare(body(status), spec, now=NOW), body(status), STABLE, revision="aaa", measurements={}
    )
    delivery = delivery.__class__(
        delivery.spec,
        delivery.before,
        delivery.decision.__class__(RolloutStatus(phase=phase, route_weight=20)),
        delivery.target,
    )
    router = Router()
    asyncio.run(route(router, delivery))
    assert router.calls == [call]
