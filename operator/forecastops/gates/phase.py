"""A gate run's outcome, in Argo's AnalysisRun terms; the rollout may reuse it.

Failed counts toward a gate's failureLimit, Error toward its consecutiveErrorLimit (the
run could not judge: leakage, an undefined score), Inconclusive pauses for a person.
"""

from __future__ import annotations

from enum import StrEnum


class GatePhase(StrEnum):
    SUCCESSFUL = "Successful"
    FAILED = "Failed"
    INCONCLUSIVE = "Inconclusive"
    ERROR = "Error"
