"""pytest fixtures for models: one small real forecaster, trained once per session."""

from __future__ import annotations

import pytest

from model_training.train import TrainResult, train_sample


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> TrainResult:
    """2 stores x 3 items x 120 days, 10 trees of depth 3: about a second to train."""
    out = tmp_path_factory.mktemp("tiny-model")
    return train_sample(out, stores=2, items=3, days=120, trees=10, max_depth=3, progress=False)
