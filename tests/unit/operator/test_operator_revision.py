"""Revisions: stable across runs and machines, and moved only by what shapes the pods."""

from __future__ import annotations

import copy

import pytest
from fmsamples import example
from forecastops.kube.revision import compute_revision, input_hash


def revision_of(parse, mutate=lambda spec: None) -> str:
    body = example("production")
    mutate(body["spec"])
    return compute_revision(parse(body).spec.pod)


def test_revision_of_the_production_example_is_stable(parse):
    # A changed value here means every running ForecastModel would roll out on upgrade.
    # The example as it was before spec.model.outputContract, spec.server.nodeSelector and
    # spec.server.tolerations existed: a field added later counts only when set
    # (spec.ADDED_LATER).
    body = example("production")
    del body["spec"]["model"]["outputContract"]
    for added_later in ("nodeSelector", "tolerations"):
        del body["spec"]["server"][added_later]
    assert compute_revision(parse(body).spec.pod) == "7a52e7ac7b"


def test_an_output_contract_is_part_of_the_revision(parse):
    body = example("production")
    looser = copy.deepcopy(body)
    looser["spec"]["model"]["outputContract"]["onViolation"] = "count"
    assert compute_revision(parse(looser).spec.pod) != compute_revision(parse(body).spec.pod)


def test_revision_ignores_the_order_of_fields(parse):
    body = example("production")
    reordered = copy.deepcopy(body)
    reordered["spec"]["model"] = dict(reversed(list(body["spec"]["model"].items())))
    reordered["spec"]["server"]["resources"]["requests"] = {"memory": "512Mi", "cpu": "500m"}
    assert compute_revision(parse(reordered).spec.pod) == compute_revision(parse(body).spec.pod)


@pytest.mark.parametrize(
    "change",
    [
        lambda s: s["model"].update(uri="s3://models/store-demand/v8/model.onnx"),
        lambda s: s["model"].update(sha256="0" * 64),
        lambda s: s["model"].update(version="v8"),
        lambda s: s["server"].update(image="ghcr.io/forecastops/forecast-server:0.2.0"),
        lambda s: s["server"]["resources"]["limits"].update(memory="2Gi"),
        lambda s: s["server"]["cache"].update(ttlSeconds=60),
        lambda s: s["server"].pop("auth"),
    ],
    ids=["uri", "sha256", "version", "image", "limits", "cache", "auth"],
)
def test_what_shapes_the_pods_makes_a_new_revision(parse, change):
    assert revision_of(parse, change) != revision_of(parse)


@pytest.mark.parametrize(
    "change",
    [
        lambda s: s["server"].update(replicas=7),
        lambda s: s["autoscaling"].update(maxReplicas=20),
        lambda s: s.pop("backup"),
        lambda s: s.pop("rollout"),
        lambda s: s["monitoring"]["serviceMonitor"].update(interval="1m"),
    ],
    ids=["replicas", "autoscaling", "backup", "rollout", "monitoring"],
)
def test_what_does_not_shape_the_pods_keeps_the_revision(parse, change):
    assert revision_of(parse, change) == revision_of(parse)


def test_input_hash_is_short_and_order_independent():
    assert input_hash({"a": 1, "b": [1, 2]}) == input_hash({"b": [1, 2], "a": 1})
    assert input_hash({"a": 1}) != input_hash({"a": 2})
    assert len(input_hash({})) == 16
