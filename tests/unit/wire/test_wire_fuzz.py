"""Property tests of the edge: the decoders never raise, and agree with the JSON Schemas."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from tests.unit.test_schemas import FORMATS
from tests.unit.wire.wire_examples import schema

from smartgroups.wire import (
    DeadLetter,
    GroupChangeEnvelope,
    decode_group_change,
    decode_member_input,
)
from smartgroups.wire.inputs import MEMBER_TOPICS, PROFILE_FIELDS
from smartgroups.wire.types import STATUSES

CODES = {
    "decode_error",
    "schema_error",
    "key_mismatch",
    "too_large",
    "unknown_type",
    "unsupported_version",
}
TOPICS = st.sampled_from(sorted(MEMBER_TOPICS))
VALIDATORS = {
    topic: Draft202012Validator(schema(f"{topic}.v1.schema.json"), format_checker=FORMATS)
    for topic in MEMBER_TOPICS
}

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


def check(result: object) -> None:
    if isinstance(result, DeadLetter):
        assert result.code in CODES
        assert isinstance(result.message, str) and result.message


@given(TOPICS, st.none() | st.binary(max_size=64), st.none() | st.binary(max_size=512))
def test_member_decoder_never_raises_on_bytes(
    topic: str, key: bytes | None, value: bytes | None
) -> None:
    check(decode_member_input(topic, key, value))
    check(decode_group_change(key, value))


@given(TOPICS, st.none() | st.binary(max_size=16), json_values)
def test_member_decoder_never_raises_on_json(topic: str, key: bytes | None, obj: Any) -> None:
    value = orjson.dumps(obj)
    check(decode_member_input(topic, key, value))
    check(decode_group_change(key, value))


# --- near-valid events: the decoder and the JSON Schema agree ------------------------------------

ids = st.sampled_from(
    [
        "acme",
        "m42",
        "plan",
        "q_sport",
        "a.b@c+d-e_f",
        "x" * 200,
        "x" * 201,
        "",
        "a:b",
        "a b",
        "é",
        "m42\n",
    ]
)
timestamps = st.sampled_from(
    [
        "2026-11-22T10:00:00Z",
        "2026-11-22",
        "2026-02-30",
        "2026-11-22T10:00",
        "2026-11-22T10:00:00+01:00",
        "yesterday",
        "2026-12-31T23:59:60Z",
    ]
)
texts = st.text(max_size=5)
fields_values = st.one_of(
    ids,
    timestamps,
    texts,
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.floats(-2, 2),
    st.lists(texts, max_size=2),
    st.lists(st.integers(0, 2), max_size=2),
    st.just({}),
    st.sampled_from(STATUSES),
    st.sampled_from(sorted(k for ks in MEMBER_TOPICS.values() for k in ks)),
)
profiles = st.dictionaries(
    st.sampled_from([*PROFILE_FIELDS, "nickname"]), fields_values, max_size=4
)
ENVELOPE = [
    "id",
    "type",
    "space",
    "member_id",
    "at",
    "v",
    "profile",
    "property_id",
    "question_id",
    "value",
    "extra",
]


@st.composite
def events(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    topic = draw(TOPICS)
    kind = draw(st.sampled_from(sorted(MEMBER_TOPICS[topic])))
    obj: dict[str, Any] = {
        "id": "e1",
        "type": kind,
        "space": "acme",
        "member_id": "m42",
        "profile": {},
        "property_id": "plan",
        "question_id": "q",
        "value": 1,
    }
    for name in draw(st.lists(st.sampled_from(ENVELOPE), max_size=3, unique=True)):
        if draw(st.booleans()):
            obj.pop(name, None)
        elif name == "profile":
            obj[name] = draw(profiles)
        elif name == "v":
            obj[name] = draw(st.sampled_from([1, 2, 0, 1.0, True, "1", None]))
        elif name == "at":
            obj[name] = draw(timestamps | st.none())
        else:
            obj[name] = draw(fields_values)
    return topic, obj


def strings(obj: Any) -> list[str]:
    if isinstance(obj, str):
        return [obj]
    if isinstance(obj, dict):
        return [s for v in obj.values() for s in strings(v)]
    if isinstance(obj, list):
        return [s for v in obj for s in strings(v)]
    return []


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(events())
def test_decoder_accepts_exactly_what_the_schema_accepts(event: tuple[str, dict[str, Any]]) -> None:
    topic, obj = event
    # Python's re (used by jsonschema) lets "$" match before a final newline; ECMA-262 does not.
    assume(not any(s.endswith("\n") for s in strings(obj)))
    key = f"{obj.get('space')}:{obj.get('member_id')}".encode()
    result = decode_member_input(topic, key, orjson.dumps(obj))
    valid = VALIDATORS[topic].is_valid(obj)
    assert (not isinstance(result, DeadLetter)) == valid, (result, obj)


@given(st.sampled_from(["acme", "a:b", "", "é"]), json_values)
def test_group_changes_envelopes_carry_the_whole_event(space: str, body: Any) -> None:
    obj = {"id": "e1", "type": "group.deleted", "space": space}
    if isinstance(body, dict):
        obj = {**body, **obj}
    result = decode_group_change(space.encode(), orjson.dumps(obj))
    if isinstance(result, GroupChangeEnvelope):
        assert result.event == obj and result.space == space
    else:
        assert result.code == "schema_error"
