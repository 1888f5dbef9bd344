"""Canary rollouts end to end: a healthy canary is promoted, a failing one is rolled back,
one without data pauses; exact weights through a Gateway API HTTPRoute."""

from __future__ import annotations

import time
from datetime import datetime

import pytest

from devenv.harness import forecastmodel, revision_of, wait_for
from devenv.rollouts import METRICS, kwok_spec

pytestmark = [pytest.mark.cluster, pytest.mark.services, pytest.mark.slow]

NAME = "demand"
FAILURE_LIMIT = 2
INTERVAL = 1.0


def canary(*steps: dict, **extra) -> dict:
    return {
        "strategy": "Canary",
        "canary": {
            "steps": list(steps)
            or [
                {"setWeight": 25},
                {"analysis": {"templates": ["error-rate"]}},
                {"setWeight": 50},
                {"pause": {"duration": "1s"}},
                {"analysis": {"templates": ["error-rate", "latency-p95"]}},
            ],
            **extra,
        },
        "analysis": {
            "interval": "1s",
            "failureLimit": FAILURE_LIMIT,
            "inconclusiveLimit": 3,
            "count": 2,
            "metrics": METRICS,
        },
    }


def deploy_stable(kit, servers, rollout: dict) -> tuple[dict, str]:
    """v1 deployed and Healthy (its server up and busy); returns its manifest and revision."""
    v1 = forecastmodel(NAME, kwok_spec("v1", rollout=rollout, salt=kit.namespace))
    stable = revision_of(v1, kit.namespace)
    servers.start(stable, model_name=NAME)
    kit.apply(v1, check=True)
    kit.wait_rollout(
        NAME,
        lambda r: r.get("phase") == "Healthy" and r.get("stableRevision") == stable,
        timeout=60,
        what="v1 Healthy",
    )
    return v1, stable


def given_candidate(kit, servers, rollout: dict, **faults) -> tuple[dict, str]:
    v2 = forecastmodel(NAME, kwok_spec("v2", rollout=rollout, salt=kit.namespace))
    candidate = revision_of(v2, kit.namespace)
    load = faults.pop("load", True)
    servers.start(candidate, model_name=NAME, load=load, **faults)
    if load:
        servers.wait_scraped(candidate)
    return v2, candidate


def test_healthy_canary_walks_every_step_and_is_promoted(kit, operator, servers):
    _, stable = deploy_stable(kit, servers, canary())
    v2, candidate = given_candidate(kit, servers, canary())

    kit.apply(v2, check=True)
    fm = kit.wait_rollout(
        NAME,
        lambda r: r.get("phase") == "Healthy" and r.get("stableRevision") == candidate,
        timeout=90,
        what="the canary promoted",
    )

    deployments = kit.deployments(NAME)
    assert list(deployments) == [NAME], "one stable Deployment remains, no canary"
    labels = deployments[NAME]["spec"]["template"]["metadata"]["labels"]
    assert labels["forecastops.io/revision"] == candidate
    service = kit.get("service", NAME)
    assert service["spec"]["selector"]["forecastops.io/role"] == "stable"
    assert fm["status"]["phase"] == "Healthy" and fm["status"]["canaryWeight"] == 0
    events = kit.events(NAME)
    reasons = [e["reason"] for e in events]
    for reason in (
        "RolloutStarted",
        "CanaryWeightSet",
        "AnalysisPassed",
        "Promoting",
        "RolloutCompleted",
    ):
        assert reason in reasons, reason
    started = " ".join(e["message"] for e in events if e["reason"] == "StepStarted")
    for step in range(2, 6):
        assert f"step {step}/5" in started, f"step {step} never started"
    assert reasons.count("CanaryWeightSet") == 2 and reasons.count("AnalysisPassed") == 2
    measured = [e for e in events if e["reason"] == "MetricSuccessful"]
    assert len(measured) >= 6
    history = kit.rollout(NAME)["history"]
    assert {h["metric"] for h in history} == {"error-rate", "latency-p95"}
    assert all(h["verdict"] == "Successful" for h in history)
    assert stable != candidate


