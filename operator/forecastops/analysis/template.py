"""Query templates: ``{{revision}}``, ``{{ namespace }}``, ... replaced by their values.

Variables (see `TEMPLATE_VARIABLES`) are checked when the spec is read, so a typo is an
invalid spec rather than a query that silently matches nothing.

>>> render('sum(rate(x{revision="{{revision}}"}[{{ interval }}]))',
...        {"revision": "a41e02", "interval": "30s"})
'sum(rate(x{revision="a41e02"}[30s]))'
"""

from __future__ import annotations

import re
from collections.abc import Mapping

TEMPLATE_VARIABLES: dict[str, str] = {
    "name": "the ForecastModel's name",
    "namespace": "its namespace",
    "revision": "the revision under analysis (the canary or preview)",
    "stableRevision": "the stable revision",
    "interval": "the analysis interval, as a PromQL duration such as 30s",
}

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_]\w*)\s*\}\}")


class TemplateError(ValueError):
    """A query names a variable that does not exist."""


def placeholders(query: str) -> set[str]:
    """The variable names `query` uses."""
    return set(_PLACEHOLDER.findall(query))


def check_template(query: str) -> None:
    """Raise TemplateError when `query` uses a variable outside TEMPLATE_VARIABLES."""
    unknown = sorted(placeholders(query) - TEMPLATE_VARIABLES.keys())
    if unknown:
        known = ", ".join(sorted(TEMPLATE_VARIABLES))
        raise TemplateError(f"unknown template variable(s) {', '.join(unknown)}; known: {known}")


def render(query: str, variables: Mapping[str, str]) -> str:
    """Replace every placeholder; values are escaped for a PromQL double-quoted string."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in variables:
            raise TemplateError(f"template variable {name!r} has no value")
        return variables[name].replace("\\", "\\\\").replace('"', '\\"')

    return _PLACEHOLDER.sub(value, query)
