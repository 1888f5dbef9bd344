"""Which backups to delete. Pure: the listing and the clock in, a plan out.

Rules, in order:
1. The newest complete backup is kept, however old: there is always one to restore.
2. A complete backup is judged by its manifest's ``completedAt``; an incomplete one (no
   valid manifest: killed midway, still running, damaged) by the time in its key.
3. A backup is expired when that time is strictly more than ``retention_days`` before now.
   A time in the future (clock skew) is never expired.

The caller deletes nothing unless it has a complete listing: a failed listing raises
before this function is reached.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class BackupAge:
    """What retention needs to know about one backup."""

    backup_id: str
    started_at: datetime
    completed_at: datetime | None  # None: incomplete (no valid manifest)

    @property
    def complete(self) -> bool:
        return self.completed_at is not None

    @property
    def judged_at(self) -> datetime:
        return self.completed_at or self.started_at


@dataclass(frozen=True)
class Verdict:
    backup_id: str
    delete: bool
    reason: str


def plan_retention(
    backups: Sequence[BackupAge], *, now: datetime, retention_days: int
) -> list[Verdict]:
    """One verdict per backup, in the order given."""
    if retention_days < 1:
        raise ValueError("retention_days must be at least 1")
    if now.tzinfo is None or any(_naive(b) for b in backups):
        raise ValueError("retention needs aware datetimes")
    cutoff = now - timedelta(days=retention_days)
    newest = newest_complete(backups)
    return [_verdict(b, cutoff, newest) for b in backups]


def newest_complete(backups: Sequence[BackupAge]) -> str | None:
    complete = [b for b in backups if b.complete]
    if not complete:
        return None
    return max(complete, key=lambda b: (b.judged_at, b.backup_id)).backup_id


def _verdict(backup: BackupAge, cutoff: datetime, newest: str | None) -> Verdict:
    kind = "complete" if backup.complete else "incomplete"
    if backup.backup_id == newest:
        return Verdict(backup.backup_id, False, "newest complete backup")
    if backup.judged_at < cutoff:
        return Verdict(backup.backup_id, True, f"{kind}, older than the retention period")
    return Verdict(backup.backup_id, False, f"{kind}, within the retention period")


def _naive(backup: BackupAge) -> bool:
    return backup.started_at.tzinfo is None or (
        backup.completed_at is not None and backup.completed_at.tzinfo is None
    )
