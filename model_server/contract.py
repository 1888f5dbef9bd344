"""The model server's contract with whoever starts it: the operator, a chart, a person.

One definition, imported by both sides. The operator's Deployment builder spells no
setting, flag or path of its own: it asks this module, so a renamed setting breaks the
operator's unit tests instead of a user's pod.

- Settings are `ServerSettings`' fields. The environment variable of a field is the
  prefix plus the field's name in capitals (pydantic-settings' rule): ``api_keys`` is
  ``PREDICTION_API_KEYS``. `env_name` gives it and refuses a field that does not exist.
- Secret settings (`is_secret`) are only ever set from a Secret, never as a plain value.
- A few settings are also command-line flags (`CLI_FLAGS`); `cli_args` writes them.
- The server refuses to start on a ``PREDICTION_*`` variable that is no setting
  (`unknown_variables`), naming the closest known one: a misspelt setting is never
  silently dropped. The operator checks a ForecastModel's ``spec.server.env`` the same
  way (`setting_of`, `variable_hint`), before any pod exists.
- `REVISION_HEADER`: the response header naming the revision that answered an inference.
- Paths the kubelet and Prometheus use: `LIVE_PATH`, `READY_PATH`, `METRICS_PATH`.
- The output contract's shape (`OutputContract`, `OnViolation`): the resource's
  ``spec.model.outputContract`` as the operator reads it and the server enforces it.

Nothing here imports more than pydantic: the operator's image has no server extra.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from model_server.settings import ServerSettings

ENV_PREFIX: str = ServerSettings.model_config["env_prefix"]

CLI_FLAGS: tuple[str, ...] = ("model_uri", "model_name", "host", "port", "workers")
"""Settings that are also flags of ``forecast-server`` (``--model-uri``, ...)."""


class OnViolation(StrEnum):
    """What a forecast that breaks the output contract does (``output_on_violation``)."""

    COUNT = "count"
    REJECT = "reject"
    CLAMP = "clamp"


@dataclass(frozen=True)
class OutputContract:
    """What a forecast must look like (``output_*`` settings; `output_contract` checks it)."""

    non_negative: bool = False
    max_abs_value: float | None = None
    on_violation: OnViolation = OnViolation.COUNT


REVISION_HEADER = "x-forecastops-revision"
"""Set on every inference answer (errors included) to the server's ``revision`` setting:
a client, a load test or a rollout test sees which revision served it."""

LIVE_PATH = "/v2/health/live"
READY_PATH = "/v2/health/ready"
METRICS_PATH = "/metrics"


def settings() -> tuple[str, ...]:
    """Every setting's field name."""
    return tuple(ServerSettings.model_fields)


def env_name(setting: str) -> str:
    """The environment variable of `setting`; KeyError naming the closest setting if none."""
    if setting not in ServerSettings.model_fields:
        raise KeyError(f"the model server has no setting {setting!r}{_hint(setting, settings())}")
    return f"{ENV_PREFIX}{setting.upper()}"


def is_secret(setting: str) -> bool:
    """Whether `setting` holds a secret (a key, a URL with a password): never a plain value."""
    env_name(setting)  # raises for no such setting
    return "SecretStr" in str(ServerSettings.model_fields[setting].annotation)


def flag(setting: str) -> str:
    """The command-line flag of `setting` (``model_uri`` -> ``--model-uri``)."""
    if setting not in CLI_FLAGS:
        raise KeyError(f"{setting!r} is not a flag of forecast-server; flags: {CLI_FLAGS}")
    return "--" + setting.replace("_", "-")


def cli_args(**values: object) -> list[str]:
    """The flags for `values`, in `CLI_FLAGS` order: ``cli_args(port=8000)``."""
    unknown = values.keys() - set(CLI_FLAGS)
    if unknown:
        flag(sorted(unknown)[0])  # raises, naming it
    return [
        part
        for setting in CLI_FLAGS
        if setting in values
        for part in (flag(setting), str(values[setting]))
    ]


def setting_of(variable: str) -> str | None:
    """The setting the ``PREDICTION_*`` `variable` sets, None for none. Case does not
    matter: pydantic-settings reads names case-insensitively."""
    upper = variable.upper()
    if not upper.startswith(ENV_PREFIX):
        return None
    name = upper.removeprefix(ENV_PREFIX).lower()
    return name if name in ServerSettings.model_fields else None


def variable_hint(variable: str) -> str:
    """`` (did you mean PREDICTION_X?)`` naming the closest setting's variable, or ""."""
    return _hint(variable.upper(), sorted(env_name(name) for name in settings()))


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """One message per ``PREDICTION_*`` variable of `environ` that is no setting."""
    return [
        f"{variable} is not a setting{variable_hint(variable)}"
        for variable in sorted(environ)
        if variable.upper().startswith(ENV_PREFIX) and setting_of(variable) is None
    ]


def _hint(word: str, candidates: tuple[str, ...] | list[str]) -> str:
    close = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""
