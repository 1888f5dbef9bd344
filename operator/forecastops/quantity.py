"""Kubernetes resource quantities ("500m", "1Gi", "2e3") as exact decimals."""

from __future__ import annotations

import re
from decimal import Decimal

_QUANTITY = re.compile(
    r"^(?P<number>[+-]?(?:\d+(?:\.\d*)?|\.\d+))(?P<suffix>[KMGTPE]i|[numkMGTPE]|[eE][+-]?\d+)?$"
)
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
}


def parse_quantity(text: str | int) -> Decimal | None:
    """The value of a quantity, or None when `text` is not one."""
    match = _QUANTITY.match(str(text).strip())
    if not match:
        return None
    number = Decimal(match["number"])
    suffix = match["suffix"] or ""
    if suffix in _BINARY:
        return number * _BINARY[suffix]
    if suffix in _DECIMAL:
        return number * _DECIMAL[suffix]
    return number * Decimal(10) ** int(suffix[1:])


def same_quantity(a: object, b: object) -> bool:
    """True when both are quantities of equal value ("1Gi" and "1024Mi", "0.5" and "500m")."""
    if not isinstance(a, str | int) or not isinstance(b, str | int):
        return False
    qa, qb = parse_quantity(a), parse_quantity(b)
    return qa is not None and qa == qb
