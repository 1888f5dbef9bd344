"""Environment variables; secrets only ever by reference, never by value."""

from __future__ import annotations

from typing import Any

from forecastops.spec import SecretKeyRef


def value(name: str, text: str | int) -> dict[str, Any]:
    return {"name": name, "value": str(text)}


def from_secret(name: str, ref: SecretKeyRef, optional: bool = False) -> dict[str, Any]:
    selector: dict[str, Any] = {"name": ref.name, "key": ref.key}
    if optional:
        selector["optional"] = True
    return {"name": name, "valueFrom": {"secretKeyRef": selector}}
