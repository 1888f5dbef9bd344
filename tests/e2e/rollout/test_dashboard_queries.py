"""Every query of the Grafana dashboard, evaluated against a real Prometheus scraping
real model servers (with a Redis cache) and the real operator after a real rollout."""

from __future__ import annotations

import json
import re
import shutil

import pytest
from test_canary import NAME, canary, deploy_stable, given_candidate

from devenv.harness import OPERATOR_GROUPS, OPERATOR_USER, wait_for
from devenv.paths import REPO, free_port
from devenv.rollouts import Operator

pytestmark = [pytest.mark.cluster, pytest.mark.services, pytest.mark.slow]

DASHBOARD = REPO / "deploy" / "monitoring" / "dashboard.json"
# Panels about backups show data only once a backup has run or failed; the backup
# integration tests cover those series. Here they must evaluate without error.
NEEDS_A_BACKUP = {"Since the last successful backup", "Last backup"}


def panel_queries() -> list[tuple[str, str]]:
    def walk(panels):
        for panel in panels:
            yield panel
            yield from walk(panel.get("panels", []))

    dashboard = json.loads(DASHBOARD.read_text())
    return [
        (panel["title"], target["expr"])
        for panel in walk(dashboard["panels"])
        for target in panel.get("targets", [])
        if target.get("expr")
    ]


def concrete(expr: str) -> str:
    """The query as Grafana sends it, with every variable set to "All"."""
    expr = expr.replace("$__rate_interval", "30s").replace("$__range", "10m")
    return re.sub(r"\$\{?(namespace|model)\}?", ".*", expr)


def test_every_dashboard_query_returns_data(
    cluster, installed, namespace, kit, servers, prometheus, redis_server, tmp_path
):
    kubeconfig = tmp_path / "operator.kubeconfig"
    shutil.copy(cluster.kubeconfig_for_user(OPERATOR_USER, OPERATOR_GROUPS), kubeconfig)
    port = free_port()
    operator = Operator(
        kubeconfig,
        namespace,
        prometheus.url,
        tmp_path / "operator.log",
        args=(f"--metrics-port={port}", "--metrics-address=127.0.0.1"),
    )
    operator.start()
    prometheus.set_targets("forecastops-operator", [f"127.0.0.1:{port}"])
    try:
        cache = {"PREDICTION_REDIS_URL": redis_server.url}
        original_start = servers.start
        servers.start = lambda revision, **kw: original_start(revision, env=cache, **kw)
        deploy_stable(kit, servers, canary())
        v2, _ = given_candidate(kit, servers, canary(), error_rate=0.5)
        kit.apply(v2, check=True)
        kit.wait_rollout(
            NAME, lambda r: r.get("phase") == "RolledBack", timeout=60, what="rollback"
        )

        for title, expr in panel_queries():
            query = concrete(expr)
            if title in NEEDS_A_BACKUP:
                assert prometheus.query(query)["resultType"] == "vector", title
                continue
            result = wait_for(
                lambda q=query: prometheus.query(q)["result"],
                timeout=30,
                what=f"data for the panel {title!r}: {query}",
                every=1,
            )
            assert result, title
    finally:
        prometheus.set_targets("forecastops-operator", [])
        operator.stop()
