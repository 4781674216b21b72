"""Instants and folding: how wire values are read by conditions."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from smartgroups.core.values import fold, format_instant, parse_instant


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-22T10:00:00Z", datetime(2026, 11, 22, 10, tzinfo=UTC)),
        ("2026-11-22t10:00:00z", datetime(2026, 11, 22, 10, tzinfo=UTC)),
        ("2026-11-22T12:30:00+02:30", datetime(2026, 11, 22, 10, tzinfo=UTC)),
        ("2026-11-22T05:00:00-05:00", datetime(2026, 11, 22, 10, tzinfo=UTC)),
        ("2026-11-22T10:00:00-00:00", datetime(2026, 11, 22, 10, tzinfo=UTC)),
        ("2026-11-22T10:00:00.25Z", datetime(2026, 11, 22, 10, 0, 0, 250_000, tzinfo=UTC)),
        ("2026-11-22T10:00:00.1234567891Z", datetime(2026, 11, 22, 10, 0, 0, 123_456, tzinfo=UTC)),
        ("2026-11-22", datetime(2026, 11, 22, tzinfo=UTC)),
        ("2016-12-31T23:59:60Z", datetime(2016, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)),
        ("2024-02-29", datetime(2024, 2, 29, tzinfo=UTC)),
    ],
)
def test_rfc3339_timestamps_and_dates_are_instants_in_utc(text: str, expected: datetime):
    instant = parse_instant(text)
    assert instant == expected
    assert instant is not None and instant.utcoffset() is not None
    assert instant.tzinfo is UTC


@pytest.mark.parametrize(
    "text",
    [
        "",
        "yesterday",
        "2026-11-22T10:00:00",  # no offset: the instant is unknown
        "2026-11-22 10:00:00Z",
        "2026-11-22T10:00Z",
        "2026-11-22T10Z",
        "20261122",
        "2026-W47-1",
        "2026-11-22T10:00:00+0200",
        "2026-11-22T10:00:00,5Z",
        "2026-02-30",
        "2025-02-29",
        "2026-13-01",
        "2026-11-22T24:00:00Z",
        "0000-01-01",
        "0001-01-01T00:00:00+01:00",  # before the first representable instant
        "9999-12-31T23:00:00-05:00",  # after the last
        "٢٠٢٦-11-22",  # non-ASCII digits
        " 2026-11-22",
        "2026-11-22\n",
    ],
)
def test_anything_else_is_not_a_timestamp(text: str):
    assert parse_instant(text) is None


def test_format_instant_is_rfc3339_in_utc_and_parses_back():
    instant = datetime(2026, 11, 22, 10, 0, 1, 250_000, tzinfo=UTC)
    assert format_instant(instant) == "2026-11-22T10:00:01.250000Z"
    assert format_instant(datetime(5, 1, 1, tzinfo=UTC)) == "0005-01-01T00:00:00Z"
    assert parse_instant(format_instant(instant)) == instant


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ("Gold", "gOLD"),
        ("Straße", "STRASSE"),
        ("ﬁne", "FINE"),  # the ligature casefolds to "fi"
        ("café", "cafe\u0301"),  # precomposed and combining forms are one text
        ("CAFÉ", "cafe\u0301"),
        ("ΣΊΣΥΦΟΣ", "σίσυφος"),
    ],
)
def test_fold_matches_case_insensitively_and_canonically(left: str, right: str):
    assert fold(left) == fold(right)


@pytest.mark.parametrize(
    ("left", "right"), [("İ", "i"), ("gold ", "gold"), ("\uff47\uff4f\uff4c\uff44", "gold")]
)
def test_fold_keeps_distinct_texts_apart(left: str, right: str):
    assert fold(left) != fold(right)


def test_fold_is_nfc_so_substrings_respect_combining_marks():
    assert fold("cafe\u0301") == "café"
    assert "cafe" not in fold("CAFÉ")
