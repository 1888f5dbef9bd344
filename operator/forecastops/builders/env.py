"""Environment variables; secrets only ever by reference, never by value.

The model server's variables are named by its contract (`model_server.contract`): a
builder names a setting (``"api_keys"``), never a variable, so a setting the server does
not have fails here, in the operator's tests, and not silently in a user's pod.
"""

from __future__ import annotations

from typing import Any

from forecastops.spec import SecretKeyRef
from model_server.contract import env_name, is_secret

# The keys of a model's credentials Secret (spec.model.credentialsSecret), as the CRD
# documents them: the AWS names for s3://, one Authorization header value for https://.
S3_ACCESS_KEY_ID = "AWS_ACCESS_KEY_ID"
S3_SECRET_ACCESS_KEY = "AWS_SECRET_ACCESS_KEY"
S3_ENDPOINT_URL = "AWS_ENDPOINT_URL"
S3_REGION = "AWS_REGION"
HTTPS_AUTHORIZATION_KEY = "authorization"


def value(name: str, text: str | int) -> dict[str, Any]:
    return {"name": name, "value": str(text)}


def from_secret(name: str, ref: SecretKeyRef, optional: bool = False) -> dict[str, Any]:
    selector: dict[str, Any] = {"name": ref.name, "key": ref.key}
    if optional:
        selector["optional"] = True
    return {"name": name, "valueFrom": {"secretKeyRef": selector}}


def setting(name: str, text: str | int) -> dict[str, Any]:
    """The model server's setting `name` (a `ServerSettings` field) set to `text`."""
    if is_secret(name):
        raise ValueError(f"{name} is a secret: set it from a Secret, never as a value")
    return value(env_name(name), text)


def setting_from_secret(name: str, ref: SecretKeyRef, optional: bool = False) -> dict[str, Any]:
    """The model server's setting `name` read from a Secret's key."""
    return from_secret(env_name(name), ref, optional)
