"""decide_pass(): what one pass writes, given what it observed. No cluster, no kopf."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest
from fmsamples import MODEL, body_with, example
from forecastops.kube.kinds import OPTIONAL_KINDS, Capabilities, ChildKey
from forecastops.reconcile.decide import Plan, Snapshot, Verb, decide_pass, read_pass
from forecastops.reconcile.status import Failure

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
EVERYTHING = Capabilities(frozenset(OPTIONAL_KINDS))


def served(plan: Plan, observed: Snapshot, *, ready: bool = True) -> Snapshot:
    """What the cluster would show after `plan`: children written (with what the API
    server and the controllers add), deletions done, the status patched."""
    children = dict(observed.children)
    for write in plan.writes:
        if write.verb is Verb.DELETED:
            children.pop(write.key)
            continue
        child = copy.deepcopy(dict(write.manifest))
        child["metadata"].update(uid=f"uid-{write.key.name}", generation=1, resourceVersion="1")
        if child["kind"] == "Deployment":
            replicas = child["spec"].setdefault("replicas", 1)
            count = replicas if ready else 0
            child["status"] = {
                "observedGeneration": 1,
                "replicas": replicas,
                "updatedReplicas": replicas,
                "availableReplicas": count,
            }
        children[write.key] = child
    body = copy.deepcopy(dict(observed.body))
    body["status"] = merged(body.get("status") or {}, plan.status_patch)
    return Snapshot(body, children, observed.capabilities)


def merged(target: Any, patch: Any) -> Any:
    """RFC 7386, as the API server applies a merge patch: objects merge, null removes."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merged(result.get(key), value)
    return result


def first_pass(body: dict[str, Any], settings, capabilities=EVERYTHING) -> tuple[Plan, Snapshot]:
    observed = Snapshot(body, {}, capabilities)
    return decide_pass(read_pass(observed, settings, now=NOW)), observed


def test_a_new_forecastmodel_gets_every_child_created_service_first(settings):
    plan, _ = first_pass(example("production"), settings)
    assert [(w.verb, w.key.kind) for w in plan.writes] == [
        (Verb.CREATED, "NetworkPolicy"),
        (Verb.CREATED, "Service"),
        (Verb.CREATED, "Service"),  # <name>-metrics, which the ServiceMonitor scrapes
        (Verb.CREATED, "PodDisruptionBudget"),
        (Verb.CREATED, "Deployment"),
        (Verb.CREATED, "HorizontalPodAutoscaler"),
        (Verb.CREATED, "VerticalPodAutoscaler"),
        (Verb.CREATED, "ServiceMonitor"),
        (Verb.CREATED, "CronJob"),
    ]
    assert plan.status_patch["phase"] == "Pending"
    assert plan.status_patch["observedGeneration"] == 1
    assert [e.reason for e in plan.events].count("Created") == 9


def test_once_served_and_ready_a_pass_writes_nothing_at_all(settings):
    plan, observed = first_pass(example("production"), settings)
    observed = served(plan, observed)
    second = decide_pass(read_pass(observed, settings, now=NOW))
    assert second.writes == ()
    assert second.status_patch["phase"] == "Healthy"
    assert [e.reason for e in second.events] == ["Available"]
    third = decide_pass(read_pass(served(second, observed), settings, now=NOW))
    assert (third.writes, third.status_patch, third.events) == ((), {}, ())
    assert third.delivery is not None and third.delivery.requeue_after is None, "no timer"


