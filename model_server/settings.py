"""Server configuration: one frozen value, built once in `main` and passed down.

Every field comes from the environment with the prefix ``PREDICTION_`` (for example
``PREDICTION_MODEL_URI``, ``PREDICTION_REVISION``); the command line overrides a few
(`main`). These fields are the server's contract with the operator: `model_server.contract`
names their variables and flags, and both sides import it. Secrets (API keys, the JWT
key, the Redis and PostgreSQL URLs, the model store's credentials) are `SecretStr`: they
never appear in a repr or a log line. Nothing here runs at import time.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal, Self
from urllib.parse import urlsplit, urlunsplit

from pydantic import BeforeValidator, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_REMOTE_SCHEMES = {"https", "http", "s3"}

CommaList = Annotated[list[str], NoDecode]


def normalise_sha256(value: Any) -> Any:
    """``SHA256:AB..`` and `` ab.. `` -> ``ab..``; an empty text is None; else 64 hex digits."""
    if isinstance(value, str):
        value = value.strip().lower().removeprefix("sha256:") or None
        if value is not None and not _SHA256.match(value):
            raise ValueError("must be 64 hexadecimal characters")
    return value


Sha256 = Annotated[str | None, BeforeValidator(normalise_sha256)]
"""A model file's sha256 in a setting (the backup's settings use it too)."""


class ServerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PREDICTION_", frozen=True, extra="ignore")

    # --- the model -----------------------------------------------------------------
    model_uri: str = Field(  # may carry credentials or a presigned query: not in repr
        description="file://, https:// or s3:// location of model.onnx", repr=False
    )
    model_name: str = Field("forecast", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
    model_sha256: Sha256 = Field(
        None, description="hex sha256 of the model file; required unless file://"
    )
    model_version: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$",
        max_length=63,
        description="the version served and reported (default: the model file's own)",
    )
    revision: str = Field("local", description="rollout revision label (set by the operator)")
    model_dir: Path | None = Field(None, description="download directory (default: a temp dir)")
    download_timeout_seconds: float = Field(30.0, gt=0)
    s3_endpoint_url: str | None = Field(None, description="any S3-compatible endpoint")
    s3_region: str | None = None
    s3_access_key_id: SecretStr | None = Field(
        None, description="the model store's key (default: boto3's own chain, e.g. AWS_*)"
    )
    s3_secret_access_key: SecretStr | None = None
    model_authorization: SecretStr | None = Field(
        None, description="Authorization header sent with an https:// model download"
    )

    # --- serving ---------------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    workers: int = Field(1, ge=1, description="server processes; 1 per pod is the default")
    intra_op_threads: int | None = Field(
        None,
        ge=1,
        description="ONNX Runtime threads per process (default: cores // (2 x workers), >= 1)",
    )
    offload_min_rows: int = Field(
        64, ge=1, description="batches of this many rows or more predict in a worker thread"
    )
    max_batch_rows: int = Field(10_000, ge=1)
    max_body_bytes: int = Field(8 * 1024 * 1024, ge=1024)
    access_log: bool = False
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    # --- the output contract (model_server.output_contract) -----------------------------
    output_non_negative: bool = Field(False, description="a forecast below 0 is a violation")
    output_max_abs_value: float | None = Field(
        None, gt=0, description="a forecast above this in absolute value is a violation"
    )
    output_on_violation: Literal["count", "reject", "clamp"] = "count"

    # --- authentication (either is enough when both are set; neither means open) -----
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list, description="comma-separated keys accepted in X-API-Key"
    )
    jwt_key: SecretStr | None = Field(None, description="HMAC secret or PEM public key")
    jwt_algorithms: CommaList = Field(default_factory=lambda: ["RS256"])
    jwt_audience: str | None = None
    jwt_issuer: str | None = None

    # --- Redis cache (off unless redis_url is set) -------------------------------------
    redis_url: SecretStr | None = None
    cache_ttl_seconds: int = Field(300, ge=1)
    cache_timeout_ms: float = Field(50.0, gt=0)

    # --- prediction log in PostgreSQL (off unless database_url is set) ---------------
    database_url: SecretStr | None = None
    predlog_buffer_rows: int = Field(50_000, ge=1)
    predlog_batch_rows: int = Field(2_000, ge=1)
    predlog_flush_seconds: float = Field(1.0, gt=0)
    predlog_retention_days: int = Field(30, ge=1)
    predlog_store_features: bool = False

    # --- fault injection, for rollout tests only --------------------------------------
    fault_error_rate: float = Field(0.0, ge=0.0, le=1.0)
    fault_latency_ms: float = Field(0.0, ge=0.0)

    @field_validator("api_keys", "jwt_algorithms", mode="before")
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("jwt_algorithms")
    @classmethod
    def _no_none_algorithm(cls, value: list[str]) -> list[str]:
        if not value or any(alg.lower() == "none" for alg in value):
            raise ValueError("list one or more signing algorithms; 'none' is not allowed")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.model_scheme not in {"file", *_REMOTE_SCHEMES}:
            raise ValueError(f"model_uri: unsupported scheme {self.model_scheme!r}")
        if self.model_scheme in _REMOTE_SCHEMES and not self.model_sha256:
            raise ValueError(
                f"model_sha256 is required for {self.model_scheme}:// models "
                "(PREDICTION_MODEL_SHA256)"
            )
        if self.jwt_key is not None and not self.jwt_audience:
            raise ValueError("jwt_audience is required when jwt_key is set (aud is checked)")
        if (self.s3_access_key_id is None) != (self.s3_secret_access_key is None):
            raise ValueError("s3_access_key_id and s3_secret_access_key go together: set both")
        if self.model_authorization is not None and self.model_scheme != "https":
            raise ValueError(
                "model_authorization is sent only over https: the model_uri is "
                f"{self.model_scheme}://"
            )
        return self

    @property
    def model_scheme(self) -> str:
        return urlsplit(self.model_uri).scheme or "file"

    def public_summary(self) -> dict[str, Any]:
        """The settings as safe to log: secrets show as set or unset, URIs lose credentials."""
        out: dict[str, Any] = {}
        for name, value in self:
            if isinstance(value, SecretStr) or (name == "api_keys" and value):
                out[name] = "<set>"
            elif name == "model_uri":
                out[name] = redact_uri(value)
            elif value not in (None, [], ""):
                out[name] = value
        return out


def redact_uri(uri: str) -> str:
    """`uri` without user info and query (which may carry tokens or a presigned signature)."""
    parts = urlsplit(uri)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
