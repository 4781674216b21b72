"""Dead-letter messages name fields and problems, never the record's content (contract §4)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from tests.unit.wire.wire_examples import load, member_key_of, params, raw, space_key_of

from smartgroups.wire import (
    DeadLetter,
    dead_letter_headers,
    decode_group_change,
    decode_member_input,
)
from smartgroups.wire.inputs import MEMBER_TOPICS, PROFILE_FIELDS
from smartgroups.wire.types import STATUSES

SECRET = "ada.secret@example.com"
KEY = b"acme:m42"

VOCABULARY = (
    {"id", "type", "space", "at", "v", "member_id", "profile", "property_id", "question_id"}
    | {"value", *PROFILE_FIELDS, *STATUSES}
    | {kind for kinds in MEMBER_TOPICS.values() for kind in kinds}
    | set(MEMBER_TOPICS)
)
"""Our own words: they may appear in messages even when a record also contains them."""


def strings_in(obj: Any) -> set[str]:
    if isinstance(obj, str):
        return {obj}
    if isinstance(obj, list):
        return set().union(*map(strings_in, obj)) if obj else set()
    if isinstance(obj, dict):
        return set(obj) | (set().union(*map(strings_in, obj.values())) if obj else set())
    return set()


def upsert(**fields: Any) -> dict[str, Any]:
    return {
        "id": "e1",
        "type": "member.upserted",
        "space": "acme",
        "member_id": "m42",
        "profile": {},
        **fields,
    }


SECRET_RECORDS = [
    upsert(profile={"email": SECRET, "status": SECRET}),
    upsert(profile={"email": [SECRET]}),
    upsert(profile={"first_name": {SECRET: SECRET}}),
    upsert(profile={"tags": [SECRET, 7]}),
    upsert(profile={"registered_at": SECRET}),
    upsert(profile=SECRET),
    upsert(profile=[SECRET]),
    upsert(type=SECRET),
    upsert(type="property.set", value=SECRET),
    upsert(space=SECRET.replace("@", " ")),
    upsert(id=SECRET * 20),
    upsert(v=SECRET),
    upsert(at=SECRET),
    upsert(member_id=SECRET.replace(".", ":")),
    upsert(member_id=SECRET),  # a valid id, but the key does not match
    {
        "id": "e1",
        "type": "property.set",
        "space": "acme",
        "member_id": "m42",
        "property_id": SECRET.replace("@", " "),
        "value": {SECRET: [SECRET]},
    },
    {SECRET: SECRET},
    [SECRET],
]


@pytest.mark.parametrize("obj", SECRET_RECORDS)
def test_secrets_never_reach_messages(obj: Any) -> None:
    value = orjson.dumps(obj)
    for topic in MEMBER_TOPICS:
        for key in (KEY, None, SECRET.encode()):
            result = decode_member_input(topic, key, value)
            assert isinstance(result, DeadLetter)
            headers = dead_letter_headers(result, topic, 0, 0)
            assert all(SECRET.encode() not in header for _, header in headers), result
            assert "ada" not in result.message and "example" not in result.message, result
    result = decode_group_change(b"acme", value)
    if isinstance(result, DeadLetter):
        assert SECRET not in result.message


@pytest.mark.parametrize(
    "value", [SECRET.encode(), b'{"email": "' + SECRET.encode() + b'"', SECRET.encode() * 20_000]
)
def test_secrets_in_undecodable_values_never_reach_messages(value: bytes) -> None:
    result = decode_member_input("member-changes", KEY, value)
    assert isinstance(result, DeadLetter)
    assert "ada" not in result.message


@pytest.mark.parametrize("topic", [*MEMBER_TOPICS, "group-changes"])
def test_no_invalid_example_leaks_its_content(topic: str) -> None:
    for param in params(topic, "invalid"):
        path: Path = param.values[0]
        example = load(path)
        if topic == "group-changes":
            result: Any = decode_group_change(space_key_of(example), raw(path))
        else:
            result = decode_member_input(topic, member_key_of(example), raw(path))
        if not isinstance(result, DeadLetter):
            continue
        for text in strings_in(example) - VOCABULARY:
            if len(text) >= 5:
                assert text not in result.message, (path.name, result.message)
