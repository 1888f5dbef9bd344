"""The reference oracle (utilsforecast 0.2.17) and the design notes' edge-case data.

Three daily series with 4 holdout targets each (origin ds=7, targets ds 8..11, h 1..4):
`a` and `b` sell, `z` is a dead SKU (all zeros) on which the candidate predicts 1 once.
Σ|y| = 425 and Σ|e| = 50, of which 1 on `z`: pooled WAPE 50/425 = 0.1176, while
utilsforecast's weighted mean (weights = Σy per series) drops `z`: 49/425 = 0.1153.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

IDS = np.repeat(["a", "b", "z"], 4)
HORIZONS = np.tile([1, 2, 3, 4], 3)
DS = HORIZONS + 7
Y = np.array([50, 60, 70, 80, 40, 45, 40, 40, 0, 0, 0, 0], dtype=float)
CANDIDATE = np.array([60, 50, 75, 85, 45, 40, 45, 44, 0, 1, 0, 0], dtype=float)
STABLE = np.array([55, 58, 72, 70, 42, 45, 41, 37, 0, 0, 0, 0], dtype=float)

HISTORY_IDS = np.repeat(["a", "b", "z"], 14)
HISTORY_DS = np.tile(np.arange(-6, 8), 3)
HISTORY_Y = np.concatenate(
    [
        50 + 3 * np.sin(np.arange(14)) + np.arange(14),
        np.array([40, 41, 43, 40, 39, 44, 42] * 2, dtype=float) + np.repeat([0, 2], 7),
        np.zeros(14),
    ]
)


def frame(ids, y, ds=None, **models) -> pd.DataFrame:
    """A utilsforecast frame: unique_id, ds, y and one column per model."""
    ids = np.asarray(ids)
    if ds is None:
        ds = np.arange(ids.size)
    return pd.DataFrame({"unique_id": ids, "ds": np.asarray(ds), "y": np.asarray(y), **models})


def by_id(result: pd.DataFrame, column: str = "model") -> dict[str, float]:
    """utilsforecast's per-series answer as {series: value}."""
    return dict(zip(result["unique_id"].astype(str), result[column].astype(float), strict=True))
