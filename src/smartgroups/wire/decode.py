"""The edge: raw Kafka records of the input topics -> validated events, or a dead letter.

Both decoders take the record's key and value bytes exactly as consumed and **never raise** on
any content; every problem becomes a :class:`~smartgroups.wire.deadletter.DeadLetter`. The
checks run in this order, and the first failure decides the code:

1. size: value over :data:`MAX_VALUE_BYTES` -> ``too_large``;
2. null or empty value, not UTF-8, not JSON, not a JSON object -> ``decode_error``;
3. envelope: ``id`` and ``type`` strings of 1-200 characters, ``space`` an id -> ``schema_error``;
   ``v``, when present, an integer -> ``schema_error``;
4. ``v`` other than 1 -> ``unsupported_version``;
5. member topics: ``type`` not one of the topic's types -> ``unknown_type`` (also a type that
   belongs to another input topic);
6. member topics: the event's fields -> ``schema_error``;
7. key: member topics ``{space}:{member_id}``, ``group-changes`` ``{space}`` (UTF-8, exact; a
   null key never matches) -> ``key_mismatch``.

``group-changes`` records are checked only up to the envelope and the key: command-level
problems (unknown types included) are answered on ``group-change-results`` as ``invalid`` by
:func:`smartgroups.core.commands.parse_command`, never dead-lettered (contract §3).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import orjson
from pydantic import ValidationError

from smartgroups.core.ids import ID_PATTERN, ID_RE
from smartgroups.wire.deadletter import (
    DeadLetter,
    DeadLetterCode,
    dead_letter_headers,
    describe_errors,
)
from smartgroups.wire.inputs import MEMBER_TOPICS, MemberInput
from smartgroups.wire.types import EVENT_ID_MAX

__all__ = [
    "MAX_VALUE_BYTES",
    "SUPPORTED_VERSION",
    "DeadLetter",
    "DeadLetterCode",
    "GroupChangeEnvelope",
    "MemberInput",
    "dead_letter_headers",
    "decode_group_change",
    "decode_member_input",
]

MAX_VALUE_BYTES: Final = 256 * 1024
"""Largest accepted value, in bytes (contract §3: at most 256 KiB)."""

SUPPORTED_VERSION: Final = 1
"""The major schema version (``v``) this processor reads; absent ``v`` means 1."""

_OWNER: Final = {kind: topic for topic, kinds in MEMBER_TOPICS.items() for kind in kinds}


@dataclass(frozen=True, slots=True)
class GroupChangeEnvelope:
    """A ``group-changes`` record whose envelope and key are right.

    ``event`` is the whole decoded JSON object (envelope included), to be handed to
    ``parse_command``; ``id``, ``type`` and ``space`` are its envelope fields, enough to write
    the ``group-change-results`` answer even when the command itself is invalid.
    """

    id: str
    type: str
    space: str
    event: Mapping[str, Any]


def decode_member_input(
    topic: str, key: bytes | None, value: bytes | None
) -> MemberInput | DeadLetter:
    """Decode a record of ``member-changes``, ``property-changes`` or ``form-answers``.

    ``topic`` is the logical topic name (without the configured prefix); it is not data, and a
    name that is not one of the three raises ``ValueError`` (a programming error). Whatever the
    key and value, the result is the event's model or a :class:`DeadLetter`; see the module
    docstring for the order of the checks.
    """
    kinds = MEMBER_TOPICS.get(topic)
    if kinds is None:
        raise ValueError(f"not a member-keyed input topic: {topic!r}")
    obj = _decode_envelope(value)
    if isinstance(obj, DeadLetter):
        return obj
    kind = obj["type"]
    model = kinds.get(kind)
    if model is None:
        owner = _OWNER.get(kind)
        where = f" (it is a {owner} type)" if owner else ""
        return DeadLetter("unknown_type", f"type: not an event type of {topic}{where}")
    try:
        event = model.model_validate(obj)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        return DeadLetter("schema_error", describe_errors(errors, prefix=f"{kind}: "))
    if key is None:
        return DeadLetter("key_mismatch", "key: null; expected {space}:{member_id}")
    if key != f"{event.space}:{event.member_id}".encode():
        return DeadLetter("key_mismatch", "key: does not equal {space}:{member_id} of the value")
    return event


def decode_group_change(key: bytes | None, value: bytes | None) -> GroupChangeEnvelope | DeadLetter:
    """Decode a ``group-changes`` record up to its envelope and check its key (``{space}``).

    Never raises. A :class:`GroupChangeEnvelope` must get exactly one result on
    ``group-change-results``; a :class:`DeadLetter` goes to ``dead-letters`` instead.
    """
    obj = _decode_envelope(value)
    if isinstance(obj, DeadLetter):
        return obj
    space = obj["space"]
    if key is None:
        return DeadLetter("key_mismatch", "key: null; expected {space}")
    if key != space.encode():
        return DeadLetter("key_mismatch", "key: does not equal {space} of the value")
    return GroupChangeEnvelope(id=obj["id"], type=obj["type"], space=space, event=obj)


def _decode_envelope(value: bytes | None) -> dict[str, Any] | DeadLetter:
    """Checks 1 to 4 of the module docstring; the object is returned with ``v`` normalised."""
    if value is None:
        return DeadLetter("decode_error", "value: null (a tombstone is not an event here)")
    if len(value) > MAX_VALUE_BYTES:
        return DeadLetter("too_large", f"value: over {MAX_VALUE_BYTES} bytes")
    if not value:
        return DeadLetter("decode_error", "value: empty")
    try:
        obj = orjson.loads(value)
    except orjson.JSONDecodeError:
        return DeadLetter("decode_error", "value: not UTF-8 JSON")
    if type(obj) is not dict:
        return DeadLetter("decode_error", "value: not a JSON object")
    for name in ("id", "type"):
        text = obj.get(name)
        if type(text) is not str:
            return _envelope_error(obj, name, "must be a string")
        if not 1 <= len(text) <= EVENT_ID_MAX:
            return DeadLetter("schema_error", f"{name}: must be 1 to {EVENT_ID_MAX} characters")
    space = obj.get("space")
    if type(space) is not str:
        return _envelope_error(obj, "space", "must be a string")
    if ID_RE.fullmatch(space) is None:
        return DeadLetter("schema_error", f"space: must match {ID_PATTERN}")
    if "v" in obj:
        version = obj["v"]
        if type(version) is float and version.is_integer():
            version = obj["v"] = int(version)
        if type(version) is not int:
            return DeadLetter("schema_error", "v: must be an integer")
        if version != SUPPORTED_VERSION:
            return DeadLetter(
                "unsupported_version",
                f"v: unsupported major version (this reads {SUPPORTED_VERSION})",
            )
    return obj


def _envelope_error(obj: dict[str, Any], name: str, problem: str) -> DeadLetter:
    return DeadLetter("schema_error", f"{name}: {'required' if name not in obj else problem}")
