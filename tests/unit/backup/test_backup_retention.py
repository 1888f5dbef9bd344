"""Retention: which backups to delete, including the clock's edge cases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from forecastops.backup.retention import BackupAge, newest_complete, plan_retention

NOW = datetime(2025, 3, 10, 2, 0, tzinfo=UTC)
DAY = timedelta(days=1)
US = timedelta(microseconds=1)


def complete(age: timedelta, *, took: timedelta = timedelta(minutes=1)) -> BackupAge:
    started = NOW - age - took
    return BackupAge(_id(started), started, NOW - age)


def incomplete(age: timedelta) -> BackupAge:
    started = NOW - age
    return BackupAge(_id(started), started, None)


def _id(when: datetime) -> str:
    return when.strftime("%Y%m%dT%H%M%S.%fZ")  # unique per microsecond, for the tables


def deleted(backups: list[BackupAge], retention_days: int = 7, now: datetime = NOW) -> list[int]:
    """Indexes of the backups the plan deletes."""
    verdicts = plan_retention(backups, now=now, retention_days=retention_days)
    assert [v.backup_id for v in verdicts] == [b.backup_id for b in backups]
    return [i for i, v in enumerate(verdicts) if v.delete]


@pytest.mark.parametrize(
    ("backups", "expected"),
    [
        pytest.param([], [], id="nothing"),
        pytest.param([complete(1 * DAY)], [], id="one recent"),
        pytest.param([complete(30 * DAY)], [], id="one old: the newest complete stays"),
        pytest.param(
            [complete(10 * DAY), complete(8 * DAY), complete(6 * DAY), complete(0 * DAY)],
            [0, 1],
            id="daily: older than 7 days go",
        ),
        pytest.param([complete(7 * DAY), complete(1 * DAY)], [], id="exactly at the cutoff: kept"),
        pytest.param(
            [complete(7 * DAY + US), complete(1 * DAY)], [0], id="a microsecond past: deleted"
        ),
        pytest.param(
            [complete(7 * DAY - US), complete(1 * DAY)], [], id="a microsecond before: kept"
        ),
        pytest.param(
            [complete(20 * DAY), complete(15 * DAY), complete(10 * DAY)],
            [0, 1],
            id="all expired: only the newest complete stays",
        ),
        pytest.param(
            [complete(20 * DAY), incomplete(10 * DAY), incomplete(1 * DAY)],
            [1],
            id="expired incomplete goes, recent incomplete (maybe running) stays",
        ),
        pytest.param(
            [incomplete(30 * DAY), incomplete(8 * DAY)],
            [0, 1],
            id="no complete backup: expired incomplete ones still go",
        ),
        pytest.param(
            [incomplete(30 * DAY), complete(20 * DAY)],
            [0],
            id="newer incomplete does not protect older ones; newest complete stays",
        ),
        pytest.param(
            [complete(-2 * DAY), complete(-1 * DAY)],
            [],
            id="backups in the future (clock skew): never expired",
        ),
    ],
)
def test_plan_retention(backups: list[BackupAge], expected: list[int]) -> None:
    assert deleted(backups) == expected


def test_complete_backups_are_judged_by_their_manifest_time() -> None:
    # started 9 days ago, completed 6 days ago (a very slow backup): kept, by completedAt
    slow = complete(6 * DAY, took=3 * DAY)
    assert deleted([slow, complete(0 * DAY)]) == []
    # ... while an incomplete one that started 9 days ago is judged by its key time
    assert deleted([incomplete(9 * DAY), complete(0 * DAY)]) == [0]


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        pytest.param(NOW, [0], id="now"),
        pytest.param(NOW - 365 * DAY, [], id="clock a year behind: nothing expires"),
        pytest.param(NOW + 365 * DAY, [0, 1], id="clock a year ahead: all but the newest"),
    ],
)
def test_clock_jumps(now: datetime, expected: list[int]) -> None:
    backups = [complete(10 * DAY), complete(5 * DAY), complete(1 * DAY)]
    assert deleted(backups, now=now) == expected


@pytest.mark.parametrize(("days", "expected"), [(1, [0, 1]), (3, [0]), (30, [])])
def test_retention_days(days: int, expected: list[int]) -> None:
    backups = [complete(10 * DAY), complete(2 * DAY), complete(0 * DAY)]
    assert deleted(backups, retention_days=days) == expected


def test_newest_complete_breaks_ties_by_id() -> None:
    when = NOW - DAY
    a = BackupAge("20250309T020000Z", when, when)
    b = BackupAge("20250309T020001Z", when, when)
    assert newest_complete([b, a]) == "20250309T020001Z"
    assert newest_complete([incomplete(DAY)]) is None


def test_the_newest_complete_reason_is_readable() -> None:
    [verdict] = plan_retention([complete(30 * DAY)], now=NOW, retention_days=7)
    assert (verdict.delete, verdict.reason) == (False, "newest complete backup")


@pytest.mark.parametrize(
    "backups",
    [
        [BackupAge("x", datetime(2025, 1, 1), None)],
        [BackupAge("x", NOW, datetime(2025, 1, 1))],
    ],
)
def test_naive_times_are_refused(backups: list[BackupAge]) -> None:
    with pytest.raises(ValueError, match="aware"):
        plan_retention(backups, now=NOW, retention_days=7)
    with pytest.raises(ValueError, match="aware"):
        plan_retention([], now=datetime(2025, 1, 1), retention_days=7)


@pytest.mark.parametrize("days", [0, -1])
def test_retention_must_be_at_least_a_day(days: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        plan_retention([], now=NOW, retention_days=days)
