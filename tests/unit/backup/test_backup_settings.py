"""Settings from the environment (as the CronJob sets them) and flags."""

from __future__ import annotations

import pytest
from forecastops.backup.errors import UsageError
from forecastops.backup.settings import (
    PREDICTION_LOG_TABLES,
    ArtifactRef,
    BackupSettings,
    MiB,
    load_settings,
)

SHA = "ab" * 32

CRONJOB_ENV = {
    "FORECASTOPS_BACKUP_NAME": "store-demand",
    "FORECASTOPS_BACKUP_BUCKET": "backups",
    "FORECASTOPS_BACKUP_PREFIX": "store-demand/",
    "FORECASTOPS_BACKUP_ENDPOINT": "https://s3.example",
    "FORECASTOPS_BACKUP_REGION": "eu-west-1",
    "AWS_ACCESS_KEY_ID": "AKID",
    "AWS_SECRET_ACCESS_KEY": "TOPSECRETVALUE",
    "FORECASTOPS_BACKUP_DATABASE_URL": "postgresql://app:DBPASSWORD@pg/predlog",
    "FORECASTOPS_BACKUP_RETENTION_DAYS": "14",
    "FORECASTOPS_BACKUP_STABLE_MODEL_URI": "s3://models/v7/model.onnx",
    "FORECASTOPS_BACKUP_STABLE_MODEL_SHA256": f"sha256:{SHA.upper()}",
}


@pytest.fixture
def cronjob_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in CRONJOB_ENV.items():
        monkeypatch.setenv(key, value)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith(("FORECASTOPS_", "AWS_", "PREDICTION_")):
            monkeypatch.delenv(key)


@pytest.mark.usefixtures("cronjob_env")
def test_the_cronjob_environment_makes_a_backup_config() -> None:
    config = load_settings().backup_config()
    assert config.name == "store-demand"
    assert (config.store.bucket, config.store.prefix) == ("backups", "store-demand/")
    assert (config.store.endpoint, config.store.region) == ("https://s3.example", "eu-west-1")
    assert config.store.addressing_style == "path"
    assert config.store.access_key_id is not None
    assert config.store.access_key_id.get_secret_value() == "AKID"
    assert config.source.database_url.get_secret_value() == "postgresql://app:DBPASSWORD@pg/predlog"
    assert config.source.tables == PREDICTION_LOG_TABLES
    assert config.retention_days == 14
    assert config.artifacts == (ArtifactRef("stable", "s3://models/v7/model.onnx", SHA),)
    # s3:// models are read with the same keys unless the model store has its own
    assert config.model_store is not None
    assert config.model_store.access_key_id == config.store.access_key_id
    assert config.store.part_size == 16 * MiB


@pytest.mark.usefixtures("cronjob_env")
def test_secrets_never_show_in_a_repr() -> None:
    text = repr(load_settings()) + repr(load_settings().backup_config())
    assert "TOPSECRETVALUE" not in text and "DBPASSWORD" not in text


@pytest.mark.usefixtures("cronjob_env")
def test_flags_override_the_environment() -> None:
    config = load_settings(
        bucket="other", retention_days=3, tables="a,b.c", name=None
    ).backup_config()
    assert (config.store.bucket, config.retention_days) == ("other", 3)
    assert config.source.tables == ("a", "b.c")
    assert config.name == "store-demand"  # None means "flag not given"


SHA = "ab" * 32
SAMPLES = {  # one valid value per setting, as text in the environment
    "name": "m", "bucket": "b", "prefix": "p/", "endpoint": "http://s3:1", "region": "r",
    "access_key_id": "k", "secret_access_key": "s", "session_token": "t",
    "database_url": "postgresql://x@y/z", "target_url": "postgresql://x@y/t", "tables": "t",
    "retention_days": "7", "compress_level": "5", "part_size_mib": "8",
    "max_upload_bytes_per_second": "100", "pg_bindir": "/usr/bin",
    "stable_model_uri": "s3://m/a.onnx", "stable_model_sha256": SHA,
    "canary_model_uri": "s3://m/b.onnx", "canary_model_sha256": SHA,
    "model_s3_endpoint": "http://models:9000", "model_s3_region": "r",
    "model_access_key_id": "mk", "model_secret_access_key": "ms",
}  # fmt: skip


def test_every_setting_has_a_sample() -> None:
    assert set(SAMPLES) == set(BackupSettings.model_fields)


@pytest.mark.parametrize("setting", sorted(SAMPLES))
def test_every_setting_is_read_from_the_variable_the_cronjob_sets(
    setting: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`env_name` is how the operator names the CronJob's variables: each must arrive."""
    monkeypatch.setenv(BackupSettings.env_name(setting), SAMPLES[setting])
    read = getattr(load_settings(), setting)
    if hasattr(read, "get_secret_value"):
        read = read.get_secret_value()
    assert (",".join(read) if isinstance(read, tuple) else str(read)) == SAMPLES[setting]


def test_the_server_s_variable_is_not_the_backup_s(monkeypatch: pytest.MonkeyPatch) -> None:
    """The backup's database is its own setting: a server variable in the pod is no source."""
    monkeypatch.setenv("PREDICTION_DATABASE_URL", "postgresql://x@y/z")
    with pytest.raises(UsageError, match="FORECASTOPS_BACKUP_DATABASE_URL"):
        load_settings(name="m", bucket="b").backup_config()


def test_model_store_keys_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "backup-key")
    monkeypatch.setenv("FORECASTOPS_BACKUP_MODEL_ACCESS_KEY_ID", "model-key")
    monkeypatch.setenv("FORECASTOPS_BACKUP_MODEL_S3_ENDPOINT", "http://models:9000")
    store = load_settings(stable_model_uri="s3://m/model.onnx").model_store()
    assert store is not None and store.access_key_id is not None
    assert (store.access_key_id.get_secret_value(), store.endpoint) == (
        "model-key",
        "http://models:9000",
    )
    assert load_settings(stable_model_uri="file:///m.onnx").model_store() is None


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"bucket": "b"}, "missing name"),
        ({"name": "m"}, "missing bucket"),
        ({"name": "m", "bucket": "b"}, "missing database URL"),
        ({"name": "Not_A_Name", "bucket": "b"}, "name"),
        ({"retention_days": 0}, "retention_days"),
        ({"compress_level": 10}, "compress_level"),
        ({"part_size_mib": 4}, "part_size_mib"),
        ({"endpoint": "s3.example"}, "endpoint"),
        ({"stable_model_sha256": "abc"}, "64 hexadecimal"),
        ({"stable_model_uri": "pvc://claim/model.onnx"}, "must start with one of"),
        (
            {
                "canary_model_sha256": SHA,
                "name": "m",
                "bucket": "b",
                "database_url": "postgresql://x/y",
            },
            "without its URI",
        ),
        ({"tables": ""}, "tables"),
    ],
)
def test_usage_errors(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        load_settings(**overrides).backup_config()


def test_restore_needs_a_target_unless_verifying(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings(name="m", bucket="b")
    with pytest.raises(UsageError, match="--target-url"):
        settings.restore_config(backup_id=None, verify_only=False, artifacts_dir=None)
    assert (
        settings.restore_config(backup_id=None, verify_only=True, artifacts_dir=None).target_url
        is None
    )
    monkeypatch.setenv("FORECASTOPS_RESTORE_TARGET_URL", "postgresql://t/db")
    config = load_settings(name="m", bucket="b").restore_config(
        backup_id="latest", verify_only=False, artifacts_dir=None
    )
    assert (
        config.target_url is not None
        and config.target_url.get_secret_value() == "postgresql://t/db"
    )
