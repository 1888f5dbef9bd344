"""A ForecastModel read into frozen values, validated in full before anything is written.

The CRD's schema and CEL rules reject most bad input at admission. This module checks
everything again, plus what CEL cannot express (cron syntax, time zones), so that the
builders only ever see a valid spec and an invalid one never leaves half-made children.
Every problem names its field, e.g. ``spec.backup.schedule: needs 5 fields``.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

from forecastops.cron import schedule_problem
from forecastops.kube.names import MAX_NAME_LENGTH
from forecastops.quantity import parse_quantity
from forecastops.rollout.spec import RolloutSpec, RolloutSpecError, parse_rollout
from model_server import contract as server_contract
from model_server.contract import OnViolation, OutputContract

_NAME = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
_SHA256 = re.compile(r"^[a-f0-9]{64}$")
_MODEL_URI = re.compile(
    r"^(s3://[^/]+/.+|https://.+|pvc://[a-z0-9]([-a-z0-9]*[a-z0-9])?/.+|file:///.+)$"
)
_DURATION = re.compile(r"^([0-9]+(ms|s|m|h))+$")
_URL = re.compile(r"^https?://.+")
_IMAGE = re.compile(r"^\S+$")
_LABEL_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_E = TypeVar("_E", bound=StrEnum)
_S = TypeVar("_S")
_JWT_ALGORITHMS = ("HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384")


class InvalidSpec(ValueError):
    """The spec cannot be served; `problems` holds one `field: message` line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = tuple(problems)


class Scheme(StrEnum):
    S3 = "s3"
    HTTPS = "https"
    PVC = "pvc"
    FILE = "file"


class PullPolicy(StrEnum):
    ALWAYS = "Always"
    IF_NOT_PRESENT = "IfNotPresent"
    NEVER = "Never"


class VpaUpdateMode(StrEnum):
    OFF = "Off"
    INITIAL = "Initial"
    RECREATE = "Recreate"
    AUTO = "Auto"


class TolerationOperator(StrEnum):
    EXISTS = "Exists"
    EQUAL = "Equal"


class TaintEffect(StrEnum):
    NO_SCHEDULE = "NoSchedule"
    PREFER_NO_SCHEDULE = "PreferNoSchedule"
    NO_EXECUTE = "NoExecute"


class SelectPolicy(StrEnum):
    MAX = "Max"
    MIN = "Min"
    DISABLED = "Disabled"


class ScalingPolicyType(StrEnum):
    PODS = "Pods"
    PERCENT = "Percent"


ADDED_LATER = {"revision": "omit-when-unset"}
"""Field metadata: a field added after revisions were first computed counts in a revision
only when set, so upgrading the operator starts no rollout of an unchanged model."""


@dataclass(frozen=True)
class SecretKeyRef:
    name: str
    key: str


@dataclass(frozen=True)
class ModelSource:
    uri: str
    version: str
    sha256: str | None = None
    credentials_secret: str | None = None
    output_contract: OutputContract | None = field(default=None, metadata=ADDED_LATER)

    @property
    def scheme(self) -> Scheme:
        return Scheme(self.uri.partition("://")[0])


@dataclass(frozen=True)
class JwtAuth:
    key_secret: SecretKeyRef
    audience: str
    algorithms: tuple[str, ...] = ()
    issuer: str | None = None


@dataclass(frozen=True)
class Auth:
    api_key_secret: SecretKeyRef | None = None
    jwt: JwtAuth | None = None


@dataclass(frozen=True)
class Cache:
    redis_url_secret: SecretKeyRef
    ttl_seconds: int = 300


@dataclass(frozen=True)
class PredictionLog:
    postgres_url_secret: SecretKeyRef
    retention_days: int = 30


@dataclass(frozen=True)
class Resources:
    requests: dict[str, str] = field(default_factory=dict)
    limits: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Toleration:
    """A Kubernetes Toleration (core/v1); `operator` Exists tolerates every value of `key`,
    and an empty `key` with Exists tolerates every taint."""

    key: str | None = None
    operator: TolerationOperator = TolerationOperator.EQUAL
    value: str | None = None
    effect: TaintEffect | None = None
    toleration_seconds: int | None = None


