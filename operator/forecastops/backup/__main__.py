"""``python -m forecastops.backup backup|restore|list|prune``."""

import sys

from forecastops.backup.cli import main

sys.exit(main())
