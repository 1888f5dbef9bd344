"""Train the sample model's scikit-learn estimator in a peer's venv and save it with joblib.

Run by the benchmark as ``<peer-venv>/bin/python -m bench.apps.train_sklearn PARAMS OUT``
with the repository on PYTHONPATH (for `model_training.demand`, pure numpy). It repeats
`model_training.train.train` step for step (same panel, features, holdout split and
estimator parameters, trees added in chunks of 10 with ``warm_start``) because a pickle
made by the project's scikit-learn cannot be loaded by the peers' older one (KServe pins
~1.5). Writes ``model.joblib``, the holdout rows ``x_test.npy`` and this estimator's
predictions for them ``sklearn_pred.npy`` (the benchmark compares them with ONNX).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import joblib
import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor

from model_training import demand

CHUNK = 10  # as in model_training.train.train


def main(params_path: str, out_dir: str) -> int:
    params = json.loads(Path(params_path).read_text())
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    panel = demand.generate_panel(params["stores"], params["items"], params["days"], params["seed"])
    x, y, day = demand.build_features(panel)
    test = day >= params["days"] - params["holdout_days"]
    model = HistGradientBoostingRegressor(
        max_iter=0,
        max_depth=params["max_depth"],
        learning_rate=params["learning_rate"],
        early_stopping=False,
        warm_start=True,
        random_state=params["seed"],
    )
    for done in range(0, params["trees"], CHUNK):
        model.set_params(max_iter=min(done + CHUNK, params["trees"]))
        model.fit(x[~test], y[~test])
    x_test = np.ascontiguousarray(x[test], dtype=np.float32)
    np.save(out / "x_test.npy", x_test)
    np.save(out / "sklearn_pred.npy", model.predict(x_test))
    joblib.dump(model, out / "model.joblib")
    print(f"trained {model.n_iter_} trees on {int((~test).sum())} rows -> {out / 'model.joblib'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
