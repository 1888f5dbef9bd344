"""The operator SIGKILLed at random moments of canary rollouts: 20 rollouts, each cut at
least once, all end in the same state with no duplicate or orphaned children."""

from __future__ import annotations

import random
import threading
import time

import pytest

from devenv.harness import forecastmodel, revision_of, wait_for
from devenv.rollouts import METRICS, kwok_spec

pytestmark = [pytest.mark.cluster, pytest.mark.services, pytest.mark.slow]

RUNS = 20
TIME_LIMIT = 150.0
ROLLOUT = {
    "strategy": "Canary",
    "canary": {
        "steps": [
            {"setWeight": 50},
            {"pause": {"duration": "1s"}},
            {"analysis": {"templates": ["error-rate"]}},
            {"setWeight": 75},
            {"pause": {"duration": "1s"}},
        ]
    },
    "analysis": {"interval": "1s", "count": 2, "metrics": METRICS},
}


def names() -> list[str]:
    return [f"demand-{i:02d}" for i in range(RUNS)]


def test_operator_killed_at_random_moments_always_reaches_the_same_end_state(
    kit, operator, servers, record_property
):
    rng = random.Random(20)
    v1, v2 = (
        forecastmodel("x", kwok_spec(v, rollout=ROLLOUT, replicas=1, salt=kit.namespace))
        for v in ("v1", "v2")
    )
    stable, candidate = revision_of(v1, kit.namespace), revision_of(v2, kit.namespace)
    servers.start(stable, model_name="demand")
    servers.start(candidate, model_name="demand")
    servers.wait_scraped(candidate)
    for name in names():
        kit.apply({**v1, "metadata": {"name": name}}, check=True)

    def all_at(revision: str) -> bool:
        items = kit.list("forecastmodels.forecastops.io")
        return len(items) == RUNS and all(
            (i.get("status") or {}).get("rollout", {}).get("phase") == "Healthy"
            and i["status"]["rollout"].get("stableRevision") == revision
            for i in items
        )

    wait_for(lambda: all_at(stable), timeout=90, what="every v1 Healthy")

    started: dict[str, float] = {}

    def roll_out() -> None:
        for name in names():
            kit.apply({**v2, "metadata": {"name": name}}, check=True)
            started[name] = time.monotonic()
            time.sleep(rng.uniform(0.1, 0.6))

    applier = threading.Thread(target=roll_out)
    began = time.monotonic()
    applier.start()
    kills: list[float] = []
    while time.monotonic() - began < TIME_LIMIT:
        time.sleep(rng.uniform(0.5, 3.0))
        kills.append(time.monotonic())
        operator.kill()
        operator.start()
        if not applier.is_alive() and len(kills) >= RUNS and all_at(candidate):
            break
    applier.join()
    wait_for(lambda: all_at(candidate), timeout=60, what="every v2 promoted")

    finished = time.monotonic()
    cut = [n for n in names() if any(started[n] <= k <= finished for k in kills)]
    record_property("kills", len(kills))
    record_property("seconds", round(finished - began, 1))
    assert len(cut) == RUNS, "every rollout was interrupted at least once"
    assert len(kills) >= RUNS

    deployments = kit.list("deployments")
    assert sorted(d["metadata"]["name"] for d in deployments) == names(), "no canary left"
    for deployment in deployments:
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert labels["forecastops.io/revision"] == candidate
        owners = deployment["metadata"]["ownerReferences"]
        assert len(owners) == 1 and owners[0]["name"] == deployment["metadata"]["name"]
    services = kit.list("services")
    assert sorted(s["metadata"]["name"] for s in services) == names()
    assert all(s["spec"]["selector"]["forecastops.io/role"] == "stable" for s in services)
    assert not kit.list("replicasets", selector="forecastops.io/role=canary") or all(
        r["spec"]["replicas"] == 0
        for r in kit.list("replicasets", selector="forecastops.io/role=canary")
    )
    for item in kit.list("forecastmodels.forecastops.io"):
        assert item["status"]["phase"] == "Healthy"
        assert item["status"]["rollout"].get("abortedRevision") is None
