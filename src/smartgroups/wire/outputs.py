"""Output events of the processor, as frozen pydantic models (contract §4).

Serialise them with :func:`smartgroups.wire.encode.encode`: compact JSON, fields in the order
below, and optional fields that are ``None`` **omitted** (the contract never shows ``null`` in an
output; a removed membership on ``membership-state`` is a tombstone, i.e. a null Kafka value,
not JSON). The models check the invariants a consumer relies on (reason fits the type, versions
alternate, ids are derived from their parts) so a bug cannot put a malformed event on a topic.
"""

from __future__ import annotations

from typing import Literal, Self, TypeAlias, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

from smartgroups.core.ids import change_id, segment_change_id
from smartgroups.wire.timestamps import Instant
from smartgroups.wire.types import EventId, Id

ResourceType: TypeAlias = Literal["live", "course", "channel", "forum", "collection"]
GroupKind: TypeAlias = Literal["static", "smart"]
AddedReason: TypeAlias = Literal[
    "conditions_met", "group_created", "group_activated", "unblacklisted", "manual"
]
RemovedReason: TypeAlias = Literal[
    "conditions_unmet",
    "ineligible_status",
    "blacklisted",
    "group_deactivated",
    "group_deleted",
    "member_deleted",
    "manual",
]
CauseKind: TypeAlias = Literal["event", "definition", "time", "reconcile"]
RejectionCode: TypeAlias = Literal[
    "invalid",
    "group_exists",
    "group_not_found",
    "slug_taken",
    "triggers_immutable",
    "not_static",
    "not_smart",
    "unknown_reference",
    "property_in_use",
    "question_in_use",
    "option_in_use",
    "group_in_use",
    "property_exists",
    "property_not_found",
    "question_exists",
    "question_not_found",
    "cycle",
    "segment_set_exists",
    "segment_set_not_found",
]
"""The ``code`` of a ``command.rejected`` result (contract §3, table of rejections)."""

ADDED_REASONS: frozenset[str] = frozenset(get_args(AddedReason))
REMOVED_REASONS: frozenset[str] = frozenset(get_args(RemovedReason))


class _Output(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class Resource(_Output):
    """A resource linked to a group, copied onto every membership output."""

    type: ResourceType
    id: Id


class GroupSummary(_Output):
    """The group as a membership output shows it. ``slug`` is omitted when the group has none."""

    name: str
    kind: GroupKind
    slug: str | None = None
    resources: list[Resource] = Field(default_factory=list)


class Cause(_Output):
    """Why a transition happened.

    * ``event``: a member input; ``event_id``, ``topic``, ``partition`` and ``offset`` required.
    * ``definition``: a ``group-changes`` command; ``event_id`` (the command id) required, its
      ``topic``/``partition``/``offset`` given when known.
    * ``time``: a time-relative trigger flipped with no input; no other field.
    * ``reconcile``: ``smartgroups reconcile`` found the stored membership differed from the
      current definitions' verdict; no other field.
    """

    kind: CauseKind
    event_id: EventId | None = None
    topic: str | None = None
    partition: int | None = Field(default=None, ge=0)
    offset: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _fields_fit_kind(self) -> Self:
        located = (self.topic, self.partition, self.offset)
        if self.kind == "event" and (self.event_id is None or None in located):
            raise ValueError("an event cause needs event_id, topic, partition and offset")
        if self.kind == "definition" and self.event_id is None:
            raise ValueError("a definition cause needs event_id")
        bare = self.event_id is None and located == (None,) * 3
        if self.kind in ("time", "reconcile") and not bare:
            raise ValueError(f"a {self.kind} cause has no event_id, topic, partition or offset")
        return self


class MembershipChange(_Output):
    """``member.added`` / ``member.removed`` on ``membership-changes``, key ``{space}:{member_id}``.

    ``version`` counts the pair's transitions: added has odd versions, removed even ones;
    ``id`` is ``{space}:{group_id}:{member_id}:{version}`` (see
    :func:`smartgroups.core.ids.change_id`). ``at`` is when the processor decided it.
    """

    id: str
    type: Literal["member.added", "member.removed"]
    space: Id
    group_id: Id
    member_id: Id
    version: int = Field(ge=1)
    reason: AddedReason | RemovedReason
    at: Instant
    group: GroupSummary
    cause: Cause

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        added = self.type == "member.added"
        if self.reason not in (ADDED_REASONS if added else REMOVED_REASONS):
            raise ValueError(f"reason does not fit {self.type}")
        if (self.version % 2 == 1) != added:
            raise ValueError("added transitions have odd versions, removed ones even")
        if self.id != change_id(self.space, self.group_id, self.member_id, self.version):
            raise ValueError("id must be {space}:{group_id}:{member_id}:{version}")
        return self


class MembershipStateRecord(_Output):
    """Value on ``membership-state`` (key ``{space}:{group_id}:{member_id}``) while a member.

    ``version`` is that of the ``member.added`` transition (odd), ``since`` its ``at``. On removal
    the processor writes a tombstone (null value) instead.
    """

    space: Id
    group_id: Id
    member_id: Id
    version: int = Field(ge=1)
    since: Instant

    @model_validator(mode="after")
    def _added_version(self) -> Self:
        if self.version % 2 == 0:
            raise ValueError("a membership's version is that of an added transition (odd)")
        return self


class CommandResult(_Output):
    """``command.accepted`` / ``command.rejected`` on ``group-change-results`` (key ``{space}``).

    One per ``group-changes`` record that decoded to an envelope. ``command_id`` and
    ``command_type`` echo the command's ``id`` and ``type``; ``group_id`` is given when the
    command names a valid one. A rejection carries ``code`` and ``message``; an acceptance
    neither.
    """

    id: str = Field(min_length=1)
    type: Literal["command.accepted", "command.rejected"]
    space: Id
    command_id: EventId
    command_type: EventId
    group_id: Id | None = None
    code: RejectionCode | None = None
    message: str | None = None

    @model_validator(mode="after")
    def _code_fits_type(self) -> Self:
        if self.type == "command.rejected" and (self.code is None or self.message is None):
            raise ValueError("a rejection needs code and message")
        if self.type == "command.accepted" and (self.code is not None or self.message is not None):
            raise ValueError("an acceptance has no code or message")
        return self


class SegmentChange(_Output):
    """``segment.changed`` on ``segment-changes`` (contract section 9), key
    ``{space}:{member_id}``. ``segment`` / ``previous`` are group ids, ``null`` (present, not
    omitted) for the fallback; so is ``slug``. ``fallback`` is the set's fallback label."""

    id: str
    type: Literal["segment.changed"]
    space: Id
    set_id: Id
    member_id: Id
    version: int = Field(ge=1)
    segment: Id | None
    previous: Id | None
    slug: str | None
    fallback: str
    at: Instant
    cause: Cause

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.segment == self.previous:
            raise ValueError("a segment change changes the segment")
        if self.id != segment_change_id(self.space, self.set_id, self.member_id, self.version):
            raise ValueError("id must be {space}:{set_id}:{member_id}:{version}")
        return self


class SegmentStateRecord(_Output):
    """Value on ``segment-state`` (key ``{space}:{set_id}:{member_id}``) while the member's
    segment is a group; a tombstone when it returns to the fallback."""

    space: Id
    set_id: Id
    member_id: Id
    segment: Id
    version: int = Field(ge=1)
    since: Instant


Output: TypeAlias = (
    MembershipChange | MembershipStateRecord | CommandResult | SegmentChange | SegmentStateRecord
)
"""Any JSON value the processor writes."""
