"""Output timestamps: RFC 3339 UTC with exactly three fraction digits, from 1970 to 9999."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from smartgroups.core.outputs import iso_ms
from smartgroups.core.values import epoch_ms

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@given(st.integers(min_value=0, max_value=253_402_300_799_999))
def test_iso_ms_is_the_instant_to_the_millisecond(ms: int) -> None:
    text = iso_ms(ms)
    assert text.endswith("Z")
    assert len(text.split(".")[1]) == 4  # three digits and "Z"
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    assert parsed == EPOCH + timedelta(milliseconds=ms)


def test_known_instants() -> None:
    assert iso_ms(0) == "1970-01-01T00:00:00.000Z"
    assert iso_ms(1_795_000_000_250) == "2026-11-18T11:06:40.250Z"
    assert iso_ms(1_000) == "1970-01-01T00:00:01.000Z"


@given(st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(9999, 12, 31)))
def test_epoch_ms_truncates_to_the_millisecond_exactly(naive: datetime) -> None:
    instant = naive.replace(tzinfo=UTC)
    ms = epoch_ms(instant)
    assert EPOCH + timedelta(milliseconds=ms) <= instant < EPOCH + timedelta(milliseconds=ms + 1)
    assert iso_ms(ms)[:23] == instant.isoformat(timespec="milliseconds")[:23]