def test_ready_waits_for_available_pods(settings):
    plan, observed = first_pass(example("minimal"), settings)
    pending = decide_pass(read_pass(served(plan, observed, ready=False), settings, now=NOW))
    assert pending.status_patch["phase"] == "Progressing"
    ready = next(c for c in pending.status_patch["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "RolloutInProgress")


def test_a_deleted_child_is_recreated_and_an_edited_one_updated(settings):
    plan, observed = first_pass(example("minimal"), settings)
    observed = served(plan, observed)
    children = dict(observed.children)
    del children[ChildKey("Service", "store-demand")]
    deployment = copy.deepcopy(children[ChildKey("Deployment", "store-demand")])
    deployment["spec"]["template"]["spec"]["containers"][0]["image"] = "evil:latest"
    children[ChildKey("Deployment", "store-demand")] = deployment
    repair = decide_pass(
        read_pass(Snapshot(observed.body, children, observed.capabilities), settings, now=NOW)
    )
    assert {(w.verb, w.key.kind) for w in repair.writes} == {
        (Verb.CREATED, "Service"),
        (Verb.UPDATED, "Deployment"),
    }


def test_a_changed_model_updates_the_deployment_to_a_new_revision(settings):
    plan, observed = first_pass(example("minimal"), settings)
    observed = served(plan, observed)
    body = copy.deepcopy(dict(observed.body))
    body["spec"]["model"]["version"] = "v2"
    body["metadata"]["generation"] = 2
    rolled = decide_pass(
        read_pass(Snapshot(body, observed.children, observed.capabilities), settings, now=NOW)
    )
    (write,) = [w for w in rolled.writes if w.key.kind == "Deployment"]
    assert write.verb is Verb.UPDATED
    new_revision = write.manifest["spec"]["template"]["metadata"]["labels"][
        "forecastops.io/revision"
    ]
    assert (
        new_revision
        == rolled.status_patch["currentRevision"]
        != observed.body["status"]["currentRevision"]
    )
    assert rolled.status_patch["phase"] == "Progressing"


def test_children_the_spec_no_longer_asks_for_are_deleted(settings):
    plan, observed = first_pass(example("production"), settings)
    observed = served(plan, observed)
    body = copy.deepcopy(dict(observed.body))
    for section in ("backup", "autoscaling"):
        body["spec"].pop(section)
    pruned = decide_pass(
        read_pass(Snapshot(body, observed.children, observed.capabilities), settings, now=NOW)
    )
    deleted = {w.key.kind for w in pruned.writes if w.verb is Verb.DELETED}
    assert deleted == {"CronJob", "HorizontalPodAutoscaler", "VerticalPodAutoscaler"}
    (deployment,) = [w for w in pruned.writes if w.key.kind == "Deployment"]
    assert deployment.manifest["spec"]["replicas"] == 3


def test_an_invalid_spec_writes_no_child_and_reports_why(settings):
    body = body_with({"model": MODEL, "backup": {"schedule": "61 * * * *", "destination": {}}})
    plan, _ = first_pass(body, settings)
    assert plan.writes == ()
    assert plan.status_patch["phase"] == "Degraded"
    degraded = next(c for c in plan.status_patch["conditions"] if c["type"] == "Degraded")
    assert degraded["reason"] == "InvalidSpec"
    assert "spec.backup.schedule: minute field '61'" in degraded["message"]
    assert "spec.backup.destination.s3: is required" in degraded["message"]
    assert [(e.type, e.reason) for e in plan.events] == [("Warning", "InvalidSpec")]


def test_an_invalid_spec_later_keeps_the_running_children_untouched(settings):
    plan, observed = first_pass(example("minimal"), settings)
    observed = served(plan, observed)
    body = copy.deepcopy(dict(observed.body))
    body["spec"]["model"].pop("sha256")
    broken = decide_pass(
        read_pass(Snapshot(body, observed.children, observed.capabilities), settings, now=NOW)
    )
    assert broken.writes == ()
    assert broken.status_patch["currentRevision"] is None


def test_missing_crds_skip_optional_children_and_say_so(settings):
    plan, _ = first_pass(example("production"), settings, capabilities=Capabilities())
    kinds = {w.key.kind for w in plan.writes}
    assert not kinds & {"VerticalPodAutoscaler", "ServiceMonitor"}
    reasons = {c["type"]: c["reason"] for c in plan.status_patch["conditions"]}
    assert reasons["VerticalPodAutoscaler"] == reasons["ServiceMonitor"] == "CRDNotInstalled"


def test_a_forecastmodel_being_deleted_is_left_to_the_garbage_collector(settings):
    body = example("minimal")
    body["metadata"]["deletionTimestamp"] = "2026-03-02T10:00:00Z"
    plan, _ = first_pass(body, settings)
    assert plan == Plan(plan.ref)


@pytest.mark.parametrize("reason", ["ApplyFailed", "Forbidden"])
def test_a_refused_write_is_reported_in_the_status(settings, reason):
    observed = Snapshot(example("minimal"), {}, EVERYTHING)
    plan = decide_pass(read_pass(observed, settings, now=NOW), Failure(reason, "422: no"))
    assert plan.writes == ()
    degraded = next(c for c in plan.status_patch["conditions"] if c["type"] == "Degraded")
    assert (degraded["status"], degraded["reason"], degraded["message"]) == (
        "True",
        reason,
        "422: no",
    )
