"""Relative instants in CLI files resolve to RFC 3339 UTC; everything else is left alone."""

from __future__ import annotations

from datetime import UTC, datetime

from smartgroups.cli.relative import relative_instant, resolve_relative

NOW = datetime(2027, 3, 1, 12, 30, 45, tzinfo=UTC)


def test_relative_forms_name_instants_around_now() -> None:
    assert relative_instant("now", NOW) == "2027-03-01T12:30:45Z"
    assert relative_instant("now-10d", NOW) == "2027-02-19T12:30:45Z"
    assert relative_instant("now+2h", NOW) == "2027-03-01T14:30:45Z"
    assert relative_instant("now-90m", NOW) == "2027-03-01T11:00:45Z"
    assert relative_instant("now-1w", NOW) == "2027-02-22T12:30:45Z"


def test_other_text_is_not_relative() -> None:
    for text in ("2026-11-20T09:00:00Z", "Now", "now-", "now-3y", "now - 3d", "snow-3d", ""):
        assert relative_instant(text, NOW) is None


def test_only_at_fields_are_resolved_at_any_depth() -> None:
    event = {
        "id": "now",
        "at": "now-1m",
        "profile": {"title": "now-3d", "last_active_at": "now-3d", "invited_at": "2026-01-01"},
        "properties": {"seen_at": "now+1d", "note": "now"},
        "list": [{"registered_at": "now"}],
    }
    resolved = resolve_relative(event, NOW)
    assert resolved == {
        "id": "now",
        "at": "2027-03-01T12:29:45Z",
        "profile": {
            "title": "now-3d",
            "last_active_at": "2027-02-26T12:30:45Z",
            "invited_at": "2026-01-01",
        },
        "properties": {"seen_at": "2027-03-02T12:30:45Z", "note": "now"},
        "list": [{"registered_at": "2027-03-01T12:30:45Z"}],
    }
    assert event["at"] == "now-1m"  # the input is not mutated
