"""The example Argo CD Applications: the sync options that matter, and ignoreDifferences
entries that point at fields which exist."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples/argocd/application.yaml"
CRD = ROOT / "crds/forecastmodel.yaml"


def applications() -> dict[str, dict[str, Any]]:
    docs = [doc for doc in yaml.safe_load_all(EXAMPLE.read_text()) if doc]
    return {doc["metadata"]["name"]: doc for doc in docs}


def schema_at(schema: dict[str, Any], pointer: str) -> dict[str, Any]:
    """The OpenAPI schema of the field a JSON pointer (RFC 6901) names."""
    for token in pointer.lstrip("/").split("/"):
        key = token.replace("~1", "/").replace("~0", "~")
        schema = schema["properties"][key]
    return schema


def test_the_file_holds_the_operator_and_a_models_application() -> None:
    apps = applications()
    assert set(apps) == {"forecastops", "store-demand"}
    for app in apps.values():
        assert (app["apiVersion"], app["kind"]) == ("argoproj.io/v1alpha1", "Application")
        assert app["metadata"]["namespace"] == "argocd"
        assert app["spec"]["project"]
        assert {"repoURL", "targetRevision", "path"} <= set(app["spec"]["source"])
        assert {"server", "namespace"} <= set(app["spec"]["destination"])
    assert apps["forecastops"]["spec"]["source"]["path"] == "charts/forecastops"


@pytest.mark.parametrize("name", ["forecastops", "store-demand"])
def test_server_side_apply(name: str) -> None:
    options = applications()[name]["spec"]["syncPolicy"]["syncOptions"]
    assert "ServerSideApply=true" in options
    assert all(option.count("=") == 1 for option in options)


def test_replicas_set_by_autoscalers_are_ignored_in_diff_and_sync() -> None:
    spec = applications()["store-demand"]["spec"]
    ignored = {
        (entry["group"], entry["kind"], pointer)
        for entry in spec["ignoreDifferences"]
        for pointer in entry.get("jsonPointers", [])
    }
    assert ("apps", "Deployment", "/spec/replicas") in ignored
    assert ("forecastops.io", "ForecastModel", "/spec/server/replicas") in ignored
    # Without it ignoreDifferences applies to the comparison only, and a sync resets replicas.
    assert "RespectIgnoreDifferences=true" in spec["syncPolicy"]["syncOptions"]


def test_forecastmodel_pointers_name_crd_fields() -> None:
    crd = yaml.safe_load(CRD.read_text())
    group = crd["spec"]["group"]
    entries = [
        entry
        for entry in applications()["store-demand"]["spec"]["ignoreDifferences"]
        if entry["kind"] == crd["spec"]["names"]["kind"]
    ]
    assert entries and all(entry["group"] == group for entry in entries)
    for version in crd["spec"]["versions"]:
        schema = version["schema"]["openAPIV3Schema"]
        for entry in entries:
            for pointer in entry["jsonPointers"]:
                assert schema_at(schema, pointer)["type"] == "integer"
        # The ignored replicas are the ones the scale subresource writes.
        scale = version["subresources"]["scale"]["specReplicasPath"]
        assert "/" + scale.lstrip(".").replace(".", "/") == "/spec/server/replicas"
