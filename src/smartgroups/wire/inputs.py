"""Input events of the member-keyed topics, as frozen pydantic models (contract §3).

One class per event type. Each carries the envelope (``id``, ``type``, ``space``, ``at``, ``v``)
and ``member_id``. Unknown fields are ignored (forward compatible); known fields are checked
strictly, with no coercion between JSON types. Lists inside a model (``tags``, list values) are
the decoded lists: treat them as read-only.

Validation through :func:`smartgroups.wire.decode.decode_member_input` is the normal path; it
also checks size, version and key. Calling ``Model.model_validate(obj)`` directly validates the
fields only.
"""

from __future__ import annotations

from typing import Literal, TypeAlias

from pydantic import BaseModel, ConfigDict

from smartgroups.wire.timestamps import Timestamp
from smartgroups.wire.topics import FORM_ANSWERS, MEMBER_CHANGES, MEMBER_INPUTS, PROPERTY_CHANGES
from smartgroups.wire.types import EventId, Id, Status, Value

ProfileValue: TypeAlias = str | list[str] | None
"""What a profile field holds: text (timestamps are RFC 3339 text), a list of tags, or None."""

PROFILE_FIELDS = (
    "first_name",
    "last_name",
    "email",
    "title",
    "status",
    "role",
    "tags",
    "invited_at",
    "registered_at",
    "last_active_at",
)
"""The profile fields of contract §3, in contract order."""


class _Input(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", strict=True)


class ProfilePatch(_Input):
    """A partial profile update: only the fields present change; ``null`` clears one.

    An absent field and an explicit ``null`` both read as ``None`` on the attribute; use
    :meth:`changes` (or ``model_fields_set``) to tell them apart.
    """

    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    title: str | None = None
    status: Status | None = None
    role: str | None = None
    tags: list[str] | None = None
    invited_at: Timestamp | None = None
    registered_at: Timestamp | None = None
    last_active_at: Timestamp | None = None

    def changes(self) -> dict[str, ProfileValue]:
        """The fields present in the update: ``{field: new value}``, ``None`` meaning clear."""
        return {name: getattr(self, name) for name in self.model_fields_set}


class _MemberEvent(_Input):
    id: EventId
    space: Id
    member_id: Id
    at: Timestamp | None = None
    v: Literal[1] = 1


class MemberUpserted(_MemberEvent):
    """``member.upserted``: apply ``profile`` (a partial update) to the member, creating it."""

    type: Literal["member.upserted"]
    profile: ProfilePatch


class MemberDeleted(_MemberEvent):
    """``member.deleted``: erase the member; it leaves every group (``member_deleted``)."""

    type: Literal["member.deleted"]


class PropertySet(_MemberEvent):
    """``property.set``: the member's value of ``property_id`` becomes ``value`` (None = unset)."""

    type: Literal["property.set"]
    property_id: Id
    value: Value


class PropertyUnset(_MemberEvent):
    """``property.unset``: the member has no value for ``property_id`` any more."""

    type: Literal["property.unset"]
    property_id: Id


class AnswerSet(_MemberEvent):
    """``answer.set``: the member's answer to ``question_id`` becomes ``value`` (None = unset)."""

    type: Literal["answer.set"]
    question_id: Id
    value: Value


class AnswerUnset(_MemberEvent):
    """``answer.unset``: the member has no answer to ``question_id`` any more."""

    type: Literal["answer.unset"]
    question_id: Id


MemberInput: TypeAlias = (
    MemberUpserted | MemberDeleted | PropertySet | PropertyUnset | AnswerSet | AnswerUnset
)
"""Any event of ``member-changes``, ``property-changes`` or ``form-answers``."""

MEMBER_TOPICS: dict[str, dict[str, type[MemberInput]]] = {
    MEMBER_CHANGES: {"member.upserted": MemberUpserted, "member.deleted": MemberDeleted},
    PROPERTY_CHANGES: {"property.set": PropertySet, "property.unset": PropertyUnset},
    FORM_ANSWERS: {"answer.set": AnswerSet, "answer.unset": AnswerUnset},
}
"""Logical topic name -> its event types -> the model of each (contract §2 and §3)."""

if tuple(MEMBER_TOPICS) != MEMBER_INPUTS:  # pragma: no cover - caught at import
    raise ImportError("wire.inputs.MEMBER_TOPICS and wire.topics.MEMBER_INPUTS disagree")
