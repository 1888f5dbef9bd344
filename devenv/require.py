"""A real dependency that is missing: skip with a reason locally, fail in CI."""

from __future__ import annotations

import pytest

from devenv.paths import in_ci


def unavailable(what: str, why: str) -> None:
    """Stop the current test or fixture because `what` cannot be had.

    Outside CI this skips with a clear reason; with CI=true it fails, since CI must run
    every test against its real dependency.
    """
    msg = f"{what} is not available: {why}"
    if in_ci():
        pytest.fail(f"{msg} (CI=true: a missing real dependency is a failure, not a skip)")
    pytest.skip(msg)
