"""In-process scikit-learn predict time for 1 and 100 rows (median, microseconds).

``<peer-venv>/bin/python -m bench.apps.time_sklearn MODEL.joblib X.npy`` prints one JSON
object. Run with OMP_NUM_THREADS=1, as the tuned peers run.
"""

from __future__ import annotations

import json
import sys
import time

import joblib
import numpy as np


def median_us(fn, x, repeat: int) -> float:
    for _ in range(5):
        fn(x)
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn(x)
        samples.append(time.perf_counter() - t0)
    return float(np.median(samples) * 1e6)


def main(model_path: str, x_path: str) -> int:
    model = joblib.load(model_path)
    x = np.load(x_path)
    out = {f"{n}_rows_us": median_us(model.predict, x[:n], 200) for n in (1, 100)}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
