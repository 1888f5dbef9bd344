"""forecastctl: the status view and the command line."""

from __future__ import annotations

import sys
import types
from datetime import UTC, datetime

import pytest
from forecastops.cli.main import build_parser, main, render_status

NOW = datetime(2026, 3, 2, 10, 5, tzinfo=UTC)
FM = {
    "metadata": {"name": "store-demand", "namespace": "retail", "generation": 4},
    "spec": {"model": {"uri": "s3://models/v7/model.onnx", "version": "v7"}},
    "status": {
        "observedGeneration": 4,
        "phase": "Healthy",
        "currentRevision": "5d8f7c2a1b",
        "stableRevision": "5d8f7c2a1b",
        "version": "v7",
        "replicas": 3,
        "availableReplicas": 3,
        "endpoint": "http://store-demand.retail.svc:8000",
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "StableAvailable",
                "message": "3/3 replicas of revision 5d8f7c2a1b available",
                "lastTransitionTime": "2026-03-02T10:00:00Z",
            },
            {
                "type": "Degraded",
                "status": "False",
                "reason": "AsExpected",
                "message": "no problem found",
                "lastTransitionTime": "2026-03-01T08:00:00Z",
            },
        ],
    },
}


def test_status_view_reads_like_kubectl_describe():
    assert render_status(FM, now=NOW) == "\n".join(
        [
            "ForecastModel retail/store-demand",
            "  Phase:      Healthy",
            "  Model:      v7  s3://models/v7/model.onnx",
            "  Revision:   5d8f7c2a1b (stable 5d8f7c2a1b)",
            "  Serving:    version v7, 3/3 replicas available",
            "  Endpoint:   http://store-demand.retail.svc:8000",
            "  Conditions:",
            "    TYPE      STATUS  REASON           AGE  MESSAGE",
            "    Ready     True    StableAvailable  5m   3/3 replicas of revision 5d8f7c2a1b available",
            "    Degraded  False   AsExpected       1d   no problem found",
        ]
    )


def test_status_view_flags_a_status_from_an_older_generation_and_a_canary():
    fm = {**FM, "metadata": {**FM["metadata"], "generation": 5}}
    fm["status"] = {**FM["status"], "canaryRevision": "a41e02", "canaryWeight": 10}
    text = render_status(fm, now=NOW)
    assert "Phase:      Healthy (status is from generation 4)" in text
    assert "Canary:     revision a41e02, weight 10%" in text


def test_backup_arguments_pass_through_untouched(monkeypatch):
    seen = []
    module = types.ModuleType("forecastops.backup.cli")
    module.main = lambda argv: seen.append(argv) or 0
    monkeypatch.setitem(sys.modules, "forecastops.backup.cli", module)
    assert main(["backup", "--quiet", "backup", "--name", "store-demand"]) == 0
    assert seen == [["--quiet", "backup", "--name", "store-demand"]]


def test_training_is_not_a_forecastctl_command(capsys):
    """Training lives in model_training (forecast-train), not in the operator's CLI."""
    with pytest.raises(SystemExit):
        main(["train-sample", "--out", "x"])
    assert "invalid choice" in capsys.readouterr().err


def test_status_takes_the_usual_kubectl_flags():
    args = build_parser().parse_args(["status", "store-demand", "-n", "retail", "-o", "yaml"])
    assert (args.name, args.namespace, args.output) == ("store-demand", "retail", "yaml")


def test_a_command_whose_library_is_missing_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The server image has forecastctl for backups, without the Kubernetes client."""
    from forecastops.cli import main as cli

    def without_kubernetes(args: object) -> int:
        raise ModuleNotFoundError("No module named 'kubernetes'", name="kubernetes")

    monkeypatch.setattr(cli, "run_status", without_kubernetes)
    assert cli.main(["status", "store-demand"]) == 2
    assert "pip install 'forecastops[cli]'" in capsys.readouterr().err
