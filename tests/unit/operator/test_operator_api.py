"""The resource's API: the CRD file, kinds and their paths, API errors, kopf's storage."""

from __future__ import annotations

from decimal import Decimal

import kopf
import pytest
import yaml
from fmsamples import REPO
from forecastops.cron import schedule_problem
from forecastops.kube.api import ApiError
from forecastops.kube.kinds import CHILD_KINDS, DEPLOYMENT, SERVICE, SERVICE_MONITOR
from forecastops.quantity import parse_quantity
from forecastops.reconcile.status import OWN_FIELDS
from forecastops.runtime.handlers import build_kopf_settings

CRD = yaml.safe_load((REPO / "crds" / "forecastmodel.yaml").read_text())
(VERSION,) = CRD["spec"]["versions"]
SCHEMA = VERSION["schema"]["openAPIV3Schema"]


def test_crd_names_and_subresources():
    names = CRD["spec"]["names"]
    assert (CRD["spec"]["group"], VERSION["name"]) == ("forecastops.io", "v1alpha1")
    assert names["shortNames"] == ["fm"] and names["categories"] == ["forecast"]
    assert VERSION["subresources"]["status"] == {}
    assert VERSION["subresources"]["scale"]["specReplicasPath"] == ".spec.server.replicas"


def test_printer_columns():
    columns = [c["name"] for c in VERSION["additionalPrinterColumns"] if "priority" not in c]
    assert columns == ["Phase", "Ready", "Version", "Canary weight", "Age"]


def test_status_schema_holds_every_field_the_operator_and_rollouts_write():
    status = SCHEMA["properties"]["status"]["properties"]
    rollout_fields = {"canaryRevision", "currentStepIndex", "canaryWeight", "lastAnalysis"}
    assert set(OWN_FIELDS) | rollout_fields <= set(status)
    conditions = status["conditions"]
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    assert set(conditions["items"]["required"]) == {
        "type",
        "status",
        "lastTransitionTime",
        "reason",
        "message",
    }


def test_every_cel_rule_has_a_message():
    def rules(node):
        if isinstance(node, dict):
            yield from node.get("x-kubernetes-validations", [])
            for value in node.values():
                yield from rules(value)
        elif isinstance(node, list):
            for value in node:
                yield from rules(value)

    found = list(rules(SCHEMA))
    assert len(found) >= 15
    assert all(rule.get("message") for rule in found)


def test_kopf_keeps_its_bookkeeping_in_annotations_that_pruning_never_touches():
    settings = build_kopf_settings()
    assert isinstance(settings.persistence.progress_storage, kopf.AnnotationsProgressStorage)
    assert isinstance(settings.persistence.diffbase_storage, kopf.AnnotationsDiffBaseStorage)
    assert settings.persistence.progress_storage.prefix == "forecastops.io"
    assert settings.persistence.diffbase_storage.prefix == "forecastops.io"


def test_paths_of_grouped_core_and_custom_kinds():
    assert DEPLOYMENT.object_path("ns", "a") == "/apis/apps/v1/namespaces/ns/deployments/a"
    assert SERVICE.object_path("ns", "a") == "/api/v1/namespaces/ns/services/a"
    assert SERVICE_MONITOR.group == "monitoring.coreos.com" and SERVICE_MONITOR.optional
    assert len({k.kind for k in CHILD_KINDS}) == 8


@pytest.mark.parametrize(
    ("status", "body", "transient", "terminating"),
    [
        (503, b'{"reason": "ServiceUnavailable", "message": "later"}', True, False),
        (429, b'{"reason": "TooManyRequests"}', True, False),
        (409, b'{"reason": "Conflict"}', True, False),
        (422, b'{"reason": "Invalid", "message": "spec.x: bad"}', False, False),
        (
            403,
            b'{"reason": "Forbidden", "details": {"causes": [{"reason": "NamespaceTerminating"}]}}',
            False,
            True,
        ),
        (403, b'{"reason": "Forbidden", "message": "User cannot patch"}', False, False),
        (502, b"<html>bad gateway</html>", True, False),
    ],
)
def test_api_errors_are_classified(status, body, transient, terminating):
    error = ApiError.from_response(status, body)
    assert error.transient is transient
    assert error.namespace_terminating is terminating


def test_unreachable_api_is_transient():
    assert ApiError(0, "Unreachable", "connection refused").transient


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("500m", Decimal("0.5")),
        ("1Gi", Decimal(2**30)),
        ("2e3", Decimal(2000)),
        ("1.5k", Decimal(1500)),
        (3, Decimal(3)),
    ],
)
def test_quantities(text, value):
    assert parse_quantity(text) == value


@pytest.mark.parametrize(
    "text", ["", "lots", "1Gb", "--1", "2K", "9 M", "1e3k", "NaN", "1_000", True]
)
def test_not_quantities(text):
    assert parse_quantity(text) is None


@pytest.mark.parametrize(
    ("schedule", "problem"),
    [
        ("0 2 * * *", None),
        ("*/15 8-18 * * mon-fri", None),
        ("0 0 1 jan,jul *", None),
        ("@hourly", None),
        ("0 2 * * 7", None),
        ("0 2 * *", "needs 5 fields"),
        ("60 * * * *", "minute field '60'"),
        ("* * 0 * *", "day of month field '0'"),
        ("* * * 13 *", "month field '13'"),
        ("* * * * 8", "day of week field '8'"),
        ("5-1 * * * *", "runs backwards"),
        ("*/0 * * * *", "step '0'"),
        ("@fortnightly", "unknown descriptor"),
    ],
)
def test_cron_schedules(schedule, problem):
    found = schedule_problem(schedule)
    assert (found is None) if problem is None else (problem in found)
