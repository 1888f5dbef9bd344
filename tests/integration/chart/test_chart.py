"""The Helm chart: lint, render, and install / test / upgrade / uninstall on the real
control plane."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from devenv.paths import REPO, bin_dir
from devenv.require import unavailable

CHART = REPO / "charts" / "forecastops"
PROMETHEUS_OPERATOR = (
    "--api-versions",
    "monitoring.coreos.com/v1/ServiceMonitor",
    "--api-versions",
    "monitoring.coreos.com/v1/PrometheusRule",
)


def helm(
    *args: str, kubeconfig: Path | None = None, check: bool = True
) -> subprocess.CompletedProcess:
    exe = bin_dir() / "helm"
    if not exe.exists():
        unavailable("helm", f"{exe} is missing (run `make binaries`)")
    extra = ["--kubeconfig", str(kubeconfig)] if kubeconfig else []
    result = subprocess.run(
        [str(exe), *args, *extra], capture_output=True, text=True, timeout=300, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def render(*args: str) -> list[dict]:
    out = helm("template", "t", str(CHART), "-n", "forecastops", *args).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def by_kind(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d["kind"] == kind]


def test_lint_strict_is_clean():
    result = helm("lint", "--strict", str(CHART))
    assert "0 chart(s) failed" in result.stdout


@pytest.mark.parametrize(
    ("setting", "complaint"),
    [
        ("logLevel=loud", "logLevel"),
        ("watchNamespaces[0]=Bad_Name", "watchNamespaces"),
        ("metrics.port=70000", "port"),
        ("analysis.prometheusUrl=prometheus:9090", "prometheusUrl"),
        ("replicas=2", "replicas"),  # not a value: kopf has no leader election
    ],
)
def test_values_schema_rejects_bad_values(setting, complaint):
    result = helm("lint", "--strict", str(CHART), "--set", setting, check=False)
    assert result.returncode != 0
    assert complaint in result.stdout + result.stderr


def test_crd_and_rbac_come_from_their_single_sources():
    shown = helm("show", "crds", str(CHART)).stdout
    assert yaml.safe_load(shown) == yaml.safe_load(
        (REPO / "crds" / "forecastmodel.yaml").read_text()
    )
    role = by_kind(render(), "ClusterRole")[0]
    source = yaml.safe_load((REPO / "deploy" / "rbac" / "operator-role.yaml").read_text())
    assert role["rules"] == source["rules"]


def test_operator_deployment_is_one_replica_recreate_and_restricted():
    deploy = by_kind(render(), "Deployment")[0]
    spec = deploy["spec"]
    assert spec["replicas"] == 1 and spec["strategy"] == {"type": "Recreate"}
    pod = spec["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    container = pod["containers"][0]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert "--all-namespaces" in container["args"]
    assert "FORECASTOPS_PROMETHEUS_URL" not in {e["name"] for e in container["env"]}
    url = "http://prometheus-operated.monitoring.svc:9090"
    with_url = by_kind(render("--set", f"analysis.prometheusUrl={url}"), "Deployment")[0]
    env = with_url["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {e["name"]: e["value"] for e in env}["FORECASTOPS_PROMETHEUS_URL"] == url


def test_watch_namespaces_bind_the_role_per_namespace_only():
    docs = render("--set", "watchNamespaces={team-a,team-b}")
    assert not by_kind(docs, "ClusterRoleBinding")
    bindings = by_kind(docs, "RoleBinding")
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["team-a", "team-b"]
    args = by_kind(docs, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--namespace=team-a" in args and "--namespace=team-b" in args


def test_monitoring_objects_only_where_the_prometheus_operator_is():
    plain = render("--set", "grafana.dashboard.enabled=true")
    assert not by_kind(plain, "ServiceMonitor") and not by_kind(plain, "PrometheusRule")
    docs = render(*PROMETHEUS_OPERATOR, "--set", "grafana.dashboard.enabled=true")
    monitor = by_kind(docs, "ServiceMonitor")[0]
    assert monitor["spec"]["endpoints"][0]["honorLabels"] is True
    rule = by_kind(docs, "PrometheusRule")[0]
    source = yaml.safe_load((REPO / "deploy" / "monitoring" / "prometheus-rules.yaml").read_text())
    assert rule["spec"]["groups"] == source["groups"]
    dashboard = by_kind(docs, "ConfigMap")[0]
    assert json.loads(dashboard["data"]["forecastops.json"]) == json.loads(
        (REPO / "deploy" / "monitoring" / "dashboard.json").read_text()
    )


@pytest.mark.cluster
@pytest.mark.slow
def test_install_test_upgrade_uninstall_on_the_real_control_plane(cluster, k8s_api, namespace):
    ext = client.ApiextensionsV1Api(k8s_api)
    apps = client.AppsV1Api(k8s_api)
    crd_name = "forecastmodels.forecastops.io"
    crd_existed = any(
        c.metadata.name == crd_name for c in ext.list_custom_resource_definition().items
    )
    release = "fops"
    kc = cluster.kubeconfig
    common = ("-n", namespace, "--set", "image.repository=example.invalid/forecast-operator")

    helm("install", release, str(CHART), *common, "--wait", "--timeout", "120s", kubeconfig=kc)
    deploy = apps.read_namespaced_deployment(f"{release}-forecastops", namespace)
    assert deploy.status.ready_replicas == 1
    crd = ext.read_custom_resource_definition(crd_name)
    established = {c.type: c.status for c in crd.status.conditions}
    assert established.get("Established") == "True"

    tested = helm("test", release, "-n", namespace, "--timeout", "120s", kubeconfig=kc)
    assert "Phase:          Succeeded" in tested.stdout

    helm(
        "upgrade", release, str(CHART), *common, "--set", "resyncSeconds=30",
        "--wait", "--timeout", "120s", kubeconfig=kc,
    )  # fmt: skip
    status = json.loads(
        helm("status", release, "-n", namespace, "-o", "json", kubeconfig=kc).stdout
    )
    assert status["version"] == 2 and status["info"]["status"] == "deployed"
    env = (
        apps.read_namespaced_deployment(f"{release}-forecastops", namespace)
        .spec.template.spec.containers[0]
        .env
    )
    assert {e.name: e.value for e in env}["FORECASTOPS_RESYNC_SECONDS"] == "30"

    helm("uninstall", release, "-n", namespace, "--wait", "--timeout", "120s", kubeconfig=kc)
    assert not apps.list_namespaced_deployment(namespace).items
    # Helm never deletes a chart's CRDs: every ForecastModel survives an uninstall.
    assert ext.read_custom_resource_definition(crd_name).metadata.name == crd_name
    if not crd_existed:
        assert crd.metadata.annotations is None or "helm.sh/resource-policy" not in (
            crd.metadata.annotations or {}
        )


@pytest.mark.parametrize(
    "values",
    [
        (),
        (
            "--set",
            "watchNamespaces={retail,ops}",
            "--set",
            "logLevel=debug",
            "--set",
            "analysis.prometheusUrl=http://prometheus.monitoring.svc:9090",
        ),
    ],
    ids=["defaults", "every-option"],
)
def test_the_operator_reads_what_the_chart_writes(values, monkeypatch):
    """The chart's operator container, read by the operator's own parser and settings:
    every flag parses, every FORECASTOPS_* variable is a setting and arrives typed."""
    from forecastops.runtime.config import OperatorSettings
    from forecastops.runtime.main import build_parser

    container = by_kind(render(*values), "Deployment")[0]["spec"]["template"]["spec"]["containers"][
        0
    ]
    args = build_parser().parse_args(container.get("args", []))
    prefix = OperatorSettings.model_config["env_prefix"]
    known = {prefix + name.upper(): name for name in OperatorSettings.model_fields}
    for name in [n for n in os.environ if n.startswith(prefix)]:
        monkeypatch.delenv(name)
    for variable in container["env"]:
        assert variable["name"] in known, f"the operator has no setting {variable['name']}"
        monkeypatch.setenv(variable["name"], variable["value"])
    settings = OperatorSettings()
    for variable in container["env"]:
        typed = getattr(settings, known[variable["name"]])
        assert str(typed) == variable["value"] or typed == type(typed)(variable["value"])
    if "watchNamespaces={retail,ops}" in values:
        assert args.namespaces == ["retail", "ops"]
        assert settings.prometheus_url == "http://prometheus.monitoring.svc:9090"
    else:
        assert args.all_namespaces and not args.namespaces
