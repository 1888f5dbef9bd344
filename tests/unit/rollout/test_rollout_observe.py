"""Gathered objects → the state machine's `Observed` (pure)."""

from __future__ import annotations

import pytest
from forecastops.kube.kinds import ChildKey
from forecastops.rollout.observe import deployment_state, observe
from forecastops.rollout.observed import CommandKind, DeploymentState
from rollout_world import T0

from tests.unit.deployment_bodies import deployment_body as deployment


def fm(annotations=None):
    return {"metadata": {"name": "demand", "namespace": "retail", "annotations": annotations or {}}}


def test_given_stable_and_canary_when_observed_then_both_by_role_and_command_parsed():
    children = {
        ChildKey("Deployment", "demand"): deployment("aaa", replicas=4),
        ChildKey("Deployment", "demand-canary"): deployment(
            "bbb", name="demand-canary", replicas=1, available=0
        ),
        ChildKey("Service", "demand"): {"kind": "Service", "metadata": {"name": "demand"}},
    }
    observed = observe(
        fm({"forecastops.io/command": "promote:9"}), children, desired_revision="bbb", now=T0
    )
    assert observed.stable == DeploymentState("aaa", 4, 4, 4, 4, True)
    assert observed.canary == DeploymentState("bbb", 1, 0, 1, 1, True)
    assert observed.preview is None
    assert (observed.command.kind, observed.command.token) == (CommandKind.PROMOTE, "promote:9")
    assert (observed.desired_revision, observed.now) == ("bbb", T0)


@pytest.mark.parametrize(
    ("fields", "complete"),
    [
        ({}, True),
        ({"available": 1}, False),  # a pod not ready yet
        ({"updated": 1}, False),  # rolling update under way
        ({"total": 3}, False),  # an old pod still terminating
        ({"generation": 2, "observed": 1}, False),  # the controller has not seen the change
        ({"revision": "old"}, False),
    ],
    ids=["complete", "not-ready", "updating", "terminating", "unseen", "other-revision"],
)
def test_given_deployment_status_when_judged_then_complete_only_when_rollout_is_over(
    fields, complete
):
    revision = fields.pop("revision", "aaa")
    state = deployment_state(deployment(revision, **fields))
    assert state.complete_at("aaa") is complete


def test_given_deployment_being_deleted_when_observed_then_it_counts_as_gone():
    assert (
        deployment_state(
            deployment("bbb", name="demand-canary", deletionTimestamp="2025-01-01T00:00:00Z")
        )
        is None
    )


def test_given_new_deployment_without_status_when_observed_then_nothing_ready():
    state = deployment_state(
        {"metadata": {"generation": 1}, "spec": {"template": {"metadata": {}}}}
    )
    assert state == DeploymentState(None, 1, 0, 0, 0, False)
