"""Actuals: the demand that was observed, sent in after the fact, kept in PostgreSQL.

One actual is keyed by series and target period, the key the prediction log records for
each forecast, so it settles every forecast made for that period, by any revision. It is
versioned: sending the same key again adds version n+1 (a late correction), and nothing
is overwritten, so an evaluation can be replayed as of any time. ``censored`` marks a
period whose sales are not its demand (a stock-out): gates leave it out.

Unlike predictions, actuals are written before the answer: a 200 means they are stored
(one transaction per request); any failure is an error the client sees and retries.
The table lives in the prediction log's database, created by its migrations
(`predlog.MIGRATIONS`), next to the `latest_actuals` view (the newest version per key).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from model_server.errors import InvalidInput, ModelServerError
from model_server.protocol import load_object, row_keys

log = logging.getLogger(__name__)

TABLE = "actuals"
MAX_ROWS = 100_000


class ActualsUnavailable(ModelServerError):
    """The database could not take the actuals now: nothing was stored, send them again."""

    status_code = 503


class NoPredictionLog(ModelServerError):
    """Actuals need the prediction log's database: without one, this server has nowhere to
    keep them (a 404 rather than a 5xx: nothing failed, the resource is not here)."""

    status_code = 404


@dataclass(frozen=True, slots=True)
class Actual:
    series_id: str
    target: datetime
    value: float
    censored: bool = False


def decode_actuals(body: bytes) -> list[Actual]:
    """``{"actuals": [{"series_id", "target", "value", "censored"?}, ...]}``, checked row
    by row; `InvalidInput` names the first bad one."""
    doc = load_object(body)
    rows = doc.get("actuals")
    if not isinstance(rows, list) or not rows:
        raise InvalidInput('"actuals" must be a non-empty list of objects')
    if len(rows) > MAX_ROWS:
        raise InvalidInput(f'"actuals" has {len(rows)} rows; send at most {MAX_ROWS} at once')
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise InvalidInput(f"actuals[{i}] must be an object")
    keys = row_keys([r.get("series_id") for r in rows], [r.get("target") for r in rows], "actuals")
    actuals = []
    for i, row in enumerate(rows):
        value, censored = row.get("value"), row.get("censored", False)
        if type(value) not in (int, float) or value != value or abs(value) == float("inf"):
            raise InvalidInput(
                f"actuals[{i}].value must be a finite number, got {orjson.dumps(value).decode()}"
            )
        if not isinstance(censored, bool):
            raise InvalidInput(f"actuals[{i}].censored must be true or false")
        actuals.append(Actual(keys.series[i], keys.targets[i], float(value), censored))
    return actuals


async def write_actuals(url: str | None, actuals: list[Actual]) -> int:
    """Store `actuals`, each as the next version of its key; the number stored."""
    if url is None:
        raise NoPredictionLog(
            "actuals are kept with the prediction log: set spec.server.predictionLog "
            "(PREDICTION_DATABASE_URL)"
        )
    import psycopg

    from model_server.predlog import migrate

    try:
        async with await psycopg.AsyncConnection.connect(
            url, autocommit=True, connect_timeout=5, application_name="forecast-server"
        ) as conn:
            await migrate(conn)
            async with conn.transaction():
                # One writer at a time: the next version of a key is read, then written.
                await conn.execute(f"LOCK TABLE {TABLE} IN SHARE ROW EXCLUSIVE MODE")
                async with conn.cursor() as cur:
                    await cur.executemany(_INSERT, [_params(a) for a in actuals])
    except psycopg.OperationalError as exc:
        log.warning("Actuals not stored (%d rows): %s", len(actuals), exc)
        raise ActualsUnavailable(
            f"the prediction log's database is unavailable, nothing was stored: {exc}"
        ) from exc
    return len(actuals)


_INSERT = f"""
    INSERT INTO {TABLE} (series_id, target_ts, value, censored, version)
    SELECT %(series_id)s, %(target)s, %(value)s, %(censored)s, coalesce(max(version), 0) + 1
    FROM {TABLE} WHERE series_id = %(series_id)s AND target_ts = %(target)s
"""


def _params(actual: Actual) -> dict[str, Any]:
    return {
        "series_id": actual.series_id,
        "target": actual.target,
        "value": actual.value,
        "censored": actual.censored,
    }
