"""When a child needs writing: missing, changed inputs, or edited by hand; never for defaults."""

from __future__ import annotations

import copy

import pytest
from forecastops.kube.names import ANNOTATION_INPUT_HASH
from forecastops.reconcile.drift import contains, needs_apply, with_input_hash

DESIRED = with_input_hash(
    {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "m", "namespace": "n", "labels": {"a": "1"}},
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "server",
                            "args": ["--port", "8000"],
                            "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                            "resources": {"requests": {"cpu": "0.5", "memory": "1024Mi"}},
                        }
                    ]
                }
            }
        },
    }
)


def observed(**changes):
    body = copy.deepcopy(DESIRED)
    container = body["spec"]["template"]["spec"]["containers"][0]
    container.update(changes)
    body["metadata"].update(uid="u", resourceVersion="5", generation=2)
    body["spec"]["replicas"] = 3  # the HPA's
    container["imagePullPolicy"] = "IfNotPresent"  # a default
    container["resources"]["requests"] = {"cpu": "500m", "memory": "1Gi"}  # normalised
    body["status"] = {"replicas": 3}
    return body


def test_missing_child_needs_writing():
    assert needs_apply(DESIRED, None)


def test_defaults_normalised_quantities_and_others_fields_are_not_drift():
    assert not needs_apply(DESIRED, observed())


def test_env_entries_match_by_name_whatever_their_order():
    env = [{"name": "B", "value": "2"}, {"name": "X", "value": "kept"}, {"name": "A", "value": "1"}]
    assert not needs_apply(DESIRED, observed(env=env))


@pytest.mark.parametrize(
    "changes",
    [
        {"env": [{"name": "A", "value": "1"}]},
        {"env": [{"name": "A", "value": "1"}, {"name": "B", "value": "changed"}]},
        {"args": ["--port", "9000"]},
        {"args": ["--port", "8000", "--debug"]},
    ],
    ids=["env-removed", "env-edited", "arg-edited", "arg-added"],
)
def test_hand_edits_are_drift(changes):
    assert needs_apply(DESIRED, observed(**changes))


def test_a_changed_input_hash_means_writing_even_when_fields_were_only_removed():
    body = observed()
    body["metadata"]["annotations"][ANNOTATION_INPUT_HASH] = "older"
    assert needs_apply(DESIRED, body)


def test_input_hash_annotation_is_the_hash_of_the_rest():
    bare = {"kind": "Service", "metadata": {"name": "m", "annotations": {"x": "y"}}}
    annotated = with_input_hash(bare)
    assert annotated["metadata"]["annotations"]["x"] == "y"
    assert len(annotated["metadata"]["annotations"][ANNOTATION_INPUT_HASH]) == 16
    assert "forecastops.io/input-hash" not in bare["metadata"]["annotations"]


@pytest.mark.parametrize(
    ("observed_value", "desired_value", "expected"),
    [
        ("1Gi", "1024Mi", True),
        ("500m", "0.5", True),
        (2, "2", True),
        ("1G", "1Gi", False),
        ("x", "y", False),
        ([1, 2], [1, 2], True),
        ([1, 2, 3], [1, 2], False),
        ({"a": 1, "b": 2}, {"a": 1}, True),
        ({"b": 2}, {"a": 1}, False),
        (None, {}, False),
        ({}, {}, True),
    ],
)
def test_contains(observed_value, desired_value, expected):
    assert contains(observed_value, desired_value) is expected
