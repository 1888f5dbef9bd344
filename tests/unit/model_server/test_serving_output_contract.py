"""The output contract: the pure checks, and what the server answers under each action."""

from __future__ import annotations

import numpy as np
import pytest
from test_serving_app import INFER, Serve, infer_body, metric, rows

from model_server.output_contract import Check, OnViolation, OutputContract, check

F = np.float32


@pytest.mark.parametrize(
    ("contract", "predictions", "violated", "answered", "rejected"),
    [
        (OutputContract(), [1, 2], (), [1, 2], False),
        (OutputContract(), [1, np.nan], (Check.NAN,), [1, np.nan], False),
        (OutputContract(on_violation=OnViolation.REJECT), [np.inf], (Check.NAN,), None, True),
        (OutputContract(on_violation=OnViolation.CLAMP), [np.nan], (Check.NAN,), None, True),
        (OutputContract(non_negative=True), [-1, 2], (Check.NEGATIVE,), [-1, 2], False),
        (
            OutputContract(non_negative=True, on_violation=OnViolation.CLAMP),
            [-1, 2],
            (Check.NEGATIVE,),
            [0, 2],
            False,
        ),
        (
            OutputContract(max_abs_value=10, on_violation=OnViolation.CLAMP),
            [-50, 5, 50],
            (Check.MAX_ABS,),
            [-10, 5, 10],
            False,
        ),
        (
            OutputContract(True, 10, OnViolation.CLAMP),
            [-50, 5, 50],
            (Check.NEGATIVE, Check.MAX_ABS),
            [0, 5, 10],
            False,
        ),
        (OutputContract(True, 10, OnViolation.REJECT), [-1, 11], (Check.NEGATIVE, Check.MAX_ABS), None, True),
        (OutputContract(False, 10), [-10, 10], (), [-10, 10], False),
    ],
)  # fmt: skip
def test_checks_and_actions(contract, predictions, violated, answered, rejected) -> None:
    outcome = check(contract, np.array(predictions, dtype=F))
    assert outcome.violated == violated
    assert (outcome.rejected is not None) == rejected
    if answered is not None:
        np.testing.assert_array_equal(outcome.predictions, np.array(answered, dtype=F))
        assert outcome.predictions.dtype == F


def test_a_rejection_names_the_check_and_the_first_row() -> None:
    outcome = check(OutputContract(True, None, OnViolation.REJECT), np.array([1, -2, -3], F))
    assert outcome.rejected == (
        "the forecast breaks the output contract: negative (2 rows, first row 1: -2)"
    )


@pytest.mark.asyncio
async def test_the_server_counts_rejects_and_clamps(auth, serve: Serve) -> None:
    """A contract no forecast of the tiny model can meet (|y| ≤ 1e-6), through the app."""
    body = infer_body(rows(2))
    counted = await serve(output_max_abs_value=1e-6)
    assert (await counted.post(INFER, json=body, headers=auth)).status_code == 200
    assert (
        await metric(
            counted, "prediction_service_output_contract_violations_total", check="max_abs"
        )
        == 1
    )

    rejected = await serve(output_max_abs_value=1e-6, output_on_violation="reject")
    answer = await rejected.post(INFER, json=body, headers=auth)
    assert answer.status_code == 500
    assert answer.json()["error"].startswith("the forecast breaks the output contract: max_abs")

    clamped = await serve(output_max_abs_value=1e-6, output_on_violation="clamp")
    answer = await clamped.post(INFER, json=body, headers=auth)
    assert answer.status_code == 200
    assert all(abs(v) <= 1e-6 for v in answer.json()["outputs"][0]["data"])
