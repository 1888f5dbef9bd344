"""The operator's configuration: one value, built once at start-up and passed down."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from forecastops.spec import PullPolicy, Resources, ServerDefaults


class OperatorSettings(BaseSettings):
    """Read from `FORECASTOPS_*` environment variables (e.g. `FORECASTOPS_RESYNC_SECONDS`)."""

    model_config = SettingsConfigDict(env_prefix="FORECASTOPS_", frozen=True, extra="ignore")

    resync_seconds: float = Field(60.0, gt=0, description="Level-triggered check of every model.")
    server_image: str = Field(
        "ghcr.io/forecastops/forecast-server:0.1.0",
        description="The model-server image when spec.server.image is absent.",
    )
    image_pull_policy: PullPolicy = PullPolicy.IF_NOT_PRESENT
    default_cpu_request: str = "100m"
    default_memory_request: str = "256Mi"
    default_memory_limit: str = "1Gi"
    pod_uid: int = Field(10001, gt=0, description="UID and GID of the model-server processes.")
    retry_base_seconds: float = Field(2.0, gt=0)
    retry_max_seconds: float = Field(60.0, gt=0)
    retry_limit: int = Field(8, ge=1, description="Attempts before a failure is reported as such.")
    capability_ttl_seconds: float = Field(60.0, ge=0)
    api_timeout_seconds: float = Field(30.0, gt=0)
    max_parallel_resyncs: int = Field(8, ge=1)
    prometheus_url: str | None = Field(
        None, description="Prometheus for rollout analysis, unless a metric names its own."
    )
    analysis_timeout_seconds: float = Field(10.0, gt=0, description="One analysis query.")

    def retry_delay(self, retry: int) -> float:
        """Exponential backoff, capped: 2, 4, 8, ... up to retry_max_seconds."""
        return min(self.retry_max_seconds, self.retry_base_seconds * 2**retry)

    def server_defaults(self) -> ServerDefaults:
        return ServerDefaults(
            image=self.server_image,
            image_pull_policy=self.image_pull_policy,
            resources=Resources(
                requests={"cpu": self.default_cpu_request, "memory": self.default_memory_request},
                limits={"memory": self.default_memory_limit},
            ),
        )
