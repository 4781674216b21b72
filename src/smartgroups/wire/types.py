"""Field types shared by the input and output models (pydantic ``Annotated`` aliases).

Every validator here raises ``ValueError`` with a fixed message that names the problem and never
quotes the value: these messages end up in dead-letter headers (contract §4).
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal, TypeAlias

from pydantic import PlainValidator, StringConstraints

from smartgroups.wire.ids import EVENT_ID_MAX, ID_PATTERN

Id = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
"""An id of the contract (space, member, group, property, question, option)."""

EventId = Annotated[str, StringConstraints(min_length=1, max_length=EVENT_ID_MAX)]
"""An event ``id``: any text of 1 to :data:`~smartgroups.wire.ids.EVENT_ID_MAX` characters."""

Status: TypeAlias = Literal[
    "accepted", "invited", "pending", "deactivated", "unsubscribed", "declined", "rejected"
]
"""A member's profile ``status``; only ``accepted``, ``invited`` and ``pending`` are eligible."""

STATUSES: Final = (
    "accepted",
    "invited",
    "pending",
    "deactivated",
    "unsubscribed",
    "declined",
    "rejected",
)

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