@dataclass(frozen=True)
class EnvVar:
    """An extra variable of the server container: a plain `value` or a Secret's key."""

    name: str
    value: str | None = None
    secret: SecretKeyRef | None = None


@dataclass(frozen=True)
class Server:
    """Everything about the model-server pods that is part of a revision.

    The scheduling fields and `env` are None when unset (never empty), so that a spec
    without them keeps the revision it had before they existed (`ADDED_LATER`).
    """

    image: str
    image_pull_policy: PullPolicy
    resources: Resources
    auth: Auth | None = None
    cache: Cache | None = None
    prediction_log: PredictionLog | None = None
    node_selector: dict[str, str] | None = field(default=None, metadata=ADDED_LATER)
    tolerations: tuple[Toleration, ...] | None = field(default=None, metadata=ADDED_LATER)
    env: tuple[EnvVar, ...] | None = field(default=None, metadata=ADDED_LATER)


@dataclass(frozen=True)
class PodInputs:
    """What shapes the model-server pods: a revision is the hash of exactly this."""

    model: ModelSource
    server: Server


@dataclass(frozen=True)
class ScalingPolicy:
    type: ScalingPolicyType
    value: int
    period_seconds: int


@dataclass(frozen=True)
class ScalingRules:
    """One direction of an HPA's behavior (autoscaling/v2 HPAScalingRules); None: the
    HPA's default."""

    stabilization_window_seconds: int | None = None
    select_policy: SelectPolicy | None = None
    policies: tuple[ScalingPolicy, ...] | None = None


@dataclass(frozen=True)
class ScalingBehavior:
    scale_up: ScalingRules | None = None
    scale_down: ScalingRules | None = None


@dataclass(frozen=True)
class Autoscaling:
    max_replicas: int
    min_replicas: int = 1
    target_cpu_utilization: int = 70
    vpa_update_mode: VpaUpdateMode | None = None
    behavior: ScalingBehavior | None = None
    """The HPA's spec.behavior; None: the HPA's defaults."""


@dataclass(frozen=True)
class S3Destination:
    bucket: str
    credentials_secret: str
    prefix: str = ""
    endpoint: str | None = None
    region: str | None = None


@dataclass(frozen=True)
class Backup:
    schedule: str
    destination: S3Destination
    retention_days: int = 7
    time_zone: str | None = None
    suspend: bool = False


@dataclass(frozen=True)
class ServiceMonitorSpec:
    enabled: bool = True
    interval: str | None = None
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class NetworkPolicySpec:
    enabled: bool = True
    ingress_from: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class ForecastModelSpec:
    pod: PodInputs
    replicas: int = 1
    autoscaling: Autoscaling | None = None
    backup: Backup | None = None
    service_monitor: ServiceMonitorSpec = ServiceMonitorSpec()
    network_policy: NetworkPolicySpec = NetworkPolicySpec()
    rollout: RolloutSpec | None = None
    """How a new revision replaces the stable one; None: a plain rolling update."""


@dataclass(frozen=True)
class ObjectRef:
    """The identity of a ForecastModel: what children point their owner reference at."""

    name: str
    namespace: str
    uid: str
    generation: int = 0

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> ObjectRef:
        meta = body["metadata"]
        return cls(meta["name"], meta["namespace"], meta["uid"], meta.get("generation", 0))


@dataclass(frozen=True)
class ForecastModel:
    ref: ObjectRef
    spec: ForecastModelSpec


@dataclass(frozen=True)
class ServerDefaults:
    """The operator's defaults for what a spec leaves out."""

    image: str
    image_pull_policy: PullPolicy = PullPolicy.IF_NOT_PRESENT
    resources: Resources = Resources(
        requests={"cpu": "100m", "memory": "256Mi"}, limits={"memory": "1Gi"}
    )


