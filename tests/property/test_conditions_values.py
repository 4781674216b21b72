"""parse_instant against a plain reference built from the RFC 3339 grammar."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from hypothesis import example, given, settings
from hypothesis import strategies as st

from smartgroups.core.values import format_instant, parse_instant

# RFC 3339 section 5.6, with "T"/"Z" in either case; plus the bare full-date.
RFC3339 = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})"
    r"(?:[Tt](?P<time>[0-9]{2}:[0-9]{2}:[0-9]{2})(?:\.(?P<frac>[0-9]+))?"
    r"(?:(?P<z>[Zz])|(?P<sign>[+-])(?P<oh>[0-9]{2}):(?P<om>[0-9]{2})))?",
    re.ASCII,
)


def reference(text: str) -> datetime | None:
    """The instant by the grammar, computed field by field (leap seconds clamp to :59.999999)."""
    match = RFC3339.fullmatch(text)
    if match is None:
        return None
    year, month, day = (int(part) for part in match["date"].split("-"))
    hour, minute, second = (0, 0, 0)
    if match["time"]:
        hour, minute, second = (int(part) for part in match["time"].split(":"))
    micro = int((match["frac"] or "0")[:6].ljust(6, "0"))
    if second == 60:
        second, micro = 59, 999_999
    offset = timedelta(0)
    if match["sign"]:
        if int(match["oh"]) > 23 or int(match["om"]) > 59:
            return None
        offset = timedelta(hours=int(match["oh"]), minutes=int(match["om"]))
        offset = offset if match["sign"] == "+" else -offset
    try:
        return datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC) - offset
    except (ValueError, OverflowError):
        return None


def _two(top: int) -> st.SearchStrategy[str]:
    return st.integers(0, top).map(lambda n: f"{n:02d}")


timestamps = st.builds(
    lambda y, mo, d, sep, h, mi, s, frac, off: f"{y:04d}-{mo}-{d}{sep}{h}:{mi}:{s}{frac}{off}",
    st.integers(0, 9999),
    _two(13),
    _two(32),
    st.sampled_from("Tt"),
    _two(25),
    _two(61),
    _two(61),
    st.one_of(st.just(""), st.text("0123456789", min_size=1, max_size=12).map(".{}".format)),
    st.one_of(
        st.sampled_from(("Z", "z", "+00:00", "-00:00")),
        st.builds(lambda sign, h, m: f"{sign}{h}:{m}", st.sampled_from("+-"), _two(25), _two(61)),
    ),
)


@st.composite
def mangled(draw: st.DrawFn) -> str:
    """A valid timestamp with one character inserted, removed or replaced."""
    text = draw(timestamps)
    at = draw(st.integers(0, len(text)))
    char = draw(st.sampled_from("0123456789-:.+TtZz ,W٢\n"))
    how = draw(st.sampled_from(("insert", "remove", "replace")))
    if how == "insert":
        return text[:at] + char + text[at:]
    if how == "remove":
        return text[:at] + text[at + 1 :]
    return text[:at] + char + text[at + 1 :]


@settings(max_examples=3000, deadline=None)
@given(text=st.one_of(timestamps, mangled(), st.text(max_size=30)))
@example("2026-11-22T10:00:00 Z")
@example("2026-11-22T10:00:00.Z")
@example("2026-11-22T10:00:00,5Z")
@example("2026-11-22T10:00:00+01:00:30")
@example("2026-11-22X10:00:00Z")
@example("2026-W47-1T10:00:00Z")
@example("2026-11-22")
@example("2026-11-22T23:59:60.5+01:00")
def test_parse_instant_follows_the_rfc3339_grammar(text: str):
    assert parse_instant(text) == reference(text)
    instant = parse_instant(text)
    if instant is not None:
        assert instant.tzinfo is UTC
        assert parse_instant(format_instant(instant)) == instant
