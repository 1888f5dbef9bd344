"""The metadata contract between training and the server."""

from __future__ import annotations

import orjson
import pytest

from model_server.modelmeta import (
    KEY_FEATURES,
    KEY_GOLDEN,
    KEY_METRICS,
    KEY_VERSION,
    Golden,
    MetadataError,
    ModelMetadata,
    build_metadata_props,
    parse_metadata_props,
)

META = ModelMetadata(
    feature_names=("a", "b"),
    version="2",
    metrics={"wape": 0.4, "mae": 3.0},
    golden=Golden(inputs=((1.0, 2.0), (3.0, 4.0)), outputs=(0.5, 0.25)),
    training={"trees": 10},
    created_at="2024-01-01T00:00:00+00:00",
)


def test_round_trip() -> None:
    props = build_metadata_props(META)
    assert all(isinstance(v, str) for v in props.values())
    assert parse_metadata_props(props, n_features=2) == META


def test_a_model_without_our_keys_still_loads() -> None:
    meta = parse_metadata_props({}, n_features=3)
    assert meta.feature_names == ("f0", "f1", "f2")
    assert meta.version == "1"
    assert meta.golden is None


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({KEY_FEATURES: '["a"]'}, "must list 2 non-empty names"),
        ({KEY_FEATURES: '["a", "a"]'}, "duplicate names"),
        ({KEY_FEATURES: '["a", ""]'}, "non-empty names"),
        ({KEY_FEATURES: "{not json"}, "is not valid JSON"),
        ({KEY_FEATURES: '{"a": 1}'}, "must be a JSON list"),
        ({KEY_METRICS: '{"wape": "low"}'}, "must map names to numbers"),
        ({KEY_GOLDEN: '{"inputs": [[1, 2]], "outputs": []}'}, "as many outputs as input rows"),
        ({KEY_GOLDEN: '{"inputs": [[1]], "outputs": [1]}'}, "each row 2 wide"),
        ({KEY_GOLDEN: '{"inputs": [["x", 1]], "outputs": [1]}'}, "numeric inputs"),
        ({KEY_GOLDEN: '{"inputs": [[1e999, 1]], "outputs": [1]}'}, "not valid JSON"),
    ],
)
def test_malformed_metadata_is_refused(changes: dict[str, str], message: str) -> None:
    props = build_metadata_props(META) | changes
    with pytest.raises(MetadataError, match=message.replace("(", r"\(")):
        parse_metadata_props(props, n_features=2)


def test_empty_version_defaults() -> None:
    props = build_metadata_props(META) | {KEY_VERSION: ""}
    assert parse_metadata_props(props, n_features=2).version == "1"


def test_golden_inputs_must_be_finite() -> None:
    golden = orjson.dumps({"inputs": [[1, 2]], "outputs": [1]}).decode().replace("1,2", "1,1e400")
    with pytest.raises(MetadataError):
        parse_metadata_props(build_metadata_props(META) | {KEY_GOLDEN: golden}, n_features=2)
