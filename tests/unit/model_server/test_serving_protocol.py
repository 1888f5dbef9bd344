"""Decoding and encoding request bodies: every bad body names its problem."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import numpy as np
import orjson
import pytest

from model_server.errors import InvalidInput, MalformedJSON
from model_server.protocol import (
    RowKeys,
    decode_forecast_request,
    decode_infer_request,
    encode_forecast_response,
    encode_infer_response,
)

FEATURES = ("lag_1", "lag_7", "price")


def infer_body(
    data: object, shape: object = (2, 3), datatype: str = "FP32", **extra: object
) -> bytes:
    tensor = {"name": "input", "shape": list(shape) if isinstance(shape, tuple) else shape}
    tensor |= {"datatype": datatype, "data": data}
    return orjson.dumps({"inputs": [tensor], **extra})


@pytest.mark.parametrize(
    "data", [[1, 2, 3, 4, 5, 6], [[1, 2, 3], [4, 5, 6]], [1.0, 2, 3.5, 4, 5, 6]]
)
def test_infer_request_flat_or_nested(data: list[object]) -> None:
    request = decode_infer_request(infer_body(data, id="req-1"))
    assert request.id == "req-1"
    assert request.inputs.dtype == np.float32
    assert request.inputs.shape == (2, 3)
    assert request.inputs[1, 0] == 4


def test_infer_request_without_id() -> None:
    assert decode_infer_request(infer_body([1, 2, 3, 4, 5, 6])).id is None


@pytest.mark.parametrize("datatype", ["FP64", "INT64", "UINT8", "FP16"])
def test_numeric_datatypes_become_float32(datatype: str) -> None:
    request = decode_infer_request(infer_body([1, 2, 3, 4, 5, 6], datatype=datatype))
    assert request.inputs.dtype == np.float32


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "request body is empty"),
        (b"{", "malformed JSON"),
        (b'{"inputs": [NaN]}', "NaN and Infinity are not JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'{"inputs": []}', '"inputs" must be a non-empty list'),
        (b'{"inputs": {}}', '"inputs" must be a non-empty list'),
        (b'{"inputs": [1]}', "inputs[0] must be an object"),
        (b'{"inputs": [{"shape": [1, 1], "datatype": "FP32", "data": [1]}]}', "name must be"),
        (
            infer_body(["a", "b", "c", "d", "e", "f"], datatype="BYTES"),
            "unsupported datatype 'BYTES'",
        ),
        (infer_body([True] * 6, datatype="BOOL"), "unsupported datatype 'BOOL'"),
        (infer_body(["1", "2", "3", "4", "5", "6"]), "data must be numbers, got strings"),
        (infer_body([1, None, 3, 4, 5, 6]), "got nulls or mixed values"),
        (infer_body([True] * 6), "got booleans"),
        (infer_body([[1, 2, 3], [4, 5]]), "lists of equal length"),
        (infer_body({"a": 1}), "data must be a list"),
        (infer_body([1, 2, 3, 4, 5, 6], shape=(6,)), "shape must be [rows, features]"),
        (infer_body([1, 2, 3, 4, 5, 6], shape=(2, -3)), "shape must be [rows, features]"),
        (infer_body([1, 2, 3, 4, 5, 6], shape="2x3"), "shape must be [rows, features]"),
        (infer_body([1, 2, 3, 4, 5], shape=(2, 3)), "shape [2, 3] needs 6 values, data has 5"),
        (infer_body([1, 2, 3, 4, 5, 6], id=7), '"id" must be a string'),
    ],
)
def test_bad_infer_requests_name_the_problem(body: bytes, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        decode_infer_request(body)
    assert message in caught.value.message


def test_two_input_tensors_are_refused() -> None:
    tensor = {"name": "a", "shape": [1, 1], "datatype": "FP32", "data": [1]}
    with pytest.raises(InvalidInput, match="exactly one input tensor"):
        decode_infer_request(orjson.dumps({"inputs": [tensor, tensor]}))


def test_malformed_json_is_its_own_error() -> None:
    with pytest.raises(MalformedJSON):
        decode_infer_request(b"{'single': 'quotes'}")


def test_out_of_float32_range_becomes_inf_for_the_finiteness_check() -> None:
    request = decode_infer_request(infer_body([1e300, 2, 3, 4, 5, 6]))
    assert np.isinf(request.inputs[0, 0])


def test_forecast_rows_follow_the_model_feature_order() -> None:
    rows = [{"price": 2.5, "lag_7": 7, "lag_1": 1}, {"lag_1": 10, "lag_7": 70, "price": 3}]
    request = decode_forecast_request(orjson.dumps({"id": "f", "instances": rows}), FEATURES)
    assert request.id == "f"
    np.testing.assert_array_equal(request.inputs, [[1, 7, 2.5], [10, 70, 3]])
    assert request.inputs.dtype == np.float32


def test_forecast_empty_instances_is_an_empty_batch() -> None:
    request = decode_forecast_request(b'{"instances": []}', FEATURES)
    assert request.inputs.shape == (0, 3)


@pytest.mark.parametrize(
    ("instances", "message"),
    [
        ({"lag_1": 1}, '"instances" must be a list'),
        ([[1, 2, 3]], "instances[0] must be an object"),
        ([{"lag_1": 1, "lag_7": 2}], "instances[0] is missing feature(s) ['price']"),
        (
            [{"lag_1": 1, "lag_7": 2, "price": 3}, {"lag_1": 1, "lag_7": 2, "price": 3, "prce": 3}],
            "instances[1] has unknown feature(s) ['prce']",
        ),
        ([{"lag_1": 1, "lag_7": "2", "price": 3}], 'instances[0].lag_7 must be a number, got "2"'),
        (
            [{"lag_1": 1, "lag_7": 2, "price": None}],
            "instances[0].price must be a number, got null",
        ),
        ([{"lag_1": [1], "lag_7": 2, "price": 3}], "instances[0].lag_1 must be a number"),
    ],
)
def test_bad_forecast_rows_name_the_problem(instances: object, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        decode_forecast_request(orjson.dumps({"instances": instances}), FEATURES)
    assert message in caught.value.message


def test_infer_response_shape() -> None:
    body = encode_infer_response("forecast", "1", "r", np.array([1.5, 2.25], dtype=np.float32))
    assert orjson.loads(body) == {
        "model_name": "forecast",
        "model_version": "1",
        "id": "r",
        "outputs": [{"name": "predictions", "shape": [2], "datatype": "FP32", "data": [1.5, 2.25]}],
    }


def test_forecast_response_without_id() -> None:
    body = encode_forecast_response("forecast", "2", None, np.array([3.0], dtype=np.float32))
    assert orjson.loads(body) == {
        "model_name": "forecast",
        "model_version": "2",
        "predictions": [3.0],
    }


# --- series and target period per row -------------------------------------------------------
def test_forecast_rows_may_name_their_series_and_target() -> None:
    body = {
        "instances": [
            {"series_id": "store-1/item-9", "target": "2026-12-05", "a": 1, "b": 2},
            {"b": 4, "a": 3, "target": "2026-12-06T12:00:00+02:00", "series_id": "store-2"},
        ]
    }
    decoded = decode_forecast_request(orjson.dumps(body), ("a", "b"))
    np.testing.assert_array_equal(decoded.inputs, np.array([[1, 2], [3, 4]], np.float32))
    assert decoded.keys == RowKeys(
        ("store-1/item-9", "store-2"),
        (datetime(2026, 12, 5, tzinfo=UTC), datetime(2026, 12, 6, 10, tzinfo=UTC)),
    )


def test_infer_parameters_may_name_series_and_targets() -> None:
    tensor = {"name": "input", "shape": [2, 1], "datatype": "FP32", "data": [1, 2]}
    parameters = {"series_ids": ["x", "y"], "targets": ["2026-01-01", "2026-01-02"]}
    decoded = decode_infer_request(orjson.dumps({"inputs": [tensor], "parameters": parameters}))
    assert decoded.keys is not None and decoded.keys.series == ("x", "y")
    without = decode_infer_request(orjson.dumps({"inputs": [tensor], "parameters": {"x": 1}}))
    assert without.keys is None


@pytest.mark.parametrize(
    ("instances", "message"),
    [
        ([{"a": 1, "series_id": "s", "target": "2026-01-01"}, {"a": 2}],
         "give 'series_id' and 'target' in every instance or in none (1 of 2 have them)"),
        ([{"a": 1, "series_id": "s"}], "instances[0]: target must be an ISO 8601 date or time"),
        ([{"a": 1, "series_id": "s", "target": "soon"}], 'got "soon"'),
        ([{"a": 1, "series_id": "", "target": "2026-01-01"}],
         "instances[0]: series_id must be a non-empty string"),
        ([{"a": 1, "series_id": 7, "target": "2026-01-01"}], "series_id must be a non-empty"),
    ],
)  # fmt: skip
def test_bad_keys_name_the_row(instances: object, message: str) -> None:
    with pytest.raises(InvalidInput, match=re.escape(message)):
        decode_forecast_request(orjson.dumps({"instances": instances}), ("a",))


def test_v2_keys_need_one_per_row() -> None:
    tensor = {"name": "input", "shape": [2, 1], "datatype": "FP32", "data": [1, 2]}
    body = {"inputs": [tensor], "parameters": {"series_ids": ["x"], "targets": ["2026-01-01"]}}
    with pytest.raises(InvalidInput, match=r"parameters.series_ids must list one value per row"):
        decode_infer_request(orjson.dumps(body))


def test_a_feature_named_like_a_key_stays_a_feature() -> None:
    decoded = decode_forecast_request(orjson.dumps({"instances": [{"target": 3.0}]}), ("target",))
    assert decoded.inputs.tolist() == [[3.0]] and decoded.keys is None
