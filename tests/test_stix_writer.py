"""The bundle writer's fast path (orjson) gives exactly the bytes of ``json.dumps`` with sorted
keys and indent 2, for every JSON value a bundle can hold, and falls back where it would not."""
from __future__ import annotations

import json

from hypothesis import given, settings, strategies as st

from stix_export.writer import serialize_bundle, serialize_bundle_bytes
from tests.test_stix_export import make_config, make_incident
from stix_export.bundle import incident_bundle


def _reference(value) -> bytes:
    return (json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | _text
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(_json)
def test_same_bytes_as_json_dumps_for_any_json_value(value) -> None:
    assert serialize_bundle_bytes(value) == _reference(value)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.integers(-(2**70), 2**70) | st.booleans(), _json, max_size=4))
def test_same_bytes_as_json_dumps_for_keys_that_are_not_strings(value) -> None:
    assert serialize_bundle_bytes({"objects": [value]}) == _reference({"objects": [value]})


def test_a_real_bundle_and_the_text_form() -> None:
    bundle = incident_bundle(make_incident(), make_config())
    assert serialize_bundle_bytes(bundle) == _reference(bundle)
    assert serialize_bundle(bundle) == _reference(bundle).decode("utf-8")
    # floats (which orjson spells differently, e.g. 1e16) take the json path
    assert serialize_bundle_bytes({"x": 1e16, "y": [0.1]}) == _reference({"x": 1e16, "y": [0.1]})
