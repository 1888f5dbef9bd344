"""Configuration: read once from the environment (and flags), handed down as frozen values.

Environment (the backup CronJob sets these; flags of the same meaning override them):

| variable                                         | meaning                                   |
|--------------------------------------------------|-------------------------------------------|
| FORECASTOPS_BACKUP_NAME                          | the ForecastModel's name (key folder)     |
| FORECASTOPS_BACKUP_BUCKET / _PREFIX              | destination bucket and key prefix         |
| FORECASTOPS_BACKUP_ENDPOINT / _REGION            | S3-compatible endpoint URL, region        |
| AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY        | destination credentials (AWS_SESSION_TOKEN)|
| FORECASTOPS_BACKUP_DATABASE_URL                  | the prediction-log database               |
| FORECASTOPS_BACKUP_RETENTION_DAYS                | default 7                                 |
| FORECASTOPS_BACKUP_TABLES                        | default prediction_log,schema_migrations  |
| FORECASTOPS_BACKUP_STABLE_MODEL_URI / _SHA256    | the stable revision's model file          |
| FORECASTOPS_BACKUP_CANARY_MODEL_URI / _SHA256    | the canary revision's model file, if any  |
| FORECASTOPS_BACKUP_MODEL_S3_ENDPOINT / _REGION   | where s3:// models live (default: AWS)    |
| FORECASTOPS_BACKUP_MODEL_ACCESS_KEY_ID / _SECRET_ACCESS_KEY | model-store keys (default: AWS_*) |
| FORECASTOPS_RESTORE_TARGET_URL                   | restore: the database to restore into     |
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from forecastops.backup.errors import UsageError
from forecastops.backup.layout import parse_backup_id
from model_server.settings import Sha256

MiB = 1024 * 1024
_MODEL_SCHEMES = ("file", "s3", "https", "http")

CommaList = Annotated[tuple[str, ...], NoDecode]

# The prediction log's tables, as model_server.predlog creates them (TABLE and its
# migrations table). Partitions of a partitioned table are found and dumped with it.
PREDICTION_LOG_TABLES = ("prediction_log", "schema_migrations")


@dataclass(frozen=True)
class StoreConfig:
    """An S3-compatible bucket and the keys to it."""

    bucket: str
    prefix: str = ""
    endpoint: str | None = None
    region: str | None = None
    access_key_id: SecretStr | None = None
    secret_access_key: SecretStr | None = None
    session_token: SecretStr | None = None
    part_size: int = 16 * MiB
    max_parts_in_flight: int = 2
    max_bytes_per_second: int | None = None
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    max_attempts: int = 3

    @property
    def addressing_style(self) -> str:
        # S3-compatible servers (MinIO, SeaweedFS, Ceph) rarely serve virtual-host buckets.
        return "path" if self.endpoint else "auto"


@dataclass(frozen=True)
class ArtifactRef:
    """A model file to back up: `role` is stable or canary."""

    role: str
    uri: str
    sha256: str | None = None

    @property
    def scheme(self) -> str:
        return self.uri.partition("://")[0] if "://" in self.uri else ""


@dataclass(frozen=True)
class SourceConfig:
    """The prediction-log database and what of it to dump."""

    database_url: SecretStr
    tables: tuple[str, ...] = PREDICTION_LOG_TABLES
    compress_level: int = 6
    pg_bindir: Path | None = None


@dataclass(frozen=True)
class BackupConfig:
    name: str
    store: StoreConfig
    source: SourceConfig
    artifacts: tuple[ArtifactRef, ...] = ()
    model_store: StoreConfig | None = None
    retention_days: int = 7
    prune: bool = True


@dataclass(frozen=True)
class RestoreConfig:
    name: str
    store: StoreConfig
    target_url: SecretStr | None
    backup_id: str | None = None  # None: the newest complete backup
    verify_only: bool = False
    artifacts_dir: Path | None = None
    pg_bindir: Path | None = None
    privileges: bool = True  # False: pg_restore --no-privileges (the target lacks the roles)


class BackupSettings(BaseSettings):
    """Every setting, from ``FORECASTOPS_BACKUP_*`` and the standard variables above."""

    model_config = SettingsConfigDict(
        env_prefix="FORECASTOPS_BACKUP_", frozen=True, extra="ignore", populate_by_name=True
    )

    name: str | None = Field(None, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)
    bucket: str | None = Field(None, min_length=1, max_length=63)
    prefix: str = ""
    endpoint: str | None = Field(None, pattern=r"^https?://.+")
    region: str | None = None
    access_key_id: SecretStr | None = Field(
        None, validation_alias=AliasChoices("access_key_id", "AWS_ACCESS_KEY_ID")
    )
    secret_access_key: SecretStr | None = Field(
        None, validation_alias=AliasChoices("secret_access_key", "AWS_SECRET_ACCESS_KEY")
    )
    session_token: SecretStr | None = Field(
        None, validation_alias=AliasChoices("session_token", "AWS_SESSION_TOKEN")
    )
    database_url: SecretStr | None = Field(
        None, validation_alias=AliasChoices("database_url", "FORECASTOPS_BACKUP_DATABASE_URL")
    )
    target_url: SecretStr | None = Field(
        None, validation_alias=AliasChoices("target_url", "FORECASTOPS_RESTORE_TARGET_URL")
    )
    tables: CommaList = Field(PREDICTION_LOG_TABLES, min_length=1)
    retention_days: int = Field(7, ge=1, le=3650)
    compress_level: int = Field(6, ge=0, le=9)
    part_size_mib: int = Field(16, ge=5, le=5 * 1024)
    max_upload_bytes_per_second: int | None = Field(None, ge=1)
    pg_bindir: Path | None = None

    stable_model_uri: str | None = None
    stable_model_sha256: Sha256 = None
    canary_model_uri: str | None = None
    canary_model_sha256: Sha256 = None
    model_s3_endpoint: str | None = Field(None, pattern=r"^https?://.+")
    model_s3_region: str | None = None
    model_access_key_id: SecretStr | None = None
    model_secret_access_key: SecretStr | None = None

    @field_validator("tables", mode="before")
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("stable_model_uri", "canary_model_uri")
    @classmethod
    def _known_scheme(cls, value: str | None) -> str | None:
        if value and value.partition("://")[0] not in _MODEL_SCHEMES:
            raise ValueError(
                f"must start with one of {', '.join(s + '://' for s in _MODEL_SCHEMES)}"
            )
        return value

    @classmethod
    def env_name(cls, setting: str) -> str:
        """The environment variable the backup CronJob sets for `setting`.

        A field with aliases is read from its one upper-case alias (AWS_ACCESS_KEY_ID,
        ...); any other from the prefix plus its name. KeyError for no such setting.
        """
        field = cls.model_fields[setting]
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            return next(c for c in alias.choices if isinstance(c, str) and c.isupper())
        return f"{cls.model_config['env_prefix']}{setting.upper()}"

    # --- the values each command needs ---------------------------------------------------

    def store(self) -> StoreConfig:
        return StoreConfig(
            bucket=_required(self.bucket, "bucket", "--bucket or FORECASTOPS_BACKUP_BUCKET"),
            prefix=self.prefix,
            endpoint=self.endpoint,
            region=self.region,
            access_key_id=self.access_key_id,
            secret_access_key=self.secret_access_key,
            session_token=self.session_token,
            part_size=self.part_size_mib * MiB,
            max_bytes_per_second=self.max_upload_bytes_per_second,
        )

    def model_name(self) -> str:
        return _required(self.name, "name", "--name or FORECASTOPS_BACKUP_NAME")

    def backup_config(self, *, prune: bool = True) -> BackupConfig:
        name, store = self.model_name(), self.store()
        database_url = _required(
            self.database_url, "database URL", "--database-url or FORECASTOPS_BACKUP_DATABASE_URL"
        )
        return BackupConfig(
            name=name,
            store=store,
            source=SourceConfig(
                database_url=database_url,
                tables=self.tables,
                compress_level=self.compress_level,
                pg_bindir=self.pg_bindir,
            ),
            artifacts=self.artifacts(),
            model_store=self.model_store(),
            retention_days=self.retention_days,
            prune=prune,
        )

    def restore_config(
        self,
        *,
        backup_id: str | None,
        verify_only: bool,
        artifacts_dir: Path | None,
        privileges: bool = True,
    ) -> RestoreConfig:
        if backup_id not in (None, "latest") and parse_backup_id(backup_id) is None:
            raise UsageError(
                f"{backup_id!r} is not a backup id such as 20250131T020000Z, or 'latest'"
            )
        if not verify_only and self.target_url is None:
            raise UsageError(
                "restore needs a target database: --target-url or FORECASTOPS_RESTORE_TARGET_URL "
                "(or --verify-only to check the backup without restoring it)"
            )
        return RestoreConfig(
            name=self.model_name(),
            store=self.store(),
            target_url=self.target_url,
            backup_id=backup_id,
            verify_only=verify_only,
            artifacts_dir=artifacts_dir,
            pg_bindir=self.pg_bindir,
            privileges=privileges,
        )

    def artifacts(self) -> tuple[ArtifactRef, ...]:
        refs = []
        for role, uri, sha256 in (
            ("stable", self.stable_model_uri, self.stable_model_sha256),
            ("canary", self.canary_model_uri, self.canary_model_sha256),
        ):
            if uri:
                refs.append(ArtifactRef(role, uri, sha256))
            elif sha256:
                raise UsageError(f"a {role} model sha256 was given without its URI")
        return tuple(refs)

    def model_store(self) -> StoreConfig | None:
        """Where s3:// model files are read: their own endpoint and keys, else the AWS_* keys."""
        if not any(ref.scheme == "s3" for ref in self.artifacts()):
            return None
        return StoreConfig(
            bucket="",  # each model URI names its bucket
            endpoint=self.model_s3_endpoint,
            region=self.model_s3_region,
            access_key_id=self.model_access_key_id or self.access_key_id,
            secret_access_key=self.model_secret_access_key or self.secret_access_key,
            session_token=None if self.model_access_key_id else self.session_token,
        )


def load_settings(**overrides: Any) -> BackupSettings:
    """Settings from the environment, with `overrides` (flags that were given) on top."""
    given = {key: value for key, value in overrides.items() if value is not None}
    try:
        return BackupSettings(**given)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}" for error in exc.errors()
        )
        raise UsageError(f"invalid settings: {problems}") from None


def _required(value: Any, what: str, how: str) -> Any:
    if value is None or value == "":
        raise UsageError(f"missing {what}: set {how}")
    return value
