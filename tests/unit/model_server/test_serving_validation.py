"""The data plane's checks of a decoded batch against the model."""

from __future__ import annotations

import numpy as np
import pytest

from model_server.dataplane import validate_batch
from model_server.errors import InvalidInput, PayloadTooLarge

FEATURES = ("lag_1", "lag_7", "price")


def batch(rows: int, columns: int = 3) -> np.ndarray:
    return np.ones((rows, columns), dtype=np.float32)


def test_a_good_batch_passes() -> None:
    validate_batch(batch(5), FEATURES, max_rows=5)


def test_empty_batch() -> None:
    with pytest.raises(InvalidInput, match="empty batch"):
        validate_batch(batch(0), FEATURES, max_rows=5)


def test_oversized_batch_is_413() -> None:
    with pytest.raises(PayloadTooLarge, match="batch of 6 rows exceeds the limit of 5 rows"):
        validate_batch(batch(6), FEATURES, max_rows=5)


def test_wrong_feature_count() -> None:
    with pytest.raises(
        InvalidInput, match="wrong feature count: got 2 values per row, the model takes 3"
    ):
        validate_batch(batch(2, columns=2), FEATURES, max_rows=5)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values_are_located(bad: float) -> None:
    x = batch(3)
    x[2, 1] = bad
    with pytest.raises(InvalidInput, match=r"row 2, feature 'lag_7'.*not a finite number"):
        validate_batch(x, FEATURES, max_rows=5)
