"""Blue-green end to end: a preview at full size, analysis before and after the switch,
the scale-down delay, and a switch back when the post-promotion analysis fails."""

from __future__ import annotations

import time

import pytest

from devenv.harness import forecastmodel, revision_of
from devenv.rollouts import METRICS, kwok_spec

pytestmark = [pytest.mark.cluster, pytest.mark.services, pytest.mark.slow]

NAME = "demand"
SCALE_DOWN_DELAY = 3


def blue_green(pre: str, post: str) -> dict:
    return {
        "strategy": "BlueGreen",
        "blueGreen": {
            "autoPromotion": True,
            "scaleDownDelaySeconds": SCALE_DOWN_DELAY,
            "prePromotionAnalysis": {"templates": [pre]},
            "postPromotionAnalysis": {"templates": [post]},
        },
        "analysis": {"interval": "1s", "failureLimit": 1, "count": 2, "metrics": METRICS},
    }


def active_role(kit) -> str:
    return kit.get("service", NAME)["spec"]["selector"].get("forecastops.io/role", "")


def stable_template_revision(kit) -> str:
    labels = kit.get("deployment", NAME)["spec"]["template"]["metadata"]["labels"]
    return labels["forecastops.io/revision"]


def given_stable_and_candidate(kit, servers, rollout: dict, **faults) -> tuple[dict, str, str]:
    v1, v2 = (
        forecastmodel(NAME, kwok_spec(v, rollout=rollout, replicas=3, salt=kit.namespace))
        for v in ("v1", "v2")
    )
    stable, candidate = revision_of(v1, kit.namespace), revision_of(v2, kit.namespace)
    servers.start(stable, model_name=NAME)
    servers.start(candidate, model_name=NAME, **faults)
    servers.wait_scraped(candidate)
    kit.apply(v1, check=True)
    kit.wait_rollout(NAME, lambda r: r.get("phase") == "Healthy", timeout=60, what="v1 Healthy")
    return v2, stable, candidate


def test_blue_green_previews_analyses_switches_and_scales_down_after_the_delay(
    kit, operator, servers
):
    v2, stable, candidate = given_stable_and_candidate(
        kit, servers, blue_green("error-rate", "latency-p95")
    )
    kit.apply(v2, check=True)

    preview = None
    while preview is None or preview["status"].get("readyReplicas", 0) < 3:
        preview = kit.get("deployment", f"{NAME}-preview")
        time.sleep(0.2)
    assert preview["spec"]["replicas"] == 3, "the preview runs at stable's full size"
    preview_service = kit.get("service", f"{NAME}-preview")
    assert preview_service["spec"]["selector"]["forecastops.io/role"] == "preview"

    switched_at = stable_updated_at = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        role, revision = active_role(kit), stable_template_revision(kit)
        now = time.monotonic()
        if switched_at is None:
            assert revision == stable, "stable changes only after the switch"
            if role == "preview":
                switched_at = now
        elif stable_updated_at is None and revision == candidate:
            stable_updated_at = now
        if kit.rollout(NAME).get("phase") == "Healthy" and stable_updated_at:
            break
        time.sleep(0.2)
    assert switched_at and stable_updated_at, kit.rollout(NAME)
    assert stable_updated_at - switched_at >= SCALE_DOWN_DELAY, (
        "the old revision stays for the delay"
    )

    fm = kit.fm(NAME)
    assert fm["status"]["stableRevision"] == candidate
    assert kit.get("deployment", f"{NAME}-preview") is None
    assert active_role(kit) == "stable"
    reasons = kit.reasons(NAME)
    assert reasons.count("AnalysisPassed") == 2, "pre- and post-promotion analysis"
    assert "ActiveSwitched" in reasons and "RolloutCompleted" in reasons


def test_failing_post_promotion_analysis_switches_back_to_stable(kit, operator, servers):
    v2, stable, candidate = given_stable_and_candidate(
        kit, servers, blue_green("error-rate", "latency-p95"), latency_ms=300
    )
    generation = kit.get("deployment", NAME)["metadata"]["generation"]
    kit.apply(v2, check=True)

    fm = kit.wait_rollout(
        NAME, lambda r: r.get("phase") == "RolledBack", timeout=60, what="the switch back"
    )
    rollout = fm["status"]["rollout"]
    assert rollout["reason"] == "AnalysisFailed"
    assert "post-promotion analysis" in rollout["message"] and "latency-p95" in rollout["message"]
    assert active_role(kit) == "stable", "the active Service selects stable again"
    assert stable_template_revision(kit) == stable
    assert kit.get("deployment", NAME)["metadata"]["generation"] == generation
    assert kit.get("deployment", f"{NAME}-preview")["spec"]["replicas"] == 0
    reasons = kit.reasons(NAME)
    assert reasons.index("ActiveSwitched") < reasons.index("AnalysisFailed")
    assert candidate != stable
