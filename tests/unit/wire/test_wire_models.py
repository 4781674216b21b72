"""``smartgroups.wire.models`` and ``encode``: partial updates, exact value types, and outputs
that serialise to exactly the contract's JSON and validate against the output schemas."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest
from jsonschema import Draft202012Validator
from pydantic import ValidationError
from tests.unit.wire.wire_examples import load, params, schema

from smartgroups.wire import (
    DeadLetter,
    change_id,
    dead_letter_headers,
    encode,
    member_key,
    space_key,
    state_key,
)
from smartgroups.wire.models import (
    Cause,
    CommandResult,
    GroupSummary,
    MembershipChange,
    MembershipStateRecord,
    MemberUpserted,
    PropertySet,
    Resource,
)
from smartgroups.wire.timestamps import format_instant, format_instant_ms, is_timestamp

OUTPUTS: dict[str, Any] = {
    "membership-changes": MembershipChange,
    "membership-state": MembershipStateRecord,
    "group-change-results": CommandResult,
}


def validator(topic: str) -> Draft202012Validator:
    return Draft202012Validator(schema(f"{topic}.v1.schema.json"))


# --- inputs ----------------------------------------------------------------------------------


def upsert(profile: dict[str, Any]) -> MemberUpserted:
    return MemberUpserted.model_validate(
        {
            "id": "e1",
            "type": "member.upserted",
            "space": "acme",
            "member_id": "m42",
            "profile": profile,
        }
    )


def test_profile_patch_tells_absent_from_null() -> None:
    patch = upsert({"email": None, "first_name": "Ada", "tags": []}).profile
    assert patch.changes() == {"email": None, "first_name": "Ada", "tags": []}
    assert patch.last_name is None and "last_name" not in patch.changes()
    assert upsert({}).profile.changes() == {}


def test_profile_patch_ignores_unknown_fields() -> None:
    assert upsert({"nickname": "A", "role": "admin"}).profile.changes() == {"role": "admin"}


def test_timestamps_are_kept_as_given() -> None:
    patch = upsert({"registered_at": "2026-01-05", "invited_at": "2026-01-02t08:00:00.1+01:00"})
    assert patch.profile.changes() == {
        "registered_at": "2026-01-05",
        "invited_at": "2026-01-02t08:00:00.1+01:00",
    }


@pytest.mark.parametrize(
    "value",
    ["pro", "", 0, 1, -7, 2**63, 1.5, True, False, [], ["a", "b"], None],
)
def test_values_keep_their_exact_type(value: Any) -> None:
    event = PropertySet.model_validate(
        {
            "id": "e1",
            "type": "property.set",
            "space": "acme",
            "member_id": "m42",
            "property_id": "p",
            "value": value,
        }
    )
    assert event.value == value
    assert type(event.value) is type(value)


def test_models_are_frozen() -> None:
    event = upsert({"role": "admin"})
    with pytest.raises(ValidationError):
        event.member_id = "m43"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        event.profile.role = "member"  # type: ignore[misc]


@pytest.mark.parametrize(
    "profile",
    [
        {"first_name": 1},
        {"status": "Accepted"},
        {"tags": ("a",)},
        {"tags": "a"},
        {"registered_at": "2026-13-01"},
        {"email": True},
    ],
)
def test_no_coercion_between_json_types(profile: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        upsert(profile)


# --- outputs: the examples --------------------------------------------------------------------


@pytest.mark.parametrize("topic", OUTPUTS)
def test_valid_output_examples_round_trip_byte_for_byte(topic: str) -> None:
    """model(example) encodes to exactly the example: field order, no nulls, nothing added."""
    for param in params(topic, "valid"):
        path: Path = param.values[0]
        example = load(path)
        model = OUTPUTS[topic].model_validate(example)
        assert encode(model) == orjson.dumps(example), path.name


@pytest.mark.parametrize("topic", OUTPUTS)
def test_invalid_output_examples_never_get_out(topic: str) -> None:
    """The model refuses each invalid example, or (explicit nulls: Python's "absent") encodes
    it to something the schema accepts. Either way nothing schema-invalid is ever written."""
    for param in params(topic, "invalid"):
        path: Path = param.values[0]
        try:
            model = OUTPUTS[topic].model_validate(load(path))
        except ValidationError:
            continue
        assert None in load(path).values() or None in load(path).get("group", {}).values()
        assert validator(topic).is_valid(orjson.loads(encode(model))), path.name


# --- outputs: built in code -------------------------------------------------------------------


AT = format_instant(datetime(2026, 11, 22, 10, 0, 1, 250_000, tzinfo=UTC))


def change(**overrides: Any) -> MembershipChange:
    fields: dict[str, Any] = {
        "id": change_id("acme", "vip", "m42", 1),
        "type": "member.added",
        "space": "acme",
        "group_id": "vip",
        "member_id": "m42",
        "version": 1,
        "reason": "conditions_met",
        "at": AT,
        "group": GroupSummary(name="VIP", kind="smart", slug=None, resources=[]),
        "cause": Cause(kind="time"),
    }
    return MembershipChange(**{**fields, **overrides})


def test_membership_change_encodes_to_the_contract_shape() -> None:
    event = change(
        id="acme:vip:m42:3",
        version=3,
        group=GroupSummary(
            name="VIP", kind="smart", slug="vip", resources=[Resource(type="course", id="c1")]
        ),
        cause=Cause(kind="event", event_id="…", topic="member-changes", partition=3, offset=1200),
    )
    assert (
        encode(event)
        == (
            '{"id":"acme:vip:m42:3","type":"member.added","space":"acme","group_id":"vip",'
            '"member_id":"m42","version":3,"reason":"conditions_met","at":"2026-11-22T10:00:01.250Z",'
            '"group":{"name":"VIP","kind":"smart","slug":"vip","resources":[{"type":"course","id":"c1"}]},'
            '"cause":{"kind":"event","event_id":"…","topic":"member-changes","partition":3,"offset":1200}}'
        ).encode()
    )
    assert validator("membership-changes").is_valid(orjson.loads(encode(event)))


def test_absent_optional_output_fields_are_omitted() -> None:
    doc = orjson.loads(encode(change()))
    assert doc["group"] == {"name": "VIP", "kind": "smart", "resources": []}
    assert doc["cause"] == {"kind": "time"}
    assert validator("membership-changes").is_valid(doc)


@pytest.mark.parametrize(
    "overrides",
    [
        {"reason": "blacklisted"},
        {"version": 2, "id": "acme:vip:m42:2"},
        {"id": "acme:vip:m42:9"},
        {"at": "2026-11-22T10:00:01"},
        {"cause": {"kind": "event", "event_id": "e1"}},
        {"cause": {"kind": "definition"}},
        {"cause": {"kind": "time", "event_id": "e1"}},
        {"member_id": "m:42"},
        {"extra": 1},
    ],
)
def test_malformed_membership_changes_cannot_be_built(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        change(**overrides)


def test_state_record_and_command_results() -> None:
    state = MembershipStateRecord(
        space="acme", group_id="vip", member_id="m42", version=1, since=AT
    )
    assert validator("membership-state").is_valid(orjson.loads(encode(state)))
    accepted = CommandResult(
        id="r1",
        type="command.accepted",
        space="acme",
        command_id="c1",
        command_type="group.deleted",
        group_id="vip",
    )
    rejected = CommandResult(
        id="r2",
        type="command.rejected",
        space="acme",
        command_id="c2",
        command_type="group.renamed",
        code="invalid",
        message="unknown command type",
    )
    for result in (accepted, rejected):
        assert validator("group-change-results").is_valid(orjson.loads(encode(result)))
    assert b"null" not in encode(accepted)
    with pytest.raises(ValidationError):
        CommandResult(
            id="r3",
            type="command.rejected",
            space="acme",
            command_id="c3",
            command_type="group.created",
        )
    with pytest.raises(ValidationError):
        MembershipStateRecord(space="acme", group_id="vip", member_id="m42", version=2, since=AT)


# --- keys, instants, dead-letter headers --------------------------------------------------------


def test_keys() -> None:
    assert member_key("acme", "m42") == b"acme:m42"
    assert state_key("acme", "vip", "m42") == b"acme:vip:m42"
    assert space_key("acme") == b"acme"
    assert change_id("acme", "vip", "m42", 7) == "acme:vip:m42:7"


def test_format_instant() -> None:
    paris = timezone(timedelta(hours=1))
    assert format_instant(datetime(2026, 11, 22, 11, 0, 1, 250_999, tzinfo=paris)) == (
        "2026-11-22T10:00:01.250Z"
    )
    assert format_instant_ms(1_763_805_601_250) == "2025-11-22T10:00:01.250Z"
    assert format_instant_ms(1_700_000_000_123).endswith(".123Z")
    with pytest.raises(ValueError, match="aware"):
        format_instant(datetime(2026, 1, 1))


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("2026-11-22T10:00:00Z", True),
        ("2026-11-22t10:00:00.123456789z", True),
        ("2026-11-22T10:00:00-23:59", True),
        ("2026-12-31T23:59:60Z", True),
        ("2024-02-29", True),
        ("2026-02-29", False),
        ("2026-04-31", False),
        ("0000-01-01", False),
        ("2026-11-22T10:00:00", False),
        ("2026-11-22 10:00:00Z", False),
        ("2026-11-22T24:00:00Z", False),
        ("2026-11-22T10:00:00+24:00", False),
        ("2026-11-22T10:00:00Z\n", False),
        ("٢٠٢٦-11-22", False),
        ("2026-1-22", False),
    ],
)
def test_timestamps(text: str, ok: bool) -> None:
    assert is_timestamp(text) is ok


def test_dead_letter_headers() -> None:
    letter = DeadLetter("schema_error", "member.deleted: member_id: required")
    headers = dead_letter_headers(letter, "prod.member-changes", 3, 1200)
    assert headers == [
        ("error.code", b"schema_error"),
        ("error.message", b"member.deleted: member_id: required"),
        ("source.topic", b"prod.member-changes"),
        ("source.partition", b"3"),
        ("source.offset", b"1200"),
    ]
    as_object = {name: value.decode() for name, value in headers}
    assert Draft202012Validator(schema("dead-letters.headers.v1.schema.json")).is_valid(as_object)
