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
from datetime import UTC, datetime
from typing import Annotated, Final

from pydantic import StringConstraints

_YEAR: Final = "([0-9]{3}[1-9]|[0-9]{2}[1-9][0-9]|[0-9][1-9][0-9]{2}|[1-9][0-9]{3})"
_LEAP_YEAR: Final = "([0-9]{2}(0[48]|[2468][048]|[13579][26])|(0[48]|[2468][048]|[13579][26])00)"
_DATE_SYNTAX: Final = (
    f"({_YEAR}-((0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])|(0[13-9]|1[0-2])-(29|30)|(0[13578]|1[02])-31)"
    f"|{_LEAP_YEAR}-02-29)"
)
_TIME_SYNTAX: Final = (
    "[Tt]([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)([.][0-9]+)?"
    "([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])"
)

TIMESTAMP_PATTERN: Final = f"^{_DATE_SYNTAX}({_TIME_SYNTAX})?$"
"""What :func:`is_timestamp` accepts, as one regular expression (ECMA-262, Python and Rust alike;
no look-around). It checks the calendar too: month lengths and leap years."""

DATE_TIME_PATTERN: Final = f"^{_DATE_SYNTAX}{_TIME_SYNTAX}$"
"""What :func:`is_date_time` accepts, as one regular expression."""

_DATE_TIME: Final = re.compile(_DATE_SYNTAX + _TIME_SYNTAX)
_TIMESTAMP: Final = re.compile(f"{_DATE_SYNTAX}({_TIME_SYNTAX})?")


def is_date_time(text: object) -> bool:
    """True when ``text`` is an RFC 3339 date-time with an offset, naming a real instant."""
    return type(text) is str and _DATE_TIME.fullmatch(text) is not None


def is_timestamp(text: object) -> bool:
    """True when ``text`` is an RFC 3339 date-time or full date (``YYYY-MM-DD``)."""
    return type(text) is str and _TIMESTAMP.fullmatch(text) is not None


Timestamp = Annotated[str, StringConstraints(pattern=TIMESTAMP_PATTERN)]
"""Input timestamp: RFC 3339 date-time or ``YYYY-MM-DD``, kept as the original string."""

Instant = Annotated[str, StringConstraints(pattern=DATE_TIME_PATTERN)]
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
