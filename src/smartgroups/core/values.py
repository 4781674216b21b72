"""Wire values as conditions see them: instants, folded text and the field value types.

Decisions (the contract is silent on these details):

* **Instants** are RFC 3339 timestamps: ``YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)``, with
  ``T``/``Z`` in either case, or a bare date ``YYYY-MM-DD`` meaning midnight UTC. A date-time
  without an offset is *not* a timestamp (its instant is unknown). Fractions finer than a
  microsecond are truncated; a leap second (``:60``) is read as the last microsecond of the
  minute before. Every instant is returned as an aware UTC ``datetime``.
* **Folding** is Unicode canonical caseless matching (Unicode D145): ``NFC(casefold(NFD(s)))``.
  So ``'Straße'`` and ``'STRASSE'`` fold alike, and ``'é'`` precomposed equals ``'e' + U+0301``.
  The result is in NFC, so a substring test never matches half of a combining sequence such as
  the ``e`` of a precomposed ``é``. No compatibility mapping (NFKC) and no trimming is applied.
"""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime, timedelta
from typing import Literal

ValueType = Literal["text", "number", "boolean", "date", "single_select", "multi_select"]
"""The type of a profile field, property or question (contract section 5)."""

VALUE_TYPES: frozenset[str] = frozenset(
    ("text", "number", "boolean", "date", "single_select", "multi_select")
)

_LEAP_SECOND = timedelta(seconds=1)
_TICK = timedelta(microseconds=1)
_CACHE_SIZE = 1 << 16
_cache: dict[str, datetime | None] = {}


def parse_instant(text: str) -> datetime | None:
    """The instant ``text`` names as an aware UTC datetime, or None if it is not a timestamp.

    Total: never raises, whatever the string (impossible dates and instants outside the range
    of ``datetime`` give None). Results are memoised (up to 65,536 texts, then the memo starts
    afresh), as the same member values are read by many groups.
    """
    if text in _cache:
        return _cache[text]
    if len(_cache) >= _CACHE_SIZE:
        _cache.clear()
    instant = _cache[text] = _parse_instant(text)
    return instant


def instant_memo() -> dict[str, datetime | None]:
    """The memo :func:`parse_instant` reads first: one dict for the life of the process."""
    return _cache


def _parse_instant(text: str) -> datetime | None:
    """The shape of RFC 3339 is checked here; ``fromisoformat`` checks digits and ranges."""
    if len(text) == 10:
        if not text.isascii() or text[4] != "-" or text[7] != "-":
            return None
        try:
            return datetime.fromisoformat(text).replace(tzinfo=UTC)
        except ValueError:
            return None
    if len(text) < 20 or not text.isascii():
        return None
    text = text.upper()
    if text[-1] == "Z":
        body = text[:-1]
    elif text[-6] in "+-" and text[-3] == ":" and text[-2] in "012345":
        body = text[:-6]
    else:
        return None
    if len(body) != 19 and (len(body) < 21 or body[19] != "." or not body[20:].isdigit()):
        return None
    if body[4] != "-" or body[7] != "-" or body[10] != "T" or body[13] != ":" or body[16] != ":":
        return None
    try:
        instant = datetime.fromisoformat(text)
        return instant if instant.tzinfo is UTC else instant.astimezone(UTC)
    except ValueError:
        return _leap_second(text)
    except OverflowError:
        return None


def _leap_second(text: str) -> datetime | None:
    """Read ``...:60`` as the last microsecond before the following minute (None otherwise)."""
    if text[17:19] != "60":
        return None
    try:
        before = datetime.fromisoformat(f"{text[:17]}59{text[19:]}").astimezone(UTC)
        return before.replace(microsecond=0) + _LEAP_SECOND - _TICK
    except (ValueError, OverflowError):
        return None


def fold(text: str) -> str:
    """Canonical caseless form of ``text``: ``NFC(casefold(NFD(text)))`` (fast path for ASCII)."""
    if text.isascii():
        return text.lower()
    return unicodedata.normalize("NFC", unicodedata.normalize("NFD", text).casefold())


def format_instant(instant: datetime) -> str:
    """RFC 3339 text of an aware datetime, in UTC with ``Z`` (microseconds only when non-zero)."""
    utc = instant.astimezone(UTC)
    fraction = f".{utc.microsecond:06d}" if utc.microsecond else ""
    return (
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}"
        f"T{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}{fraction}Z"
    )


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)


def epoch_ms(instant: datetime) -> int:
    """Epoch milliseconds of an aware ``instant``, truncated, in exact integer arithmetic.

    The one conversion of a decision's instant: a transition's ``at`` and the ``since`` of the
    membership it starts are the same number, so the same text (contract section 4).
    """
    return (instant - _EPOCH) // _MILLISECOND
