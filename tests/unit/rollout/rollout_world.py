"""A tiny simulated cluster for scenario tests of the pure state machine.

It plays the part of reconcile (gather → measure → decide → act) and of Kubernetes
(pods become ready one pass after a Deployment is written), without any I/O, so a whole
rollout runs in milliseconds and every pass can be inspected.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from forecastops.analysis.measurement import measure
from forecastops.analysis.provider import MetricsError, NoDataError
from forecastops.kube.names import Role
from forecastops.rollout.actions import (
    ApplyStable,
    Decision,
    DeleteCandidate,
    Emit,
    Requeue,
    ScaleCandidate,
    SetRoutes,
)
from forecastops.rollout.decide import decide_rollout
from forecastops.rollout.observed import DeploymentState, Observed, parse_command
from forecastops.rollout.runs import due_metrics, template_variables
from forecastops.rollout.spec import RolloutSpec, parse_rollout
from forecastops.rollout.state import Phase, RolloutStatus

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)

NO_DATA = NoDataError("no data: the query returned no series")
QUERY_ERROR = MetricsError("Prometheus bad_data: parse error at char 5")

ERROR_RATE = {
    "name": "error-rate",
    "prometheus": {"query": 'errors{revision="{{revision}}"}'},
    "failureCondition": "result > 0.01",
}
LATENCY = {
    "name": "latency-p95",
    "prometheus": {"query": 'p95{revision="{{revision}}"}'},
    "failureCondition": "result > 0.2",
}


def rollout_spec(**overrides: Any) -> dict[str, Any]:
    """A canary spec like the design doc's, with 1 s intervals."""
    spec: dict[str, Any] = {
        "strategy": "Canary",
        "canary": {
            "steps": [
                {"setWeight": 10},
                {"pause": {"duration": "10s"}},
                {"analysis": {"templates": ["error-rate", "latency-p95"]}},
                {"setWeight": 50},
                {"pause": {}},
            ]
        },
        "analysis": {
            "interval": "1s",
            "failureLimit": 2,
            "inconclusiveLimit": 3,
            "count": 3,
            "metrics": [ERROR_RATE, LATENCY],
        },
    }
    spec.update(overrides)
    return spec


def analysis_step_spec(weight: int = 10) -> dict[str, Any]:
    """A canary that sets `weight`, runs the error-rate analysis as a step, then pauses."""
    analysis = {"analysis": {"templates": ["error-rate"]}}
    return rollout_spec(canary={"steps": [{"setWeight": weight}, analysis, {"pause": {}}]})


def never_ready(raw_spec: Mapping[str, Any]) -> World:
    """A rollout to rev-b, one pass in, whose pods never become ready."""
    world = World.healthy(raw_spec, desired="rev-b", broken={"rev-b"})
    world.tick()
    return world


class _Provider:
    def __init__(self, answer: float | Exception) -> None:
        self.answer = answer

    def run_query(self, query: str) -> float:
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer

    def is_online(self) -> bool:
        return True


@dataclass
class Deployment:
    revision: str
    replicas: int
    ready: int = 0
    generation: int = 1
    never_ready: bool = False

    def state(self) -> DeploymentState:
        return DeploymentState(self.revision, self.replicas, self.ready, self.ready, self.ready)


