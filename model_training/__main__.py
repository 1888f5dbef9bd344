"""``python -m model_training``: the same as ``forecast-train``."""

import sys

from model_training.train import main

sys.exit(main())
