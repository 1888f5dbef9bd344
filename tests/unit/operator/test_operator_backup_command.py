"""The contract between the backup CronJob the operator builds and `forecastctl backup`.

The CronJob's command goes through the real command lines (forecastctl's, then the backup
one's), with the CronJob's environment (Secret references filled in with stand-ins), up
to the settings a backup starts from; only the backup itself is left out.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from typing import Any

import pytest
from fmsamples import REPO, example
from forecastops.backup import cli as backup_cli
from forecastops.backup.settings import BackupConfig, BackupSettings
from forecastops.builders.cronjob import build_backup_cronjob
from forecastops.cli import main as forecastctl

PREFIXES = ("FORECASTOPS_", "AWS_", "PREDICTION_")


def _container(fm_body: dict[str, Any], parse) -> dict[str, Any]:
    fm = parse(fm_body)
    cronjob = build_backup_cronjob(fm.ref, fm.spec.backup, fm.spec.pod, pod_uid=10001)
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    return container


def _environment(container: dict[str, Any]) -> dict[str, str]:
    """The container's variables as the kubelet would set them: a Secret's key stands in
    as an https URL (valid wherever a URL or a key is expected)."""
    values = {}
    for variable in container["env"]:
        if "value" in variable:
            values[variable["name"]] = variable["value"]
        else:
            ref = variable["valueFrom"]["secretKeyRef"]
            values[variable["name"]] = f"https://secret.example/{ref['name']}/{ref['key']}"
    return values


@pytest.fixture
def production_container(parse) -> dict[str, Any]:
    return _container(example("production"), parse)


def test_the_command_is_forecastctl_backup_backup_for_this_forecastmodel(production_container):
    assert production_container["command"] == [
        "forecastctl",
        "backup",
        "backup",
        "--name",
        "store-demand",
    ]
    assert "args" not in production_container


def test_forecastctl_is_the_console_script_of_forecastops_cli():
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["forecastctl"] == "forecastops.cli.main:main"


def test_the_real_command_lines_take_the_command_to_a_backup_of_the_right_things(
    production_container, monkeypatch
):
    for name in list(os.environ):
        if name.startswith(PREFIXES):
            monkeypatch.delenv(name)
    for name, value in _environment(production_container).items():
        monkeypatch.setenv(name, value)
    started: list[BackupConfig] = []

    def backup(args, reporter):  # what `_backup` does, up to running the backup
        started.append(backup_cli._settings(args).backup_config(prune=not args.no_prune))
        return 0

    monkeypatch.setattr(backup_cli, "_backup", backup)
    assert forecastctl.main(production_container["command"][1:]) == 0

    (config,) = started
    assert config.name == "store-demand" and config.prune and config.retention_days == 7
    assert (config.store.bucket, config.store.prefix) == ("backups", "retail/store-demand/")
    assert config.store.endpoint == "https://s3.eu-central-1.amazonaws.com"
    assert config.store.access_key_id.get_secret_value().endswith("/backup-store/AWS_ACCESS_KEY_ID")
    assert config.source.database_url.get_secret_value().endswith("/prediction-log/url")
    assert [(a.role, a.uri) for a in config.artifacts] == [
        ("stable", example("production")["spec"]["model"]["uri"])
    ]


def test_every_variable_the_cronjob_sets_is_one_the_backup_reads(production_container):
    read = set()
    for name, field in BackupSettings.model_fields.items():
        aliases = getattr(field.validation_alias, "choices", None) or ()
        read |= {a.upper() for a in aliases if isinstance(a, str)}
        read.add(f"FORECASTOPS_BACKUP_{name.upper()}")
    unread = {v["name"] for v in production_container["env"]} - read
    assert not unread, f"the backup never reads {sorted(unread)}"


def test_the_cronjob_gives_credentials_only_by_secret_reference(production_container):
    secret = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "FORECASTOPS_BACKUP_DATABASE_URL"}
    by_name = {v["name"]: v for v in production_container["env"]}
    for name in secret:
        assert "value" not in by_name[name] and by_name[name]["valueFrom"]["secretKeyRef"]


def test_the_installed_forecastctl_accepts_the_command_without_the_operator_extra(
    production_container,
):
    """In the server image there is no kopf: the command must parse without it."""
    block_kopf = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'kopf' or name.startswith('kopf.'):\n"
        "            raise ImportError('kopf is not in the server image')\n"
        "sys.meta_path.insert(0, Block())\n"
        "from forecastops.cli.main import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    argv = [*production_container["command"][1:], "--help"]
    done = subprocess.run(
        [sys.executable, "-c", block_kopf, *argv], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: forecastctl backup backup ")
