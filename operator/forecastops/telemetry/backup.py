"""The operator's gauges about backups, from each ForecastModel's status.backup.

| name                                                  | type  | labels          |
|-------------------------------------------------------|-------|-----------------|
| ``forecastops_backup_last_success_timestamp_seconds`` | gauge | namespace, name |
| ``forecastops_backup_last_failure_timestamp_seconds`` | gauge | namespace, name |

Both exist, at 0 until the event first happens, for every ForecastModel with a backup
CronJob, and are removed with it (spec.backup switched off, or the ForecastModel
deleted). Names and labels are those of deploy/monitoring/metrics.yaml, which the
ForecastModelBackupFailed alert and the dashboard use.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Gauge

from forecastops.reconcile.backup_status import backup_timestamps
from forecastops.telemetry.metrics import Key


class BackupGauges:
    """Registered on the registry it is given (never the global default one)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.last_success = Gauge(
            "forecastops_backup_last_success_timestamp_seconds",
            "Unix time the last successful backup Job completed; 0 if none has.",
            ["namespace", "name"],
            registry=registry,
        )
        self.last_failure = Gauge(
            "forecastops_backup_last_failure_timestamp_seconds",
            "Unix time the last backup Job failed; 0 if none has.",
            ["namespace", "name"],
            registry=registry,
        )

    def observe(self, key: Key, backup: Mapping[str, Any] | None) -> None:
        """Set from a status.backup; None (no backup CronJob) removes the series."""
        if backup is None:
            self.forget(key)
            return
        success, failure = backup_timestamps(backup)
        self.last_success.labels(*key).set(success)
        self.last_failure.labels(*key).set(failure)

    def forget(self, key: Key) -> None:
        for gauge in (self.last_success, self.last_failure):
            with contextlib.suppress(KeyError):  # never observed
                gauge.remove(*key)
