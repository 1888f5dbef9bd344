"""The sample data set and the training pipeline (on a tiny panel)."""

from __future__ import annotations

import hashlib

import numpy as np
import onnx
import orjson
import pytest

from model_server.modelmeta import parse_metadata_props
from model_training import demand
from model_training.train import (
    VARIANTS,
    ParityError,
    TrainResult,
    backtest_metrics,
    check_parity,
    main,
)


def test_panel_is_deterministic_and_plausible() -> None:
    a = demand.generate_panel(stores=2, items=3, days=100, seed=1)
    b = demand.generate_panel(stores=2, items=3, days=100, seed=1)
    np.testing.assert_array_equal(a.sales, b.sales)
    assert a.sales.shape == (6, 100)
    assert (a.sales >= 0).all() and a.sales.mean() > 0.5
    assert set(np.unique(a.promo)) <= {0.0, 1.0} and a.promo.any()
    assert (a.price[a.promo == 1] < a.list_price[a.promo == 1]).all()
    c = demand.generate_panel(stores=2, items=3, days=100, seed=2)
    assert not np.array_equal(a.sales, c.sales)


def test_features_are_what_a_morning_forecast_may_know() -> None:
    panel = demand.generate_panel(stores=2, items=3, days=100, seed=1)
    x, y, day = demand.build_features(panel)
    n_series, first = 6, demand.WARMUP_DAYS
    assert x.shape == ((100 - first) * n_series, len(demand.FEATURE_NAMES)) == (390, 26)
    assert x.dtype == np.float32 and np.isfinite(x).all()
    column = {name: i for i, name in enumerate(demand.FEATURE_NAMES)}
    # rows are (day, series): row k is series k % 6 on day first + k // 6
    k = 6 * 10 + 4
    series, d = k % n_series, first + k // n_series
    assert day[k] == d and y[k] == panel.sales[series, d]
    assert x[k, column["lag_1"]] == panel.sales[series, d - 1]
    assert x[k, column["lag_28"]] == panel.sales[series, d - 28]
    assert x[k, column["roll_mean_7"]] == pytest.approx(
        panel.sales[series, d - 7 : d].mean(), rel=1e-5
    )
    assert x[k, column["roll_std_28"]] == pytest.approx(
        panel.sales[series, d - 28 : d].std(), rel=1e-4
    )
    assert x[k, column["promo_days_last_7"]] == panel.promo[series, d - 7 : d].sum()
    assert x[k, column["price"]] == pytest.approx(panel.price[series, d])
    assert x[k, column["store_id"]] == panel.store[series]


def test_backtest_metrics() -> None:
    metrics = backtest_metrics(np.array([10.0, 0.0, 10.0]), np.array([8.0, 1.0, 12.0]))
    assert metrics == {"wape": pytest.approx(5 / 20), "mae": pytest.approx(5 / 3)}


def test_parity_check_fails_loudly() -> None:
    sk = np.array([100.0, 0.001, 5.0])
    assert check_parity(np.array([100.001, 0.0011, 5.0], dtype=np.float32), sk) <= 1e-4
    with pytest.raises(ParityError, match="max relative difference"):
        check_parity(np.array([100.5, 0.001, 5.0], dtype=np.float32), sk)


def test_trained_model_files(tiny_model: TrainResult) -> None:
    data = tiny_model.model_path.read_bytes()
    document = orjson.loads(tiny_model.metadata_path.read_bytes())
    assert document["sha256"] == tiny_model.sha256 == hashlib.sha256(data).hexdigest()
    assert document["features"] == list(demand.FEATURE_NAMES)
    assert set(document["metrics"]) >= {"wape", "mae"}
    assert 0 < document["metrics"]["wape"] < 1.5
    model = onnx.load_from_string(data)
    props = {p.key: p.value for p in model.metadata_props}
    meta = parse_metadata_props(props, n_features=26)
    assert meta.feature_names == demand.FEATURE_NAMES
    assert meta.version == "1"
    assert meta.golden is not None and len(meta.golden.inputs) == 4
    assert meta.metrics["wape"] == document["metrics"]["wape"]


def test_v2_is_deliberately_different() -> None:
    v1, v2 = VARIANTS["v1"], VARIANTS["v2"]
    assert v2.version == "2" and v1.version == "1"
    assert (v2.seed, v2.trees, v2.max_depth) != (v1.seed, v1.trees, v1.max_depth)


def test_command_line(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--out", str(tmp_path), "--variant", "v2", "--stores", "1", "--items", "2"]
    argv += ["--days", "100", "--trees", "5", "--no-progress"]
    assert main(argv) == 0
    assert "sha256" in capsys.readouterr().out
    document = orjson.loads((tmp_path / "metadata.json").read_bytes())
    assert document["version"] == "2" and document["training"]["trees"] == 5
