"""Field types shared by the input and output models (pydantic ``Annotated`` aliases).

Every validator here raises ``ValueError`` with a fixed message that names the problem and never
quotes the value: these messages end up in dead-letter headers (contract §4).
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal, TypeAlias, get_args

from pydantic import PlainValidator, StringConstraints

from smartgroups.core.fields import MEMBER_STATUSES
from smartgroups.core.ids import ID_PATTERN

EVENT_ID_MAX: Final = 200
"""Longest event ``id`` and event ``type`` accepted, in characters (both at least 1).

Event ids are not bound to :data:`~smartgroups.core.ids.ID_PATTERN` (producers use UUIDs, ULIDs,
composite ids with ``:``); they are bounded because outputs echo them (``cause.event_id``,
``command_id``)."""

Id = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
"""An id of the contract (space, member, group, property, question, option)."""

EventId = Annotated[str, StringConstraints(min_length=1, max_length=EVENT_ID_MAX)]
"""An event ``id``: any text of 1 to :data:`EVENT_ID_MAX` characters."""

Status: TypeAlias = Literal[
    "accepted", "invited", "pending", "deactivated", "unsubscribed", "declined", "rejected"
]
"""A member's profile ``status``; only ``accepted``, ``invited`` and ``pending`` are eligible."""

STATUSES: Final = MEMBER_STATUSES
"""The core's list of statuses (its one owner); :data:`Status` must spell the same ones."""

if get_args(Status) != MEMBER_STATUSES:  # pragma: no cover - caught at import, in every test
    raise ImportError("wire.types.Status and core.fields.MEMBER_STATUSES disagree")

ValueData: TypeAlias = str | int | float | bool | list[str] | None
"""A property value or form answer as given: text, number, boolean, list of text, or ``None``.

``None`` means unset. Booleans stay ``bool`` (never ``0``/``1``); numbers are ``int`` or
``float`` exactly as JSON decoding produced them."""

_SCALARS: Final = (str, int, float, bool)


def _check_value(value: Any) -> ValueData:
    kind = type(value)
    if value is None or kind in _SCALARS:
        return value  # type: ignore[no-any-return]
    if kind is list and all(type(item) is str for item in value):
        return value  # type: ignore[no-any-return]
    raise ValueError("must be a string, number, boolean, list of strings or null")


Value = Annotated[ValueData, PlainValidator(_check_value)]
"""A validated :data:`ValueData` (exact JSON types: no coercion between them)."""
