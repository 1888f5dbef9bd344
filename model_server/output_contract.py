"""The output contract: what a forecast must look like, checked on every answer.

The resource declares it (``spec.model.outputContract``); the operator passes it as the
``PREDICTION_OUTPUT_*`` settings. Checks, each counted per revision in
``prediction_service_output_contract_violations_total{check}``:

| check      | a violation                                     | always on |
|------------|-------------------------------------------------|-----------|
| ``nan``    | a prediction that is NaN or infinite            | yes       |
| ``negative`` | a prediction below 0, when ``nonNegative``    | no        |
| ``max_abs`` | ``|prediction|`` above ``maxAbsValue``         | no        |

What a violation does (``onViolation``): ``count`` answers as the model said; ``reject``
answers 500 naming the checks and the first offending row; ``clamp`` floors negatives at
0 and clips to ±maxAbsValue, and rejects what it cannot repair (NaN). The model server's
models answer one point forecast per row, so horizon length and quantile order are not
checked here.

Pure numpy: `check` returns the predictions to answer and the checks that failed. The
contract's shape is defined once, in `model_server.contract`, for the operator too.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from model_server.contract import OnViolation, OutputContract


class Check(StrEnum):
    NAN = "nan"
    NEGATIVE = "negative"
    MAX_ABS = "max_abs"


@dataclass(frozen=True)
class Outcome:
    predictions: np.ndarray
    """What to answer (clamped when the contract says so)."""
    violated: tuple[Check, ...] = ()
    rejected: str | None = None
    """Why the answer must not go out (reject, or a violation clamp cannot repair)."""


def check(contract: OutputContract, predictions: np.ndarray) -> Outcome:
    """The answer for `predictions` under `contract` (one vectorised pass per check)."""
    finite = np.isfinite(predictions)
    bad: dict[Check, np.ndarray] = {}
    if not finite.all():
        bad[Check.NAN] = ~finite
    if contract.non_negative and (predictions < 0).any():
        bad[Check.NEGATIVE] = predictions < 0
    limit = contract.max_abs_value
    if limit is not None and (np.abs(predictions) > limit).any():
        bad[Check.MAX_ABS] = np.abs(predictions) > limit
    if not bad:
        return Outcome(predictions)
    violated = tuple(bad)
    if contract.on_violation is OnViolation.COUNT:
        return Outcome(predictions, violated)
    if contract.on_violation is OnViolation.CLAMP and Check.NAN not in bad:
        low = 0.0 if contract.non_negative else (-limit if limit is not None else -np.inf)
        high = limit if limit is not None else np.inf
        clamped = np.clip(predictions, low, high).astype(predictions.dtype, copy=False)
        return Outcome(clamped, violated)
    return Outcome(predictions, violated, _reason(bad, predictions))


def _reason(bad: dict[Check, np.ndarray], predictions: np.ndarray) -> str:
    parts = []
    for name, mask in bad.items():
        row = int(np.flatnonzero(mask)[0])
        value = float(predictions[row])
        parts.append(f"{name} ({int(mask.sum())} rows, first row {row}: {value:g})")
    return "the forecast breaks the output contract: " + "; ".join(parts)
