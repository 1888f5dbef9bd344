"""Reading a ForecastModel: defaults, and every problem named by its field."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from fmsamples import MODEL, REPO, UID, body_with, example
from forecastops.spec import InvalidSpec, PullPolicy, Scheme, VpaUpdateMode

BACKUP = {"schedule": "0 2 * * *", "destination": {"s3": {"bucket": "b", "credentialsSecret": "s"}}}


def test_minimal_example_gets_the_operators_defaults(parse):
    fm = parse(example("minimal"))
    server = fm.spec.pod.server
    assert server.image == "ghcr.io/forecastops/forecast-server:0.1.0"
    assert server.image_pull_policy is PullPolicy.IF_NOT_PRESENT
    assert server.resources.requests == {"cpu": "100m", "memory": "256Mi"}
    assert fm.spec.replicas == 1 and fm.spec.autoscaling is None and fm.spec.backup is None
    assert fm.spec.service_monitor.enabled and fm.spec.network_policy.enabled
    assert fm.spec.pod.model.scheme is Scheme.HTTPS


def test_production_example_reads_every_section(parse):
    spec = parse(example("production")).spec
    assert spec.autoscaling.min_replicas == 3 and spec.autoscaling.max_replicas == 10
    assert spec.autoscaling.vpa_update_mode is VpaUpdateMode.OFF
    assert spec.pod.server.cache.ttl_seconds == 300
    assert spec.pod.server.prediction_log.retention_days == 30
    assert spec.backup.time_zone == "Europe/Berlin" and spec.backup.retention_days == 7
    assert spec.service_monitor.labels == {"release": "prometheus"}
    assert len(spec.network_policy.ingress_from) == 2


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ({}, "spec.model: is required"),
        ({"model": {"uri": "s3://b/k"}}, "spec.model.version: is required"),
        ({"model": {**MODEL, "uri": "ftp://x/y"}}, "spec.model.uri: must be s3://<bucket>/<key>"),
        (
            {"model": {**MODEL, "sha256": None}},
            "spec.model.sha256: is required unless the uri is file://",
        ),
        ({"model": {**MODEL, "sha256": "ABC"}}, "spec.model.sha256: must be 64 lowercase hex"),
        ({"model": {**MODEL, "version": "-v7"}}, "spec.model.version: must be a label value"),
        (
            {"model": {"uri": "file:///m.onnx", "version": "1", "credentialsSecret": "s"}},
            "spec.model.credentialsSecret: applies only to s3:// and https://",
        ),
        (
            {"model": MODEL, "server": {"replicas": 0}},
            "spec.server.replicas: must be an integer from 1",
        ),
        (
            {"model": MODEL, "server": {"imagePullPolicy": "Sometimes"}},
            "spec.server.imagePullPolicy: must be one of",
        ),
        (
            {"model": MODEL, "server": {"resources": {"requests": {"cpu": "lots"}}}},
            "spec.server.resources.requests.cpu: 'lots' is not a quantity",
        ),
        (
            {
                "model": MODEL,
                "server": {
                    "resources": {"requests": {"memory": "2Gi"}, "limits": {"memory": "1Gi"}}
                },
            },
            "spec.server.resources.requests.memory: 2Gi is more than its limit 1Gi",
        ),
        (
            {"model": MODEL, "server": {"auth": {}}},
            "spec.server.auth: needs apiKeySecret, jwt or both",
        ),
        (
            {"model": MODEL, "server": {"auth": {"apiKeySecret": {"name": "k"}}}},
            "spec.server.auth.apiKeySecret.key: is required",
        ),
        (
            {"model": MODEL, "server": {"cache": {}}},
            "spec.server.cache.redisUrlSecret: is required",
        ),
        ({"model": MODEL, "autoscaling": {}}, "spec.autoscaling.maxReplicas: is required"),
        (
            {"model": MODEL, "autoscaling": {"minReplicas": 4, "maxReplicas": 2}},
            "spec.autoscaling.minReplicas: 4 is more than maxReplicas 2",
        ),
        (
            {"model": MODEL, "autoscaling": {"maxReplicas": 2, "vpa": {"updateMode": "Auto"}}},
            "spec.autoscaling.vpa.updateMode: must be Off or Initial",
        ),
        (
            {"model": MODEL, "backup": {**BACKUP, "schedule": "0 2 * *"}},
            "spec.backup.schedule: needs 5 fields",
        ),
        (
            {"model": MODEL, "backup": {**BACKUP, "schedule": "@sometimes"}},
            "spec.backup.schedule: unknown descriptor",
        ),
        (
            {"model": MODEL, "backup": {**BACKUP, "schedule": "0 25 * * *"}},
            "spec.backup.schedule: hour field '25': '25' is not within 0-23",
        ),
        (
            {"model": MODEL, "backup": {**BACKUP, "schedule": "TZ=UTC 0 2 * * *"}},
            "spec.backup.schedule: time zones go in spec.backup.timeZone",
        ),
        (
            {"model": MODEL, "backup": {**BACKUP, "timeZone": "Nowhere/City"}},
            "spec.backup.timeZone: 'Nowhere/City' is not",
        ),
        (
            {"model": MODEL, "backup": {"schedule": "0 2 * * *"}},
            "spec.backup.destination: is required",
        ),
        (
            {"model": MODEL, "backup": {**BACKUP, "destination": {"s3": {"bucket": "b"}}}},
            "spec.backup.destination.s3.credentialsSecret: is required",
        ),
        (
            {"model": MODEL, "monitoring": {"serviceMonitor": {"interval": "soon"}}},
            "spec.monitoring.serviceMonitor.interval: e.g. 30s",
        ),
        (
            {"model": MODEL, "networkPolicy": {"ingressFrom": "everyone"}},
            "spec.networkPolicy.ingressFrom: must be a list",
        ),
    ],
)
def test_each_problem_names_its_field(parse, spec, problem):
    with pytest.raises(InvalidSpec) as raised:
        parse(body_with(spec))
    assert any(p.startswith(problem) for p in raised.value.problems), raised.value.problems


def test_all_problems_are_reported_at_once(parse):
    spec = {"model": {"uri": "s3://b/k"}, "autoscaling": {"minReplicas": 3, "maxReplicas": 1}}
    with pytest.raises(InvalidSpec) as raised:
        parse(body_with(spec))
    assert len(raised.value.problems) == 3
    assert str(raised.value) == "; ".join(raised.value.problems)


def test_a_name_too_long_for_the_children_is_refused(parse):
    with pytest.raises(InvalidSpec, match=r"metadata\.name: must be at most 45 characters"):
        parse(body_with({"model": MODEL}, name="x" * 46))


def test_a_spec_that_is_not_an_object_is_refused(parse):
    with pytest.raises(InvalidSpec, match="spec: must be an object"):
        parse({"metadata": {"name": "a", "namespace": "n", "uid": UID}, "spec": "model: x"})


OPERATOR_CAUGHT = [
    path
    for path in sorted((REPO / "examples" / "invalid").glob("*.yaml"))
    if "# rejected-by: operator" in path.read_text()
]


@pytest.mark.parametrize("path", OPERATOR_CAUGHT, ids=lambda p: p.stem)
def test_invalid_examples_that_pass_cel_fail_here_with_their_message(parse, path: Path):
    """The others are refused by the API server: see the integration tests."""
    text = path.read_text()
    message = re.search(r"^# error: (.+)$", text, re.M).group(1)
    body = yaml.safe_load(text)
    body["metadata"].update(namespace="retail", uid=UID)
    with pytest.raises(InvalidSpec) as raised:
        parse(body)
    assert message in raised.value.problems