def parse_forecastmodel(body: Mapping[str, Any], defaults: ServerDefaults) -> ForecastModel:
    """Read and validate a ForecastModel body; raise InvalidSpec naming every bad field."""
    problems: list[str] = []
    ref = ObjectRef.from_body(body)
    if len(ref.name) > MAX_NAME_LENGTH or not _NAME.match(ref.name):
        problems.append(
            f"metadata.name: must be at most {MAX_NAME_LENGTH} characters, start with a letter "
            "and contain only lowercase letters, digits and '-'"
        )
    spec = _parse_spec(_Fields(body.get("spec"), "spec", problems), defaults)
    if problems:
        raise InvalidSpec(problems)
    assert spec is not None
    return ForecastModel(ref, spec)


class _Fields:
    """One object of the spec, read field by field; problems are collected, not raised."""

    def __init__(self, raw: object, path: str, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        if isinstance(raw, Mapping):
            self.raw: Mapping[str, Any] = raw
        else:
            self.raw = {}
            self.problem(None, "must be an object")

    def problem(self, key: str | None, message: str) -> None:
        self.problems.append(f"{self.at(key)}: {message}")

    def at(self, key: str | None) -> str:
        return f"{self.path}.{key}" if key else self.path

    def has(self, key: str) -> bool:
        return self.raw.get(key) is not None

    def child(self, key: str, required: bool = False) -> _Fields | None:
        if not self.has(key):
            if required:
                self.problem(key, "is required")
            return None
        return _Fields(self.raw[key], self.at(key), self.problems)

    def string(
        self,
        key: str,
        *,
        required: bool = False,
        pattern: re.Pattern[str] | None = None,
        max_length: int = 253,
        hint: str = "",
    ) -> str | None:
        value = self.raw.get(key)
        if value is None:
            if required:
                self.problem(key, "is required")
            return None
        if not isinstance(value, str) or not value:
            self.problem(key, "must be a non-empty string")
        elif len(value) > max_length:
            self.problem(key, f"must be at most {max_length} characters")
        elif pattern and not pattern.match(value):
            self.problem(key, hint or f"must match {pattern.pattern}")
        else:
            return value
        return None

    def integer(self, key: str, default: int, *, low: int, high: int) -> int:
        value = self.raw.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.problem(key, f"must be an integer from {low} to {high}")
            return default
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.raw.get(key, default)
        if not isinstance(value, bool):
            self.problem(key, "must be true or false")
            return default
        return value

    def choice(self, key: str, enum: type[_E], default: _E) -> _E:
        value = self.raw.get(key, default)
        try:
            return enum(value)
        except ValueError:
            names = [e.value for e in enum]
            self.problem(
                key,
                f"must be {names[0]} or {names[1]}"
                if len(names) == 2
                else f"must be one of {', '.join(names)}",
            )
            return default

    def string_map(self, key: str, *, pattern: re.Pattern[str] | None = None) -> dict[str, str]:
        value = self.raw.get(key) or {}
        if not isinstance(value, Mapping) or not all(isinstance(v, str) for v in value.values()):
            self.problem(key, "must map names to strings")
            return {}
        for name, text in value.items():
            if pattern and not pattern.match(text):
                self.problem(f"{key}.{name}", f"{text!r} is not a valid value")
        return dict(value)

    def items(self, key: str) -> list[_Fields]:
        """The objects of the list `key`, each read at ``key[i]``; [] when absent."""
        value = self.raw.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self.problem(key, "must be a list")
            return []
        return [
            _Fields(item, f"{self.at(key)}[{i}]", self.problems) for i, item in enumerate(value)
        ]

    def secret_ref(self, key: str, required: bool = False) -> SecretKeyRef | None:
        ref = self.child(key, required)
        if ref is None:
            return None
        name = ref.string("name", required=True, pattern=_SUBDOMAIN, hint="must be a Secret name")
        secret_key = ref.string("key", required=True, pattern=_SECRET_KEY, hint="must be a key")
        return SecretKeyRef(name, secret_key) if name and secret_key else None


def _parse_spec(spec: _Fields, defaults: ServerDefaults) -> ForecastModelSpec | None:
    model = _parse_model(spec.child("model", required=True))
    server_fields = spec.child("server") or _Fields({}, "spec.server", spec.problems)
    server = _parse_server(server_fields, defaults)
    replicas = server_fields.integer("replicas", 1, low=1, high=1000)
    autoscaling = _parse_autoscaling(spec.child("autoscaling"))
    backup = _parse_backup(spec.child("backup"))
    monitoring = spec.child("monitoring")
    service_monitor = _parse_service_monitor(monitoring and monitoring.child("serviceMonitor"))
    network_policy = _parse_network_policy(spec.child("networkPolicy"))
    rollout = _parse_rollout(spec.child("rollout"))
    if backup and server and server.prediction_log is None:
        spec.problem(
            "backup",
            "needs spec.server.predictionLog: a backup is a pg_dump of the prediction-log "
            "database (with the model files); without one there is nothing to restore",
        )
    if model is None or server is None:
        return None
    return ForecastModelSpec(
        pod=PodInputs(model, server),
        replicas=replicas,
        autoscaling=autoscaling,
        backup=backup,
        service_monitor=service_monitor,
        network_policy=network_policy,
        rollout=rollout,
    )


def _parse_rollout(rollout: _Fields | None) -> RolloutSpec | None:
    """The rollout's own parser checks what CEL cannot (conditions, query templates)."""
    if rollout is None:
        return None
    try:
        return parse_rollout(rollout.raw)
    except (RolloutSpecError, TypeError, ValueError) as invalid:
        message = str(invalid)  # the rollout's messages mostly name their field already
        rollout.problems.append(
            message if message.startswith("spec.") else f"spec.rollout: {message}"
        )
        return None


def _parse_model(model: _Fields | None) -> ModelSource | None:
    if model is None:
        return None
    uri = model.string(
        "uri",
        required=True,
        pattern=_MODEL_URI,
        max_length=2048,
        hint="must be s3://<bucket>/<key>, https://..., pvc://<claim>/<path> or file:///<path>",
    )
    version = model.string(
        "version", required=True, pattern=_LABEL_VALUE, max_length=63, hint="must be a label value"
    )
    sha256 = model.string("sha256", pattern=_SHA256, hint="must be 64 lowercase hex characters")
    secret = model.string("credentialsSecret", pattern=_SUBDOMAIN, hint="must be a Secret name")
    if uri is not None:
        scheme = Scheme(uri.partition("://")[0])
        if scheme is not Scheme.FILE and not model.has("sha256"):
            model.problem(
                "sha256", "is required unless the uri is file:// (a mismatch never serves)"
            )
        if secret and scheme not in (Scheme.S3, Scheme.HTTPS):
            model.problem("credentialsSecret", "applies only to s3:// and https:// model URIs")
    contract = _parse_output_contract(model.child("outputContract"))
    if uri is None or version is None:
        return None
    return ModelSource(uri, version, sha256, secret, contract)


def _parse_output_contract(contract: _Fields | None) -> OutputContract | None:
    if contract is None:
        return None
    limit = contract.raw.get("maxAbsValue")
    if limit is not None and (
        isinstance(limit, bool) or not isinstance(limit, int | float) or not 0 < limit < 1e300
    ):
        contract.problem("maxAbsValue", "must be a number above 0")
        limit = None
    return OutputContract(
        non_negative=contract.boolean("nonNegative", False),
        max_abs_value=float(limit) if limit is not None else None,
        on_violation=contract.choice("onViolation", OnViolation, OnViolation.COUNT),
    )


def _parse_server(server: _Fields, defaults: ServerDefaults) -> Server | None:
    image = server.string("image", pattern=_IMAGE, max_length=512, hint="must be an image")
    pull_policy = server.choice("imagePullPolicy", PullPolicy, defaults.image_pull_policy)
    resources = _parse_resources(server.child("resources"), defaults.resources)
    return Server(
        image=image or defaults.image,
        image_pull_policy=pull_policy,
        resources=resources,
        auth=_parse_auth(server.child("auth")),
        cache=_parse_cache(server.child("cache")),
        prediction_log=_parse_prediction_log(server.child("predictionLog")),
        node_selector=_parse_node_selector(server),
        tolerations=_parse_tolerations(server),
        env=_parse_env(server),
    )


def _parse_node_selector(server: _Fields) -> dict[str, str] | None:
    selector = server.string_map("nodeSelector", pattern=_LABEL_VALUE)
    for key in selector:
        if not isinstance(key, str) or not _LABEL_KEY.match(key) or len(key) > 253:
            server.problem(f"nodeSelector.{key}", "is not a valid label key")
    return selector or None


def _parse_tolerations(server: _Fields) -> tuple[Toleration, ...] | None:
    items = server.items("tolerations")
    tolerations = tuple(_parse_toleration(item) for item in items)
    return tolerations or None


def _parse_toleration(toleration: _Fields) -> Toleration:
    key = toleration.string("key", pattern=_LABEL_KEY, hint="must be a label key")
    operator = toleration.choice("operator", TolerationOperator, TolerationOperator.EQUAL)
    value = toleration.raw.get("value")
    if value is not None and (not isinstance(value, str) or not _LABEL_VALUE.match(value)):
        toleration.problem("value", "must be a label value")
        value = None
    effect = (
        toleration.choice("effect", TaintEffect, TaintEffect.NO_SCHEDULE)
        if toleration.has("effect")
        else None
    )
    seconds = (
        toleration.integer("tolerationSeconds", 0, low=0, high=2**31 - 1)
        if toleration.has("tolerationSeconds")
        else None
    )
    if operator is TolerationOperator.EXISTS and value:
        toleration.problem("value", "must be empty when operator is Exists")
    if key is None and operator is TolerationOperator.EQUAL and not toleration.has("key"):
        toleration.problem("operator", "must be Exists when key is empty (it tolerates all)")
    if seconds is not None and effect is not TaintEffect.NO_EXECUTE:
        toleration.problem("tolerationSeconds", "applies only to the effect NoExecute")
    return Toleration(key, operator, value or None, effect, seconds)


def _parse_env(server: _Fields) -> tuple[EnvVar, ...] | None:
    """Extra variables; a server setting only when the server knows it, a secret one only
    from a Secret. (Whether the operator already sets it is the Deployment builder's
    question: `builders.deployment.env_conflicts`.)"""
    variables: list[EnvVar] = []
    seen: set[str] = set()
    for entry in server.items("env"):
        variable = _parse_env_var(entry)
        if variable is None:
            continue
        # pydantic-settings reads PREDICTION_* case-insensitively: so does the duplicate check
        folded = variable.name.upper() if _is_server_variable(variable.name) else variable.name
        if folded in seen:
            entry.problem("name", f"{variable.name} is set twice")
        seen.add(folded)
        variables.append(variable)
    return tuple(variables) or None


def _parse_env_var(entry: _Fields) -> EnvVar | None:
    name = entry.string(
        "name",
        required=True,
        pattern=_ENV_NAME,
        max_length=128,
        hint="must be an environment variable name (letters, digits and '_', not first a digit)",
    )
    value = entry.raw.get("value")
    if value is not None and not isinstance(value, str):
        entry.problem("value", "must be a string")
        value = None
    secret = None
    if entry.has("valueFrom"):
        source = entry.child("valueFrom")
        assert source is not None
        secret = source.secret_ref("secretKeyRef", required=True)
        if set(source.raw) - {"secretKeyRef"}:
            source.problem(None, "only secretKeyRef is supported")
    if (value is None) == (not entry.has("valueFrom")):
        entry.problem(None, "needs exactly one of value and valueFrom")
        return None
    if name is None:
        return None
    if _is_server_variable(name):
        setting = server_contract.setting_of(name)
        if setting is None:
            hint = server_contract.variable_hint(name)
            entry.problem(None, f"{name} is not a server setting{hint}")
            return None
        if value is not None and server_contract.is_secret(setting):
            entry.problem(
                None, f"{name} is a secret: set it with valueFrom.secretKeyRef, never as a value"
            )
            return None
    if value is None and secret is None:
        return None
    return EnvVar(name, value, secret)


def _is_server_variable(name: str) -> bool:
    return name.upper().startswith(server_contract.ENV_PREFIX)


def _parse_resources(resources: _Fields | None, default: Resources) -> Resources:
    if resources is None:
        return default
    parsed = Resources(_quantities(resources, "requests"), _quantities(resources, "limits"))
    for name, limit in parsed.limits.items():
        request = parsed.requests.get(name)
        if request is not None and parse_quantity(request) > parse_quantity(limit):  # type: ignore[operator]
            resources.problem(f"requests.{name}", f"{request} is more than its limit {limit}")
    return parsed


def _quantities(resources: _Fields, key: str) -> dict[str, str]:
    value = resources.raw.get(key) or {}
    if not isinstance(value, Mapping):
        resources.problem(key, "must map resource names to quantities")
        return {}
    parsed = {}
    for name, quantity in value.items():
        if isinstance(quantity, bool) or parse_quantity(quantity) is None:
            resources.problem(
                f"{key}.{name}", f"{quantity!r} is not a quantity such as 500m or 1Gi"
            )
        else:
            parsed[name] = str(quantity)
    return parsed


def _parse_auth(auth: _Fields | None) -> Auth | None:
    if auth is None:
        return None
    api_key = auth.secret_ref("apiKeySecret")
    jwt_fields = auth.child("jwt")
    jwt = _parse_jwt(jwt_fields) if jwt_fields else None
    if not auth.has("apiKeySecret") and jwt_fields is None:
        auth.problem(None, "needs apiKeySecret, jwt or both")
    return Auth(api_key, jwt)


def _parse_jwt(jwt: _Fields) -> JwtAuth | None:
    key = jwt.secret_ref("keySecret", required=True)
    algorithms = jwt.raw.get("algorithms") or []
    if not isinstance(algorithms, list) or not set(algorithms) <= set(_JWT_ALGORITHMS):
        jwt.problem("algorithms", f"must be a list of {', '.join(_JWT_ALGORITHMS)}")
        algorithms = []
    # The server checks every token's aud claim: a token minted for another service must
    # not open this one, so the audience is required rather than optional.
    audience = jwt.string("audience", required=True)
    issuer = jwt.string("issuer")
    if key is None or audience is None:
        return None
    return JwtAuth(key, audience, tuple(algorithms), issuer)


def _parse_cache(cache: _Fields | None) -> Cache | None:
    return _parse_store(cache, Cache, "redisUrlSecret", "ttlSeconds", default=300, high=604800)


def _parse_prediction_log(log: _Fields | None) -> PredictionLog | None:
    return _parse_store(
        log, PredictionLog, "postgresUrlSecret", "retentionDays", default=30, high=3650
    )


def _parse_store(
    store: _Fields | None,
    build: Callable[[SecretKeyRef, int], _S],
    url_secret: str,
    number: str,
    *,
    default: int,
    high: int,
) -> _S | None:
    """A store the server connects to: a required URL Secret and a number from 1 to `high`."""
    if store is None:
        return None
    url = store.secret_ref(url_secret, required=True)
    value = store.integer(number, default, low=1, high=high)
    return build(url, value) if url else None


def _parse_autoscaling(autoscaling: _Fields | None) -> Autoscaling | None:
    if autoscaling is None:
        return None
    if not autoscaling.has("maxReplicas"):
        autoscaling.problem("maxReplicas", "is required")
    maximum = autoscaling.integer("maxReplicas", 1, low=1, high=1000)
    minimum = autoscaling.integer("minReplicas", 1, low=1, high=1000)
    target = autoscaling.integer("targetCPUUtilizationPercentage", 70, low=1, high=100)
    if minimum > maximum:
        autoscaling.problem("minReplicas", f"{minimum} is more than maxReplicas {maximum}")
    vpa = autoscaling.child("vpa")
    mode = vpa.choice("updateMode", VpaUpdateMode, VpaUpdateMode.OFF) if vpa else None
    if mode in (VpaUpdateMode.AUTO, VpaUpdateMode.RECREATE):
        autoscaling.problem(
            "vpa.updateMode",
            "must be Off or Initial: with Auto or Recreate the VPA and the CPU-based HPA fight",
        )
    behavior = autoscaling.child("behavior")
    return Autoscaling(maximum, minimum, target, mode, behavior and _parse_behavior(behavior))


def _parse_behavior(behavior: _Fields) -> ScalingBehavior | None:
    up, down = behavior.child("scaleUp"), behavior.child("scaleDown")
    if up is None and down is None:
        return None
    return ScalingBehavior(up and _parse_scaling_rules(up), down and _parse_scaling_rules(down))


def _parse_scaling_rules(rules: _Fields) -> ScalingRules:
    window = (
        rules.integer("stabilizationWindowSeconds", 0, low=0, high=3600)
        if rules.has("stabilizationWindowSeconds")
        else None
    )
    select = (
        rules.choice("selectPolicy", SelectPolicy, SelectPolicy.MAX)
        if rules.has("selectPolicy")
        else None
    )
    policies = None
    if rules.has("policies"):
        policies = tuple(
            p for p in map(_parse_scaling_policy, rules.items("policies")) if p is not None
        )
        if not rules.raw["policies"]:
            rules.problem("policies", "must list at least one policy (or be left out)")
    return ScalingRules(window, select, policies)


def _parse_scaling_policy(policy: _Fields) -> ScalingPolicy | None:
    for key in ("type", "value", "periodSeconds"):
        if not policy.has(key):
            policy.problem(key, "is required")
    kind = policy.choice("type", ScalingPolicyType, ScalingPolicyType.PODS)
    value = policy.integer("value", 1, low=1, high=2**31 - 1)
    period = policy.integer("periodSeconds", 60, low=1, high=1800)
    return ScalingPolicy(kind, value, period)


def _parse_backup(backup: _Fields | None) -> Backup | None:
    if backup is None:
        return None
    schedule = backup.string("schedule", required=True, max_length=128)
    if schedule and (problem := schedule_problem(schedule)):
        backup.problem("schedule", problem)
    time_zone = backup.string("timeZone", max_length=64)
    if time_zone and not _is_time_zone(time_zone):
        backup.problem("timeZone", f"{time_zone!r} is not an IANA time zone such as Europe/Berlin")
    retention = backup.integer("retentionDays", 7, low=1, high=3650)
    suspend = backup.boolean("suspend", False)
    destination = backup.child("destination", required=True)
    s3 = destination.child("s3", required=True) if destination else None
    target = _parse_s3(s3) if s3 else None
    if schedule is None or target is None:
        return None
    return Backup(schedule, target, retention, time_zone, suspend)


def _parse_s3(s3: _Fields) -> S3Destination | None:
    bucket = s3.string("bucket", required=True, max_length=63)
    secret = s3.string("credentialsSecret", required=True, pattern=_SUBDOMAIN, hint="a Secret name")
    prefix = s3.string("prefix", max_length=512) or ""
    endpoint = s3.string("endpoint", pattern=_URL, max_length=2048, hint="must be an http(s) URL")
    region = s3.string("region", max_length=64)
    if bucket is None or secret is None:
        return None
    return S3Destination(bucket, secret, prefix, endpoint, region)


def _parse_service_monitor(monitor: _Fields | None) -> ServiceMonitorSpec:
    if monitor is None:
        return ServiceMonitorSpec()
    return ServiceMonitorSpec(
        enabled=monitor.boolean("enabled", True),
        interval=monitor.string("interval", pattern=_DURATION, max_length=32, hint="e.g. 30s"),
        labels=monitor.string_map("labels", pattern=_LABEL_VALUE),
    )


def _parse_network_policy(policy: _Fields | None) -> NetworkPolicySpec:
    if policy is None:
        return NetworkPolicySpec()
    peers = policy.raw.get("ingressFrom") or []
    if not isinstance(peers, list) or not all(isinstance(p, Mapping) for p in peers):
        policy.problem("ingressFrom", "must be a list of NetworkPolicy peers")
        peers = []
    return NetworkPolicySpec(policy.boolean("enabled", True), tuple(dict(p) for p in peers))


def _is_time_zone(name: str) -> bool:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True