def test_failing_canary_is_aborted_within_failure_limit_plus_one_intervals(kit, operator, servers):
    deploy_stable(kit, servers, canary())
    stable_generation = kit.get("deployment", NAME)["metadata"]["generation"]
    v2, candidate = given_candidate(kit, servers, canary(), error_rate=0.5)

    kit.apply(v2, check=True)
    kit.wait_rollout(NAME, lambda r: r.get("runs"), timeout=30, what="the analysis to start")
    analysis_started = time.monotonic()
    fm = kit.wait_rollout(
        NAME,
        lambda r: r.get("phase") in ("RolledBack", "Degraded"),
        timeout=30,
        what="the canary rolled back",
    )
    waited = time.monotonic() - analysis_started

    status, rollout = fm["status"], fm["status"]["rollout"]
    failed = [
        h for h in rollout["history"] if h["metric"] == "error-rate" and h["verdict"] == "Failed"
    ]
    assert len(failed) == FAILURE_LIMIT + 1, "aborted at the first measurement over the limit"
    first, last = (
        datetime.fromisoformat(h["time"].replace("Z", "+00:00")) for h in (failed[0], failed[-1])
    )
    assert (last - first).total_seconds() <= (FAILURE_LIMIT + 1) * INTERVAL
    assert waited <= (FAILURE_LIMIT + 1) * INTERVAL + 3, (
        f"seen after {waited:.1f}s: {rollout['history']}\n{kit.reasons(NAME)}\n"
        + "\n".join(operator.text().splitlines()[-40:])
    )
    assert status["phase"] == "RolledBack" and status["canaryWeight"] == 0
    assert rollout["reason"] == "AnalysisFailed"
    assert "error-rate" in rollout["message"] and "0." in rollout["message"]
    assert status["canaryRevision"] == candidate, "the rolled-back revision is named"

    canary_deployment = kit.get("deployment", f"{NAME}-canary")
    assert canary_deployment["spec"]["replicas"] == 0
    stable_deployment = kit.get("deployment", NAME)
    assert stable_deployment["metadata"]["generation"] == stable_generation, "stable untouched"
    assert kit.get("service", NAME)["spec"]["selector"]["forecastops.io/role"] == "stable"
    degraded = next(c for c in status["conditions"] if c["type"] == "Degraded")
    assert degraded["status"] == "True" and degraded["reason"] == "AnalysisFailed"
    aborted = [e for e in kit.events(NAME) if e["reason"] == "AnalysisFailed"]
    assert aborted and aborted[0]["type"] == "Warning" and "error-rate" in aborted[0]["message"]

    time.sleep(3)  # a GitOps re-sync of the same spec must not start it again
    kit.apply(v2, check=True)
    time.sleep(2)
    assert kit.rollout(NAME)["phase"] == "RolledBack"
    assert kit.reasons(NAME).count("RolloutStarted") == 1


def test_canary_without_data_pauses_as_inconclusive(kit, operator, servers):
    deploy_stable(kit, servers, canary())
    stable_generation = kit.get("deployment", NAME)["metadata"]["generation"]
    v2, _ = given_candidate(kit, servers, canary(), load=False)

    kit.apply(v2, check=True)
    fm = kit.wait_rollout(NAME, lambda r: r.get("phase") == "Paused", timeout=30, what="a pause")
    rollout = fm["status"]["rollout"]
    assert rollout["reason"] == "InconclusiveAnalysis"
    assert "no data" in rollout["message"] and "error-rate" in rollout["message"]
    time.sleep(4)  # left alone: neither promoted nor rolled back
    rollout = kit.rollout(NAME)
    assert rollout["phase"] == "Paused" and "abortedRevision" not in rollout
    assert kit.get("deployment", f"{NAME}-canary")["spec"]["replicas"] == 1
    assert kit.get("deployment", NAME)["metadata"]["generation"] == stable_generation
    progressing = next(c for c in fm["status"]["conditions"] if c["type"] == "Progressing")
    assert progressing["reason"] == "InconclusiveAnalysis"


def test_gateway_api_route_carries_exact_weights(kit, operator, servers):
    steps = [{"setWeight": 10}, {"pause": {}}]
    rollout = canary(*steps, trafficRouting={"gatewayAPI": {"httpRoute": NAME}})
    kit.apply(
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "HTTPRoute",
            "metadata": {"name": NAME},
            "spec": {
                "parentRefs": [{"name": "shared-gateway"}],
                "rules": [{"backendRefs": [{"name": NAME, "port": 8000}]}],
            },
        },
        check=True,
    )
    deploy_stable(kit, servers, rollout)
    v2, _ = given_candidate(kit, servers, rollout)

    kit.apply(v2, check=True)
    kit.wait_rollout(NAME, lambda r: r.get("phase") == "Paused", timeout=30, what="the pause")
    route = kit.get("httproute", NAME)
    assert route["spec"]["rules"][0]["backendRefs"] == [
        {"group": "", "kind": "Service", "name": NAME, "port": 8000, "weight": 90},
        {"group": "", "kind": "Service", "name": f"{NAME}-canary", "port": 8000, "weight": 10},
    ]
    assert kit.fm(NAME)["status"]["canaryWeight"] == 10
    assert (
        kit.get("service", f"{NAME}-canary")["spec"]["selector"]["forecastops.io/role"] == "canary"
    )

    kit.kubectl("annotate", "fm", NAME, "-n", kit.namespace, "forecastops.io/command=promote:e2e")
    kit.wait_rollout(NAME, lambda r: r.get("phase") == "Healthy", timeout=30, what="promotion")
    refs = wait_for(
        lambda: (
            (r := kit.get("httproute", NAME)["spec"]["rules"][0]["backendRefs"])
            and len(r) == 1
            and r
        ),
        timeout=10,
        what="the canary backendRef removed",
    )
    assert refs[0]["name"] == NAME and refs[0]["weight"] == 100
