"""RFC 3339 timestamps as they travel on the wire.

Inputs keep timestamps as the **original string** once validated: values are "stored as given"
(contract §3) and the core parses them into instants where it compares them. Accepted forms:

* a date-time: ``YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)`` (``T``/``Z`` in either case);
* a full date ``YYYY-MM-DD``, meaning midnight UTC (contract §5).

Year 0000 and dates that do not exist (``2026-02-30``) are rejected; a leap second (``:60``)
is accepted, as RFC 3339 allows (the core reads it as the end of the minute before).
Outputs carry date-times in UTC with milliseconds, as :func:`format_instant` writes them.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated, Final

from pydantic import AfterValidator

_DATE_SYNTAX: Final = "(?!0000)[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
_TIME_SYNTAX: Final = (
    "[Tt]([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)([.][0-9]+)?"
    "([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])"
)

TIMESTAMP_PATTERN: Final = f"^{_DATE_SYNTAX}({_TIME_SYNTAX})?$"
"""The syntax of :func:`is_timestamp` (date or date-time) as written in the JSON Schemas."""

DATE_TIME_PATTERN: Final = f"^{_DATE_SYNTAX}{_TIME_SYNTAX}$"
"""The syntax of :func:`is_date_time` as written in the JSON Schemas."""

_DATE_TIME: Final = re.compile(_DATE_SYNTAX + _TIME_SYNTAX)
_TIMESTAMP: Final = re.compile(f"{_DATE_SYNTAX}({_TIME_SYNTAX})?")


def _day_exists(text: str) -> bool:
    """The syntax allows days up to 31 in any month; check the 29th to 31st for real."""
    if text[8] < "3" and text[8:10] != "29":
        return True
    try:
        date(int(text[:4]), int(text[5:7]), int(text[8:10]))
    except ValueError:
        return False
    return True


def is_date_time(text: object) -> bool:
    """True when ``text`` is an RFC 3339 date-time with an offset, naming a real instant."""
    return type(text) is str and _DATE_TIME.fullmatch(text) is not None and _day_exists(text)


def is_timestamp(text: object) -> bool:
    """True when ``text`` is an RFC 3339 date-time or full date (``YYYY-MM-DD``)."""
    return type(text) is str and _TIMESTAMP.fullmatch(text) is not None and _day_exists(text)


def _check_timestamp(text: str) -> str:
    if not is_timestamp(text):
        raise ValueError("must be an RFC 3339 date-time or date")
    return text


def _check_date_time(text: str) -> str:
    if not is_date_time(text):
        raise ValueError("must be an RFC 3339 date-time with an offset")
    return text


Timestamp = Annotated[str, AfterValidator(_check_timestamp)]
"""Input timestamp: RFC 3339 date-time or ``YYYY-MM-DD``, kept as the original string."""

Instant = Annotated[str, AfterValidator(_check_date_time)]
"""Output instant: an RFC 3339 date-time, as :func:`format_instant` writes it."""


def format_instant(instant: datetime) -> str:
    """``2026-11-22T10:00:01.250Z``: UTC, millisecond precision. ``instant`` must be aware."""
    if instant.tzinfo is None:
        raise ValueError("format_instant needs an aware datetime")
    return instant.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def format_instant_ms(epoch_ms: int) -> str:
    """:func:`format_instant` of a time in milliseconds since the Unix epoch."""
    seconds, millis = divmod(epoch_ms, 1000)
    return format_instant(datetime.fromtimestamp(seconds, UTC).replace(microsecond=millis * 1000))
