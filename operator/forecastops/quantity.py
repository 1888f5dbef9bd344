"""Kubernetes resource quantities ("500m", "1Gi", "2e3") as exact decimals.

Kept by hand: only the form check, since kubernetes.utils.parse_quantity (which computes the value) also takes "2K", "9 M" and "1e3k", which the API server refuses.
"""

from __future__ import annotations

import re
from decimal import Decimal

from kubernetes.utils import parse_quantity as _value

_QUANTITY = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[KMGTPE]i|[numkMGTPE]|[eE][+-]?\d+)?")


def parse_quantity(text: str | int) -> Decimal | None:
    """The value of a quantity, or None when `text` is not one."""
    text = str(text).strip()
    return _value(text) if _QUANTITY.fullmatch(text) else None


def same_quantity(a: object, b: object) -> bool:
    """True when both are quantities of equal value ("1Gi" and "1024Mi", "0.5" and "500m")."""
    if not isinstance(a, str | int) or not isinstance(b, str | int):
        return False
    qa, qb = parse_quantity(a), parse_quantity(b)
    return qa is not None and qa == qb
