"""The Argo CD health check for ForecastModel, run under the real Lua 5.1 interpreter.

Every case in ``health_test.yaml`` (Argo CD's own test format) runs in a sandbox that gives
the script what Argo CD gives it (see ``argocd_sandbox.lua``), under three profiles: Argo CD's
default (useOpenLibs unset), a stricter base-library-only one, and Lua's full standard
libraries (useOpenLibs: true). The answer must be the same under all three.

``python tests/unit/argocd/test_health_lua.py`` regenerates ``deploy/argocd/argocd-cm.yaml``
from ``health.lua``.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from devenv.require import unavailable

ROOT = Path(__file__).resolve().parents[3]
CHECK_DIR = ROOT / "deploy/argocd/health/forecastops.io/ForecastModel"
HEALTH_LUA = CHECK_DIR / "health.lua"
ARGOCD_CM = ROOT / "deploy/argocd/argocd-cm.yaml"
CRD = ROOT / "crds/forecastmodel.yaml"
SANDBOX = Path(__file__).with_name("argocd_sandbox.lua")
PROFILES = ("argocd", "base", "openlibs")
CM_KEY = "resource.customizations.health.forecastops.io_ForecastModel"


# --- running a script the way Argo CD does ------------------------------------------------


@dataclass(frozen=True)
class HealthStatus:
    status: str
    message: str


class LuaScriptError(Exception):
    """The script failed, or returned something Argo CD would reject."""


class _KubernetesYamlLoader(yaml.SafeLoader):
    """YAML as sigs.k8s.io/yaml reads it for Argo CD: timestamps stay strings."""


_KubernetesYamlLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_yaml(path: Path) -> Any:
    return yaml.load(path.read_text(), Loader=_KubernetesYamlLoader)  # a SafeLoader


def lua_interpreter() -> str:
    """The lua5.1 binary; a skip without it, except in CI, where it must be installed."""
    found = shutil.which("lua5.1")
    if found is None:
        unavailable("lua5.1", "install it with make deps (Debian package lua5.1)")
    return found


def lua_string(text: str) -> str:
    """A Lua string literal: printable ASCII as is, every other byte as a decimal escape."""
    out = []
    for byte in text.encode():
        out.append(f"\\{byte:03d}" if byte in b'"\\' or not 32 <= byte < 127 else chr(byte))
    return '"' + "".join(out) + '"'


def to_lua(value: Any, indent: str = "") -> str:
    """A Lua constructor for a JSON-like value, built as Argo CD's decodeValue builds tables.

    Mappings become tables with string keys and sequences arrays from 1. A table cannot hold
    nil, so a null mapping value leaves no entry, as gopher-lua's RawSetH(key, LNil) does.
    """
    inner = indent + "  "
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} has no JSON form")
        return repr(value)
    if isinstance(value, str):
        return lua_string(value)
    if isinstance(value, dict):
        entries = [
            f"{inner}[{lua_string(str(key))}] = {to_lua(item, inner)},"
            for key, item in value.items()
            if item is not None
        ]
    elif isinstance(value, list):
        if any(item is None for item in value):
            raise ValueError("a null inside a list has no faithful Lua form")
        entries = [f"{inner}{to_lua(item, inner)}," for item in value]
    else:
        raise TypeError(f"cannot express a {type(value).__name__} in Lua")
    return "{\n" + "\n".join(entries) + f"\n{indent}}}" if entries else "{}"


def run_health_script(script: Path, obj: Any, profile: str = "argocd") -> HealthStatus:
    """Run ``script`` with the global ``obj`` under ``profile``; the health it returns."""
    lua = lua_interpreter()
    with tempfile.TemporaryDirectory(prefix="argocd-health-") as tmp:
        obj_file = Path(tmp) / "obj.lua"
        obj_file.write_text("return " + to_lua(obj) + "\n")
        proc = subprocess.run(
            [lua, str(SANDBOX), profile, str(script), str(obj_file)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    if proc.returncode != 0:
        raise LuaScriptError(proc.stderr.strip() or f"lua5.1 exited with {proc.returncode}")
    status, _, message = proc.stdout.partition("\n")
    return HealthStatus(status=status, message=message)


def run_snippet(tmp_path: Path, source: str, profile: str, obj: Any = None) -> HealthStatus:
    script = tmp_path / "snippet.lua"
    script.write_text(source)
    return run_health_script(script, obj or {"kind": "ForecastModel"}, profile)


# --- the argocd-cm snippet ----------------------------------------------------------------


def render_argocd_cm() -> str:
    script = HEALTH_LUA.read_text()
    body = "".join(f"    {line}" if line.strip() else "\n" for line in script.splitlines(True))
    return (
        "# Argo CD settings for ForecastModel, to merge into the argocd-cm ConfigMap:\n"
        "#   kubectl -n argocd patch configmap argocd-cm --patch-file deploy/argocd/argocd-cm.yaml\n"
        "# or list it as a patch in the kustomization that installs Argo CD.\n"
        "#\n"
        "# Generated from deploy/argocd/health/forecastops.io/ForecastModel/health.lua by\n"
        "# `python tests/unit/argocd/test_health_lua.py`: edit health.lua, not this file.\n"
        "#\n"
        "# The script needs no Lua standard library, so leave\n"
        "# resource.customizations.useOpenLibs.forecastops.io_ForecastModel unset.\n"
        "apiVersion: v1\n"
        "kind: ConfigMap\n"
        "metadata:\n"
        "  name: argocd-cm\n"
        "  namespace: argocd\n"
        "  labels:\n"
        "    app.kubernetes.io/name: argocd-cm\n"
        "    app.kubernetes.io/part-of: argocd\n"
        "data:\n"
        f"  {CM_KEY}: |\n"
        f"{body}"
    )


# --- the cases of health_test.yaml --------------------------------------------------------


def health_cases() -> list[dict[str, Any]]:
    return load_yaml(CHECK_DIR / "health_test.yaml")["tests"]


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("case", health_cases(), ids=lambda case: Path(case["inputPath"]).stem)
def test_health_check(case: dict[str, Any], profile: str) -> None:
    obj = load_yaml(CHECK_DIR / case["inputPath"])
    expected = case["healthStatus"]

    result = run_health_script(HEALTH_LUA, obj, profile)

    assert result == HealthStatus(expected["status"], expected.get("message", ""))


def test_every_testdata_file_has_a_case() -> None:
    used = {Path(case["inputPath"]).as_posix() for case in health_cases()}
    present = {p.relative_to(CHECK_DIR).as_posix() for p in (CHECK_DIR / "testdata").glob("*.yaml")}
    assert used == present


def test_every_health_status_is_covered() -> None:
    statuses = {case["healthStatus"]["status"] for case in health_cases()}
    assert statuses >= {"Healthy", "Progressing", "Degraded", "Suspended"}


def test_each_phase_has_a_case() -> None:
    crd = yaml.safe_load(CRD.read_text())
    status_schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
    phases = set(status_schema["properties"]["phase"]["enum"])
    covered = {
        (load_yaml(CHECK_DIR / case["inputPath"]).get("status") or {}).get("phase")
        for case in health_cases()
    }
    assert phases <= covered, f"no health case for phase(s) {sorted(phases - covered)}"


# Phases outside today's CRD enum that a fixture may still use: one that a newer operator
# might add (unknown_* fixtures: never called Healthy), and the rollout state machine's
# Promoting (operator/forecastops/rollout/state.py), which the enum does not list yet.
PHASES_BEYOND_THE_CRD = {"Promoting"}


def pruned_fields(value: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """Fields the API server would drop: not in a structural schema that keeps unknowns."""
    if schema.get("x-kubernetes-preserve-unknown-fields") or path == "/metadata":
        return []
    found = []
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            if key in properties:
                found += pruned_fields(item, properties[key], f"{path}/{key}")
            elif isinstance(extra, dict):
                found += pruned_fields(item, extra, f"{path}/{key}")
            else:
                found.append(f"{path}/{key}")
    elif isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            found += pruned_fields(item, schema["items"], f"{path}/{index}")
    return found


def test_testdata_is_valid_against_the_crd() -> None:
    """The health check reads what the API server stores: fixtures must pass the CRD's
    schema and hold no field it would prune."""
    jsonschema_rs = pytest.importorskip("jsonschema_rs")
    crd = yaml.safe_load(CRD.read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1"]
    schema = version["schema"]["openAPIV3Schema"]
    validator = jsonschema_rs.validator_for(schema)
    problems = {}
    for path in sorted((CHECK_DIR / "testdata").glob("*.yaml")):
        obj = load_yaml(path)
        phase = (obj.get("status") or {}).get("phase")
        beyond = path.name.startswith("unknown_") or phase in PHASES_BEYOND_THE_CRD
        errors = [
            f"{'/'.join(map(str, error.instance_path))}: {error.message}"
            for error in validator.iter_errors(obj)
            if not (beyond and list(error.instance_path) == ["status", "phase"])
        ]
        errors += [f"{field}: pruned by the API server" for field in pruned_fields(obj, schema)]
        if errors:
            problems[path.name] = errors
    assert not problems


# --- the sandbox gives exactly what Argo CD gives -----------------------------------------


@pytest.mark.parametrize("profile", ["argocd", "base"])
@pytest.mark.parametrize(
    ("source", "error"),
    [
        ('return {status = string.upper("healthy")}', "attempt to index global 'string'"),
        ('local s = "healthy"\nreturn {status = s:upper()}', "attempt to index local 's'"),
        ("return {status = tostring(math.floor(1.5))}", "attempt to index global 'math'"),
        ("return {status = os.date()}", "attempt to index global 'os'"),
        ('return {status = io.read("*a")}', "attempt to index global 'io'"),
        ("return {status = coroutine.running()}", "attempt to index global 'coroutine'"),
        ('return {status = debug.traceback("x")}', "attempt to index global 'debug'"),
    ],
)
def test_standard_libraries_are_absent(
    tmp_path: Path, profile: str, source: str, error: str
) -> None:
    with pytest.raises(LuaScriptError, match=error):
        run_snippet(tmp_path, source, profile)


def test_the_string_library_works_with_open_libs(tmp_path: Path) -> None:
    source = (
        'local s = "progressing"\nreturn {status = "P" .. s:sub(2), message = string.upper("ok")}'
    )
    assert run_snippet(tmp_path, source, "openlibs") == HealthStatus("Progressing", "OK")


def test_argocd_opens_the_table_library_and_a_safe_os_module(tmp_path: Path) -> None:
    source = (
        "local parts = {}\n"
        'table.insert(parts, "a")\n'
        'table.insert(parts, "b")\n'
        'local os = require("os")\n'
        'return {status = "Healthy", message = table.concat(parts, ",") .. " " .. type(os.time())}'
    )
    assert run_snippet(tmp_path, source, "argocd") == HealthStatus("Healthy", "a,b number")
    with pytest.raises(LuaScriptError, match="attempt to index global 'table'"):
        run_snippet(tmp_path, source, "base")


def test_require_finds_only_the_safe_os_module(tmp_path: Path) -> None:
    with pytest.raises(LuaScriptError, match="module string not found"):
        run_snippet(tmp_path, 'return {status = require("string").upper("x")}', "argocd")
    source = 'return {status = "Healthy", message = tostring(require("os").exit)}'
    assert run_snippet(tmp_path, source, "argocd") == HealthStatus("Healthy", "nil")


def test_base_functions_and_globals(tmp_path: Path) -> None:
    source = (
        "local n = 0\n"
        "for _, v in ipairs({1, 2}) do n = n + v end\n"
        "for _ in pairs({a = 1}) do n = n + 1 end\n"
        'n = n + tonumber("10") + select("#", 1, 2)\n'
        "assert(type(next) == 'function' and type(pcall) == 'function' and _G == _G._G)\n"
        "assert(type(actionParams) == 'table' and obj.kind == 'ForecastModel')\n"
        'return {status = "Healthy", message = tostring(n)}'
    )
    for profile in PROFILES:
        assert run_snippet(tmp_path, source, profile) == HealthStatus("Healthy", "16")


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            'return {status = "Fine"}',
            HealthStatus("Unknown", "Lua returned an invalid health status"),
        ),
        (
            'return {message = "no status"}',
            HealthStatus("Unknown", "Lua returned an invalid health status"),
        ),
        ("return {}", HealthStatus("", "")),
        ("return nil", HealthStatus("", "")),
    ],
)
def test_results_are_read_as_argocd_reads_them(
    tmp_path: Path, source: str, expected: HealthStatus
) -> None:
    assert run_snippet(tmp_path, source, "argocd") == expected


@pytest.mark.parametrize(
    ("source", "error"),
    [
        ('return "Healthy"', "expect table output from Lua script, not string"),
        ('return {status = "Healthy", message = 3}', "must be strings"),
        ('error("boom")', "boom"),
    ],
)
def test_results_argocd_rejects(tmp_path: Path, source: str, error: str) -> None:
    with pytest.raises(LuaScriptError, match=error):
        run_snippet(tmp_path, source, "argocd")


def test_objects_reach_lua_unchanged(tmp_path: Path) -> None:
    obj = {
        "metadata": {"generation": 7, "name": 'quote " and \\ and ü'},
        "status": {"weight": 12.5, "ok": True, "gone": None, "list": ["a", "b"]},
    }
    source = (
        "local s = obj.status\n"
        "return {status = 'Healthy', message = obj.metadata.name .. '|' .. tostring(obj.metadata.generation)"
        " .. '|' .. tostring(s.weight) .. '|' .. tostring(s.ok) .. '|' .. tostring(s.gone)"
        " .. '|' .. s.list[2] .. tostring(#s.list)}"
    )
    result = run_snippet(tmp_path, source, "argocd", obj)
    assert result.message == 'quote " and \\ and ü|7|12.5|true|nil|b2'


# --- the argocd-cm snippet ----------------------------------------------------------------


def test_argocd_cm_snippet_is_the_health_script() -> None:
    assert ARGOCD_CM.read_text() == render_argocd_cm(), (
        "deploy/argocd/argocd-cm.yaml is stale: run python tests/unit/argocd/test_health_lua.py"
    )
    config_map = yaml.safe_load(ARGOCD_CM.read_text())
    assert config_map["data"][CM_KEY] == HEALTH_LUA.read_text()


if __name__ == "__main__":
    ARGOCD_CM.write_text(render_argocd_cm())
    print(f"wrote {ARGOCD_CM.relative_to(ROOT)}", file=sys.stderr)
