"""Names and labels of everything the operator creates, from one place."""

from __future__ import annotations

from enum import StrEnum

GROUP = "forecastops.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "ForecastModel"
PLURAL = "forecastmodels"

FIELD_MANAGER = "forecastops"
"""The one server-side-apply field manager of every write the operator makes."""

MANAGED_BY = "forecastops"
APP_NAME = "forecast-server"

LABEL_NAME = "app.kubernetes.io/name"
LABEL_INSTANCE = "app.kubernetes.io/instance"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_COMPONENT = "app.kubernetes.io/component"
LABEL_VERSION = "app.kubernetes.io/version"
LABEL_REVISION = f"{GROUP}/revision"
LABEL_ROLE = f"{GROUP}/role"
LABEL_SCRAPE = f"{GROUP}/scrape"
"""On the one Service a ServiceMonitor scrapes: every model-server pod, exactly once."""

ANNOTATION_INPUT_HASH = f"{GROUP}/input-hash"
"""Hash of the manifest the operator applied; a changed hash means the child must be written."""

KOPF_PREFIX = GROUP
"""Prefix of kopf's own bookkeeping annotations on a ForecastModel."""

SERVER_PORT = 8000
SERVER_PORT_NAME = "http"

MAX_NAME_LENGTH = 45
"""A ForecastModel's name leaves room for the longest child name, `<name>-backup`, plus
the suffix a CronJob's Jobs get (52 characters in all)."""


class Role(StrEnum):
    """The part a model-server Deployment plays in a rollout."""

    STABLE = "stable"
    CANARY = "canary"
    PREVIEW = "preview"


class Component(StrEnum):
    SERVER = "model-server"
    BACKUP = "backup"


def common_labels(instance: str, component: Component) -> dict[str, str]:
    """Labels every child of the ForecastModel `instance` carries."""
    return {
        LABEL_NAME: APP_NAME,
        LABEL_INSTANCE: instance,
        LABEL_MANAGED_BY: MANAGED_BY,
        LABEL_COMPONENT: str(component),
    }


def selector_labels(instance: str) -> dict[str, str]:
    """The model-server pods of `instance`, whatever their revision or role.

    The Service selects with these, so stable, canary and preview pods all serve
    unless a rollout narrows the selection.
    """
    return {
        LABEL_NAME: APP_NAME,
        LABEL_INSTANCE: instance,
        LABEL_COMPONENT: str(Component.SERVER),
    }


def pod_labels(instance: str, *, revision: str, role: Role, version: str) -> dict[str, str]:
    return {
        **common_labels(instance, Component.SERVER),
        LABEL_VERSION: version,
        LABEL_REVISION: revision,
        LABEL_ROLE: str(role),
    }


def deployment_name(instance: str, role: Role) -> str:
    """`<name>` for the stable Deployment, `<name>-canary` / `<name>-preview` otherwise."""
    return instance if role is Role.STABLE else f"{instance}-{role}"


def service_name(instance: str) -> str:
    return instance


def role_service_name(instance: str, role: Role) -> str:
    """`<name>` for stable (the main Service), `<name>-canary` / `<name>-preview` for the
    Service that selects only that role's pods during a rollout."""
    return service_name(instance) if role is Role.STABLE else f"{instance}-{role}"


def metrics_service_name(instance: str) -> str:
    """The headless Service Prometheus scrapes: every model-server pod, whatever its role
    and whatever the traffic Services select during a rollout."""
    return f"{instance}-metrics"


def backup_cronjob_name(instance: str) -> str:
    return f"{instance}-backup"


def endpoint(instance: str, namespace: str) -> str:
    return f"http://{service_name(instance)}.{namespace}.svc:{SERVER_PORT}"


def label_selector(labels: dict[str, str]) -> str:
    """`k=v,k2=v2`, as in a scale subresource's status.selector."""
    return ",".join(f"{key}={value}" for key, value in sorted(labels.items()))
