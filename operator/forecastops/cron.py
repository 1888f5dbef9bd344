"""Validation of five-field cron schedules, as the CronJob controller accepts them.

Kept by hand: cronsim and croniter accept L, W and # that the CronJob API rejects, refuse its `?`, and say "Bad minute" where users are told the value and its range.
"""

from __future__ import annotations

import re

_DESCRIPTORS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_FIELDS = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _DAYS),
)
_EVERY = re.compile(r"^@every (\d+(ms|s|m|h))+$")


def schedule_problem(schedule: str) -> str | None:
    """Why `schedule` is not a valid cron schedule, or None when it is."""
    text = schedule.strip()
    if text.startswith("@"):
        ok = text in _DESCRIPTORS or _EVERY.match(text)
        return None if ok else f"unknown descriptor {text!r}"
    if text.startswith(("TZ=", "CRON_TZ=")):
        return "time zones go in spec.backup.timeZone, not in the schedule"
    fields = text.split()
    if len(fields) != 5:
        return f"needs 5 fields (minute hour day-of-month month day-of-week), got {len(fields)}"
    for value, (what, low, high, names) in zip(fields, _FIELDS, strict=True):
        if problem := _field_problem(value, low, high, names):
            return f"{what} field {value!r}: {problem}"
    return None


def _field_problem(value: str, low: int, high: int, names: tuple[str, ...]) -> str | None:
    for part in value.split(","):
        base, _, step = part.partition("/")
        if step and (not step.isdigit() or int(step) == 0):
            return f"step {step!r} must be a positive number"
        if base in ("*", "?"):
            continue
        bounds = base.split("-")
        if len(bounds) > 2 or not all(bounds):
            return f"{base!r} is neither a value nor a range"
        numbers = [_value(bound, low, names) for bound in bounds]
        if any(n is None or not low <= n <= high for n in numbers):
            return f"{base!r} is not within {low}-{high}"
        if numbers != sorted(numbers):  # type: ignore[type-var]
            return f"range {base!r} runs backwards"
    return None


def _value(text: str, low: int, names: tuple[str, ...]) -> int | None:
    if text.isdigit():
        return int(text)
    lowered = text.lower()
    return names.index(lowered) + low if lowered in names else None
