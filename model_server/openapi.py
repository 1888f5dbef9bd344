"""The OpenAPI descriptions of bodies that the hot path parses itself (`protocol`).

The hot routes take raw bytes, so FastAPI cannot infer their schemas: these JSON
Schemas are declared with ``openapi_extra`` and ``responses`` instead. Every error,
on every route, is ``{"error": "..."}``.
"""

from __future__ import annotations

from typing import Any

from model_server.contract import REVISION_HEADER
from model_server.protocol import NUMERIC_DATATYPES, OUTPUT_NAME

STRING = {"type": "string"}
NUMBER = {"type": "number"}

ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string", "description": "what is wrong"}},
}

INFER_REQUEST = {
    "type": "object",
    "required": ["inputs"],
    "properties": {
        "id": {**STRING, "description": "echoed in the response"},
        "parameters": {"type": "object"},
        "inputs": {
            "type": "array",
            "minItems": 1,
            "maxItems": 1,
            "items": {
                "type": "object",
                "required": ["name", "shape", "datatype", "data"],
                "properties": {
                    "name": STRING,
                    "shape": {
                        "type": "array",
                        "items": {"type": "integer", "minimum": 0},
                        "minItems": 2,
                        "maxItems": 2,
                        "description": "[rows, features]",
                    },
                    "datatype": {"type": "string", "enum": sorted(NUMERIC_DATATYPES)},
                    "data": {
                        "type": "array",
                        "description": "rows x features numbers, flat or nested row-major",
                        "items": {"anyOf": [NUMBER, {"type": "array", "items": NUMBER}]},
                    },
                    "parameters": {"type": "object"},
                },
            },
        },
        "outputs": {"type": "array", "items": {"type": "object"}},
    },
    "example": {
        "id": "42",
        "inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}],
    },
}


def _model_answer(field: str, schema: dict[str, Any]) -> dict[str, Any]:
    """A response the model gave: which model and version answered, the echoed id, `field`."""
    return {
        "type": "object",
        "required": ["model_name", "model_version", field],
        "properties": {"model_name": STRING, "model_version": STRING, "id": STRING, field: schema},
    }


INFER_RESPONSE = _model_answer(
    "outputs",
    {
        "type": "array",
        "items": {
            "type": "object",
            "required": ["name", "shape", "datatype", "data"],
            "properties": {
                "name": {"type": "string", "enum": [OUTPUT_NAME]},
                "shape": {"type": "array", "items": {"type": "integer"}},
                "datatype": {"type": "string", "enum": ["FP32"]},
                "data": {"type": "array", "items": NUMBER},
            },
        },
    },
)

FORECAST_REQUEST = {
    "type": "object",
    "required": ["instances"],
    "properties": {
        "id": {**STRING, "description": "echoed in the response"},
        "instances": {
            "type": "array",
            "description": "one object per row, naming every feature of the model exactly "
            "once (GET /v2/models/{name} lists them under parameters.feature_names)",
            "items": {
                "type": "object",
                "properties": {
                    "series_id": {
                        **STRING,
                        "description": "the series this row forecasts (with target, or neither)",
                    },
                    "target": {
                        **STRING,
                        "description": "the period it forecasts, ISO 8601 (e.g. 2026-12-05); "
                        "logged with the prediction to be joined with actuals",
                    },
                },
                "additionalProperties": NUMBER,
            },
        },
    },
    "example": {
        "id": "42",
        "instances": [
            {"series_id": "store-1/item-9", "target": "2026-12-05", "lag_1": 4, "lag_7": 11}
        ],
    },
}

ACTUALS_REQUEST = {
    "type": "object",
    "required": ["actuals"],
    "properties": {
        "actuals": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["series_id", "target", "value"],
                "properties": {
                    "series_id": STRING,
                    "target": {**STRING, "description": "ISO 8601 date or time"},
                    "value": NUMBER,
                    "censored": {"type": "boolean", "description": "a stock-out: left out"},
                },
            },
        }
    },
    "example": {"actuals": [{"series_id": "store-1/item-9", "target": "2026-12-05", "value": 41}]},
}

ACTUALS_RESPONSE = {
    "type": "object",
    "required": ["stored"],
    "properties": {"stored": {"type": "integer"}},
}

FORECAST_RESPONSE = _model_answer(
    "predictions", {"type": "array", "items": NUMBER, "description": "in row order"}
)

MODEL_METADATA = {
    "type": "object",
    "required": ["name", "versions", "platform", "inputs", "outputs"],
    "properties": {
        "name": STRING,
        "versions": {"type": "array", "items": STRING},
        "platform": STRING,
        "inputs": {"type": "array", "items": {"type": "object"}},
        "outputs": {"type": "array", "items": {"type": "object"}},
        "parameters": {"type": "object"},
    },
}

SECURITY_SCHEMES = {
    "ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
    "Bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
}

_ERROR_DESCRIPTIONS = {
    400: "malformed JSON or an invalid request (the message names the problem)",
    401: "missing or wrong credentials",
    404: "no such model (for actuals: no prediction log to keep them in)",
    413: "body or batch too large",
    503: "the model is not ready (for actuals: their database is unavailable; send again)",
}


def json_body(schema: dict[str, Any], description: str = "") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """Documented error responses; "4XX" also stops FastAPI from inventing a 422."""
    documented: dict[int | str, dict[str, Any]] = {
        code: json_body(ERROR, _ERROR_DESCRIPTIONS[code]) for code in codes
    }
    documented["4XX"] = json_body(ERROR, "client error")
    return documented


def answered_by(response: dict[str, Any]) -> dict[str, Any]:
    """`response` documented with the header naming the revision that answered."""
    header = {"description": "the revision that answered (its setting `revision`)"}
    return {**response, "headers": {REVISION_HEADER: {**header, "schema": STRING}}}


def request_body(schema: dict[str, Any], *, path_name: bool) -> dict[str, Any]:
    """``openapi_extra`` for a hot route: its body, and its ``{name}`` path parameter."""
    extra: dict[str, Any] = {"requestBody": {"required": True, **json_body(schema)}}
    if path_name:
        extra["parameters"] = [{"name": "name", "in": "path", "required": True, "schema": STRING}]
    return extra


def security(api_key: bool, bearer: bool) -> list[dict[str, list[str]]]:
    """Alternatives: either scheme is enough."""
    return [*([{"ApiKey": []}] if api_key else []), *([{"Bearer": []}] if bearer else [])]
