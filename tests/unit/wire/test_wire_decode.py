"""``smartgroups.wire.decode``: every dead-letter code, the order of the checks, the examples."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from tests.unit.wire.wire_examples import expected, load, member_key_of, params, raw, space_key_of

from smartgroups.wire import (
    MAX_VALUE_BYTES,
    DeadLetter,
    GroupChangeEnvelope,
    decode_group_change,
    decode_member_input,
)
from smartgroups.wire.models import (
    AnswerSet,
    AnswerUnset,
    MemberDeleted,
    MemberUpserted,
    PropertySet,
    PropertyUnset,
)

MEMBER_TOPICS = ["member-changes", "property-changes", "form-answers"]
KEY = b"acme:m42"


def record(**fields: Any) -> bytes:
    base = {"id": "e1", "type": "member.deleted", "space": "acme", "member_id": "m42"}
    return orjson.dumps({**base, **fields})


def dead(result: object) -> DeadLetter:
    assert isinstance(result, DeadLetter), result
    return result


# --- the labelled examples -------------------------------------------------------------------


@pytest.mark.parametrize("topic", MEMBER_TOPICS)
def test_valid_examples_decode(topic: str) -> None:
    for param in params(topic, "valid"):
        path: Path = param.values[0]
        obj = load(path)
        event = decode_member_input(topic, member_key_of(obj), raw(path))
        assert not isinstance(event, DeadLetter), (path.name, event)
        assert (event.id, event.type, event.space, event.member_id) == (
            obj["id"],
            obj["type"],
            obj["space"],
            obj["member_id"],
        )


@pytest.mark.parametrize("topic", MEMBER_TOPICS)
def test_invalid_examples_are_dead_lettered_with_their_code(topic: str) -> None:
    for param in params(topic, "invalid"):
        path: Path = param.values[0]
        result = decode_member_input(topic, member_key_of(load(path)), raw(path))
        assert isinstance(result, DeadLetter), path.name
        assert result.code == expected(path), (path.name, result)


@pytest.mark.parametrize("path", params("group-changes", "valid"))
def test_valid_group_change_examples_decode(path: Path) -> None:
    obj = load(path)
    envelope = decode_group_change(space_key_of(obj), raw(path))
    assert envelope == GroupChangeEnvelope(obj["id"], obj["type"], obj["space"], obj)


@pytest.mark.parametrize("path", params("group-changes", "invalid"))
def test_invalid_group_change_examples(path: Path) -> None:
    """Envelope problems are dead-lettered; command problems pass to ``parse_command``."""
    result = decode_group_change(space_key_of(load(path)), raw(path))
    if expected(path) in ("invalid", "triggers_immutable"):
        assert isinstance(result, GroupChangeEnvelope), result
    else:
        assert dead(result).code == expected(path)


# --- too_large and decode_error ----------------------------------------------------------------


def padded(size: int) -> bytes:
    """A valid member.deleted value of exactly ``size`` bytes (an ignored ``pad`` field)."""
    empty = record(pad="")
    return record(pad="x" * (size - len(empty)))


def test_value_of_exactly_256_kib_is_accepted() -> None:
    value = padded(MAX_VALUE_BYTES)
    assert len(value) == MAX_VALUE_BYTES == 262_144
    assert isinstance(decode_member_input("member-changes", KEY, value), MemberDeleted)


def test_value_over_256_kib_is_too_large_before_anything_else() -> None:
    assert dead(decode_member_input("member-changes", None, padded(MAX_VALUE_BYTES + 1))).code == (
        "too_large"
    )
    assert dead(decode_member_input("member-changes", KEY, b"\xff" * 300_000)).code == "too_large"
    assert dead(decode_group_change(b"acme", b" " * (MAX_VALUE_BYTES + 1))).code == "too_large"


@pytest.mark.parametrize(
    "value",
    [
        None,
        b"",
        b"\xff\xfe",
        b'{"id": "e1", "type": "member.deleted", "space": "acme", "member_id": "m\xe9"}',
        b"\xef\xbb\xbf{}",
        b"{",
        b'{"id": "e1"} trailing',
        b"NaN",
        b'"a string"',
        b"[1, 2]",
        b"null",
        b"42",
        b"[" * 2000 + b"]" * 2000,
        b'{"a": 1e400}',
    ],
)
def test_undecodable_values(value: bytes | None) -> None:
    assert dead(decode_member_input("member-changes", KEY, value)).code == "decode_error"
    assert dead(decode_group_change(b"acme", value)).code == "decode_error"


# --- schema_error: envelope -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"id": None}, "id: must be a string"),
        ({"id": ""}, "id: must be 1 to 200 characters"),
        ({"id": "e" * 201}, "id: must be 1 to 200 characters"),
        ({"type": 7}, "type: must be a string"),
        ({"type": "x" * 201}, "type: must be 1 to 200 characters"),
        ({"space": ["acme"]}, "space: must be a string"),
        ({"space": "acme:eu"}, "space: must match ^[A-Za-z0-9_.@+-]{1,200}$"),
        ({"space": "acme\n"}, "space: must match ^[A-Za-z0-9_.@+-]{1,200}$"),
        ({"space": ""}, "space: must match ^[A-Za-z0-9_.@+-]{1,200}$"),
        ({"v": "1"}, "v: must be an integer"),
        ({"v": True}, "v: must be an integer"),
        ({"v": None}, "v: must be an integer"),
        ({"v": 1.5}, "v: must be an integer"),
    ],
)
def test_envelope_errors(fields: dict[str, Any], message: str) -> None:
    result = dead(decode_member_input("member-changes", KEY, record(**fields)))
    assert result == DeadLetter("schema_error", message)
    assert dead(decode_group_change(b"acme", record(**fields))) == result


@pytest.mark.parametrize("name", ["id", "type", "space"])
def test_missing_envelope_field(name: str) -> None:
    obj = {"id": "e1", "type": "member.deleted", "space": "acme", "member_id": "m42"}
    del obj[name]
    letter = DeadLetter("schema_error", f"{name}: required")
    assert decode_member_input("member-changes", KEY, orjson.dumps(obj)) == letter
    assert decode_group_change(b"acme", orjson.dumps(obj)) == letter


# --- unsupported_version ----------------------------------------------------------------------


@pytest.mark.parametrize("version", [0, 2, -1, 2**63 - 1])
def test_other_major_versions(version: int) -> None:
    assert dead(decode_member_input("member-changes", KEY, record(v=version))).code == (
        "unsupported_version"
    )
    assert dead(decode_group_change(b"acme", record(v=version))).code == "unsupported_version"


def test_huge_version_number() -> None:
    value = record()[:-1] + b',"v":1000000000000000000000000000000}'
    assert dead(decode_member_input("member-changes", KEY, value)).code == "unsupported_version"


def test_version_one_in_any_json_spelling() -> None:
    for value in (
        record(),
        record(v=1),
        b'{"id":"e1","type":"member.deleted","space":"acme","member_id":"m42","v":1.0}',
    ):
        event = decode_member_input("member-changes", KEY, value)
        assert isinstance(event, MemberDeleted)
        assert event.v == 1


def test_version_is_checked_before_the_type() -> None:
    result = decode_member_input("member-changes", KEY, record(type="member.merged", v=2))
    assert dead(result).code == "unsupported_version"


# --- unknown_type -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("topic", "kind", "message"),
    [
        ("member-changes", "member.merged", "type: not an event type of member-changes"),
        (
            "member-changes",
            "answer.set",
            "type: not an event type of member-changes (it is a form-answers type)",
        ),
        (
            "property-changes",
            "member.upserted",
            "type: not an event type of property-changes (it is a member-changes type)",
        ),
        (
            "form-answers",
            "property.unset",
            "type: not an event type of form-answers (it is a property-changes type)",
        ),
        ("form-answers", "", "type: must be 1 to 200 characters"),
    ],
)
def test_unknown_types(topic: str, kind: str, message: str) -> None:
    result = dead(decode_member_input(topic, KEY, record(type=kind)))
    assert result.message == message
    assert result.code == ("schema_error" if kind == "" else "unknown_type")


def test_unknown_type_comes_before_field_errors() -> None:
    result = decode_member_input("member-changes", KEY, record(type="member.merged", member_id=1))
    assert dead(result).code == "unknown_type"


def test_group_changes_never_dead_letter_an_unknown_type() -> None:
    value = record(type="group.renamed", group_id=["not", "an", "id"])
    envelope = decode_group_change(b"acme", value)
    assert isinstance(envelope, GroupChangeEnvelope)
    assert envelope.type == "group.renamed"
    assert envelope.event["group_id"] == ["not", "an", "id"]


# --- schema_error: fields ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("topic", "fields", "message"),
    [
        ("member-changes", {"member_id": None}, "member.deleted: member_id: must be a string"),
        (
            "member-changes",
            {"type": "member.upserted"},
            "member.upserted: profile: required",
        ),
        (
            "member-changes",
            {"type": "member.upserted", "profile": {"status": "active"}},
            "member.upserted: profile.status: must be one of 'accepted', 'invited', 'pending', "
            "'deactivated', 'unsubscribed', 'declined' or 'rejected'",
        ),
        (
            "member-changes",
            {"type": "member.upserted", "profile": {"tags": ["a", 1]}},
            "member.upserted: profile.tags[1]: must be a string",
        ),
        (
            "member-changes",
            {"type": "member.upserted", "profile": {"last_active_at": 1763805600}},
            "member.upserted: profile.last_active_at: must be a string",
        ),
        (
            "member-changes",
            {"type": "member.upserted", "profile": {"registered_at": "2026-11-22 10:00"}},
            "member.upserted: profile.registered_at: must be an RFC 3339 date-time or date",
        ),
        (
            "member-changes",
            {"at": "2026-11-22T10:00:00"},
            "member.deleted: at: must be an RFC 3339 date-time or date",
        ),
        (
            "member-changes",
            {"at": "2026-11-22T10:00:00Z\n"},
            "member.deleted: at: must be an RFC 3339 date-time or date",
        ),
        (
            "member-changes",
            {"at": "2100-02-29"},
            "member.deleted: at: must be an RFC 3339 date-time or date",
        ),
        (
            "property-changes",
            {"type": "property.set", "property_id": "p", "value": {"a": 1}},
            "property.set: value: must be a string, number, boolean, list of strings or null",
        ),
        (
            "property-changes",
            {"type": "property.set", "property_id": "p", "value": ["a", None]},
            "property.set: value: must be a string, number, boolean, list of strings or null",
        ),
        ("form-answers", {"type": "answer.unset"}, "answer.unset: question_id: required"),
        (
            "form-answers",
            {"type": "answer.unset", "question_id": "q" * 201},
            "answer.unset: question_id: must match ^[A-Za-z0-9_.@+-]{1,200}$",
        ),
    ],
)
def test_field_errors(topic: str, fields: dict[str, Any], message: str) -> None:
    assert decode_member_input(topic, KEY, record(**fields)) == DeadLetter("schema_error", message)


def test_many_field_errors_are_summarised() -> None:
    profile = {"first_name": 1, "last_name": 2, "email": 3, "title": 4, "role": 5}
    result = dead(
        decode_member_input("member-changes", KEY, record(type="member.upserted", profile=profile))
    )
    assert result.message.endswith("; and 2 more")
    assert result.message.count("must be a string") == 3


def test_field_errors_come_before_the_key() -> None:
    result = decode_member_input("member-changes", None, record(member_id="m 42"))
    assert dead(result).code == "schema_error"


# --- key_mismatch -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [None, b"", b"acme", b"acme:m43", b"acme:m42 ", b"ACME:m42", b"acme:m42:x", b"\xff", b"m42"],
)
def test_member_key_mismatch(key: bytes | None) -> None:
    assert dead(decode_member_input("member-changes", key, record())).code == "key_mismatch"


@pytest.mark.parametrize("key", [None, b"", b"acme:m42", b"Acme", b"acme "])
def test_space_key_mismatch(key: bytes | None) -> None:
    assert dead(decode_group_change(key, record(type="group.deleted"))).code == "key_mismatch"


def test_keys_that_match() -> None:
    assert isinstance(decode_member_input("member-changes", b"acme:m42", record()), MemberDeleted)
    assert isinstance(decode_group_change(b"acme", record()), GroupChangeEnvelope)


# --- results ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("topic", "fields", "model"),
    [
        ("member-changes", {"type": "member.upserted", "profile": {}}, MemberUpserted),
        ("member-changes", {}, MemberDeleted),
        ("property-changes", {"type": "property.set", "property_id": "p", "value": 1}, PropertySet),
        ("property-changes", {"type": "property.unset", "property_id": "p"}, PropertyUnset),
        ("form-answers", {"type": "answer.set", "question_id": "q", "value": None}, AnswerSet),
        ("form-answers", {"type": "answer.unset", "question_id": "q"}, AnswerUnset),
    ],
)
def test_each_type_decodes_to_its_model(topic: str, fields: dict[str, Any], model: type) -> None:
    assert type(decode_member_input(topic, KEY, record(**fields))) is model


def test_unknown_topic_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="not a member-keyed input topic"):
        decode_member_input("group-changes", KEY, record())