@dataclass
class World:
    spec: RolloutSpec | None
    desired: str = "rev-a"
    stable_size: int = 4
    """What stable's HorizontalPodAutoscaler wants; the world applies it to stable."""
    now: datetime = T0
    status: RolloutStatus = field(default_factory=RolloutStatus)
    stable: Deployment | None = None
    candidates: dict[Role, Deployment] = field(default_factory=dict)
    routes: int = 0
    command: str | None = None
    metrics: dict[str, float | Exception] = field(default_factory=dict)
    """Answer per metric name; a callable of the revision may be given via `metric_fn`."""
    metric_fn: Callable[[str, str], float | Exception] | None = None
    broken: set[str] = field(default_factory=set)
    """Revisions whose pods never become ready."""
    events: list[Emit] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    stable_writes: int = 0
    queries: list[str] = field(default_factory=list)

    @classmethod
    def healthy(cls, raw_spec: Mapping[str, Any] | None = None, **kwargs: Any) -> World:
        """A world whose stable revision `rev-a` is up and known."""
        world = cls(parse_rollout(raw_spec) if raw_spec is not None else None, **kwargs)
        world.stable = Deployment("rev-a", world.stable_size, world.stable_size)
        world.status = RolloutStatus(phase=Phase.HEALTHY, stable_revision="rev-a")
        return world

    # --- one reconcile pass --------------------------------------------------------------

    def observe(self) -> Observed:
        return Observed(
            now=self.now,
            desired_revision=self.desired,
            stable=self.stable.state() if self.stable else None,
            canary=self._state(Role.CANARY),
            preview=self._state(Role.PREVIEW),
            command=parse_command(self.command),
        )

    def reconcile(self, *, act: bool = True) -> Decision:
        self._kubernetes()
        measurements = {}
        if self.spec is not None:
            variables = template_variables("demand", "retail", self.status, self.spec.analysis)
            for name in due_metrics(self.status, self.now):
                metric = self.spec.analysis.metric(name)
                self.queries.append(f"{name}@{variables['revision']}")
                answer = self._answer(name, variables["revision"])
                measurements[name] = measure(metric, _Provider(answer), variables, self.now)
        decision = decide_rollout(self.spec, self.status, self.observe(), measurements)
        self.decisions.append(decision)
        self.status = decision.status
        if act:
            self.act(decision)
        return decision

    def act(self, decision: Decision) -> None:
        for action in decision.actions:
            match action:
                case ApplyStable(revision=revision):
                    self._write_stable(revision)
                case ScaleCandidate(role=role, replicas=replicas):
                    self._write_candidate(role, replicas)
                case DeleteCandidate(role=role):
                    self.candidates.pop(role, None)
                case SetRoutes(canary_weight=weight):
                    self.routes = weight
                case Emit():
                    self.events.append(action)

    def tick(self, *, act: bool = True, max_wait: float = 1.0) -> Decision:
        """Reconcile, then let time pass until the requeue (at most `max_wait`)."""
        decision = self.reconcile(act=act)
        requeues = decision.of_type(Requeue)
        wait = min([r.after_seconds for r in requeues] + [max_wait])
        self.now += timedelta(seconds=max(wait, 0.05))
        return decision

    def run_until(self, done: Callable[[World], bool], *, passes: int = 400) -> int:
        """Tick until `done(world)`; returns the passes it took. Fails when it never is."""
        for n in range(1, passes + 1):
            self.tick()
            if done(self):
                return n
        raise AssertionError(f"not reached in {passes} passes; status: {self.status}")

    def elapsed(self) -> float:
        return (self.now - T0).total_seconds()

    # --- helpers -------------------------------------------------------------------------

    def phase_is(self, *phases: Phase) -> Callable[[World], bool]:
        return lambda w: w.status.phase in phases

    def reasons(self) -> list[str]:
        return [e.reason for e in self.events]

    def candidate(self, role: Role = Role.CANARY) -> Deployment | None:
        return self.candidates.get(role)

    def _answer(self, metric: str, revision: str) -> float | Exception:
        if self.metric_fn is not None:
            return self.metric_fn(metric, revision)
        return self.metrics.get(metric, 0.0)

    def _state(self, role: Role) -> DeploymentState | None:
        deployment = self.candidates.get(role)
        return deployment.state() if deployment else None

    def _kubernetes(self) -> None:
        """The cluster between passes: the HPA sizes stable, pods become ready."""
        if self.stable is not None:
            self.stable.replicas = self.stable_size
        for deployment in [self.stable, *self.candidates.values()]:
            if deployment is not None and deployment.revision not in self.broken:
                deployment.ready = deployment.replicas

    def _write_stable(self, revision: str) -> None:
        if self.stable is None:
            self.stable = Deployment(revision, self.stable_size)
            self.stable_writes += 1
        elif self.stable.revision != revision:
            self.stable = replace(
                self.stable, revision=revision, ready=0, generation=self.stable.generation + 1
            )
            self.stable_writes += 1

    def _write_candidate(self, role: Role, replicas: int) -> None:
        current = self.candidates.get(role)
        if current and current.revision == self.desired:
            if current.replicas != replicas:
                current.replicas = replicas
                current.ready = min(current.ready, replicas)
            return
        self.candidates[role] = Deployment(self.desired, replicas)
