"""kopf glue: API errors become kopf's retry semantics, with a bounded backoff."""

from __future__ import annotations

import subprocess
import sys

import kopf
import pytest
from forecastops.kube.api import ApiError
from forecastops.runtime.config import OperatorSettings
from forecastops.runtime.handlers import (
    build_registry,
    on_forecastmodel_event,
    reconcile_forecastmodel,
)
from forecastops.telemetry.factory import build_metrics
from forecastops.telemetry.metrics import NoMetrics


class FailingController:
    def __init__(self, error: ApiError | None) -> None:
        self.error = error
        self.keys: list[tuple[str, str]] = []

    async def reconcile_now(self, key):
        self.keys.append(key)
        if self.error:
            raise self.error


def memo_with(error: ApiError | None) -> kopf.Memo:
    return kopf.Memo(settings=OperatorSettings(), controller=FailingController(error))


@pytest.mark.asyncio
async def test_a_pass_that_succeeds_is_done():
    memo = memo_with(None)
    await reconcile_forecastmodel(namespace="retail", name="store-demand", retry=0, memo=memo)
    assert memo.controller.keys == [("retail", "store-demand")]


@pytest.mark.asyncio
@pytest.mark.parametrize(("retry", "delay"), [(0, 2), (1, 4), (4, 32), (7, 60)])
async def test_transient_errors_retry_with_a_capped_exponential_backoff(retry, delay):
    memo = memo_with(ApiError(503, "ServiceUnavailable", "later"))
    with pytest.raises(kopf.TemporaryError) as raised:
        await reconcile_forecastmodel(
            namespace="retail", name="store-demand", retry=retry, memo=memo
        )
    assert raised.value.delay == delay


@pytest.mark.asyncio
async def test_other_errors_stop_the_retries():
    memo = memo_with(ApiError(422, "Invalid", "spec.template: bad"))
    with pytest.raises(kopf.PermanentError, match=r"spec\.template: bad"):
        await reconcile_forecastmodel(namespace="retail", name="store-demand", retry=0, memo=memo)


def test_a_deleted_forecastmodel_is_forgotten():
    forgotten = []
    memo = kopf.Memo(
        controller=type("C", (), {"forget": lambda self, key: forgotten.append(key)})()
    )
    on_forecastmodel_event(type="MODIFIED", namespace="retail", name="a", memo=memo)
    on_forecastmodel_event(type="DELETED", namespace="retail", name="a", memo=memo)
    assert forgotten == [("retail", "a")]


def test_the_registry_builds_without_touching_anything():
    assert isinstance(build_registry(OperatorSettings()), kopf.OperatorRegistry)


def test_prometheus_is_loaded_only_when_metrics_are_asked_for():
    code = "import sys, forecastops.runtime.main; sys.exit('prometheus_client' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
    assert isinstance(build_metrics(None), NoMetrics)
