"""Decoding actuals: every row checked, the first bad one named."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from model_server.actuals import Actual, decode_actuals
from model_server.errors import InvalidInput


def test_actuals_decode_with_their_keys_and_flags() -> None:
    body = {"actuals": [{"series_id": "a", "target": "2026-12-05", "value": 3}]}
    body["actuals"].append(
        {"series_id": "b", "target": "2026-12-06", "value": 0.5, "censored": True}
    )
    assert decode_actuals(orjson.dumps(body)) == [
        Actual("a", datetime(2026, 12, 5, tzinfo=UTC), 3.0, False),
        Actual("b", datetime(2026, 12, 6, tzinfo=UTC), 0.5, True),
    ]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"actuals": []}, '"actuals" must be a non-empty list of objects'),
        ({"actuals": [1]}, "actuals[0] must be an object"),
        ({"actuals": [{"target": "2026-12-05", "value": 1}]}, "actuals[0]: series_id must be"),
        ({"actuals": [{"series_id": "a", "value": 1}]}, "actuals[0]: target must be an ISO 8601"),
        ({"actuals": [{"series_id": "a", "target": "2026-12-05"}]}, "actuals[0].value must be a finite number, got null"),
        ({"actuals": [{"series_id": "a", "target": "2026-12-05", "value": True}]},
         "actuals[0].value must be a finite number, got true"),
        ({"actuals": [{"series_id": "a", "target": "2026-12-05", "value": 1, "censored": "y"}]},
         "actuals[0].censored must be true or false"),
    ],
)  # fmt: skip
def test_bad_actuals_name_the_row(body: object, message: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        decode_actuals(orjson.dumps(body))
    assert refused.value.message.startswith(message)
