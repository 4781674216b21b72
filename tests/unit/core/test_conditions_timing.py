"""next_change: when a member's verdict flips with no new input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from smartgroups.core.conditions import evaluate, next_change, parse_conditions
from smartgroups.core.fields import FieldSpec, StaticFieldSchema
from smartgroups.core.snapshot import MemberSnapshot

SCHEMA = StaticFieldSchema(
    properties={"due": FieldSpec("date"), "n": FieldSpec("number")}, groups={"vip"}
)
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
TICK = timedelta(microseconds=1)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def on(due: object = None, n: object = None, groups: frozenset[str] = frozenset()):
    properties = {key: value for key, value in (("due", due), ("n", n)) if value is not None}
    return MemberSnapshot({}, properties, {}, groups)


def time_trigger(op: str, **span: float) -> dict[str, Any]:
    return {"field": "property.due", "op": op, "value": span}


@pytest.mark.parametrize(
    ("raw", "due", "expected"),
    [
        # within_last 7 days: true until due + 7 days, false from the next microsecond on
        (
            time_trigger("within_last", days=7),
            "2026-11-20T00:00:00Z",
            "2026-11-27T00:00:00.000001Z",
        ),
        (
            time_trigger("within_last", days=7),
            "2026-11-30T00:00:00Z",
            "2026-12-07T00:00:00.000001Z",
        ),
        (time_trigger("within_last", days=7), "2026-11-16T11:59:59Z", None),  # false for good
        # older_than 7 days: false until due + 7 days, true after
        (time_trigger("older_than", days=7), "2026-11-20T00:00:00Z", "2026-11-27T00:00:00.000001Z"),
        (time_trigger("older_than", days=7), "2026-11-01T00:00:00Z", None),  # true for good
        # within_next 2 hours: true from due - 2h to due inclusive
        (time_trigger("within_next", hours=2), "2026-11-23T15:00:00Z", "2026-11-23T13:00:00Z"),
        (
            time_trigger("within_next", hours=2),
            "2026-11-23T13:00:00Z",
            "2026-11-23T13:00:00.000001Z",
        ),
        (time_trigger("within_next", hours=2), "2026-11-23T11:00:00Z", None),  # past: false
        # a negation flips at the same instants
        (
            {"not": time_trigger("within_last", minutes=30)},
            "2026-11-23T11:45:00Z",
            "2026-11-23T12:15:00.000001Z",
        ),
    ],
)
def test_single_trigger_changes_exactly_at_its_boundary(
    raw: dict[str, Any], due: str, expected: str | None
):
    cond = parse_conditions(raw, SCHEMA)
    member = on(due)
    change = next_change(cond, member, NOW)
    assert change == (None if expected is None else at(expected))
    if change is not None:
        before = evaluate(cond, member, NOW)
        assert evaluate(cond, member, change - TICK) is before
        assert evaluate(cond, member, change) is not before


def test_no_time_relative_trigger_means_no_change():
    cond = parse_conditions({"field": "property.n", "op": "gt", "value": 1}, SCHEMA)
    assert next_change(cond, on(n=2), NOW) is None


@pytest.mark.parametrize("due", [None, "not a date", "2026-11-23T12:00:00"])
def test_a_missing_or_unreadable_timestamp_never_changes(due: str | None):
    cond = parse_conditions(time_trigger("within_next", days=1), SCHEMA)
    assert next_change(cond, on(due), NOW) is None


def test_a_boundary_that_cannot_change_the_tree_is_skipped():
    # all(within_last 1 day, n > 5) with n = 1 is false whatever the time
    raw = {
        "all": [
            time_trigger("within_last", days=1),
            {"field": "property.n", "op": "gt", "value": 5},
        ]
    }
    assert next_change(parse_conditions(raw, SCHEMA), on("2026-11-23T00:00:00Z", n=1), NOW) is None


def test_the_first_boundary_that_flips_the_tree_is_returned():
    # any(within_next 1 hour, older_than 1 day) on due = 14:00: within_next turns true at 13:00
    raw = {"any": [time_trigger("within_next", hours=1), time_trigger("older_than", days=1)]}
    cond = parse_conditions(raw, SCHEMA)
    member = on("2026-11-23T14:00:00Z")
    assert evaluate(cond, member, NOW) is False
    first = next_change(cond, member, NOW)
    assert first == at("2026-11-23T13:00:00Z")
    # true from 13:00 to 14:00, false until older_than turns true a day later
    assert next_change(cond, member, first) == at("2026-11-23T14:00:00.000001Z")
    later = next_change(cond, member, at("2026-11-23T14:00:00.000001Z"))
    assert later == at("2026-11-24T14:00:00.000001Z")
    assert next_change(cond, member, later) is None


def test_overlapping_boundaries_that_cancel_out_are_skipped():
    # within_last 1 day XOR-like: any(all(a, not b), all(not a, b)) with a == b never flips
    a = time_trigger("within_last", days=1)
    raw = {"any": [{"all": [a, {"not": a}]}, {"all": [{"not": a}, a]}]}
    assert next_change(parse_conditions(raw, SCHEMA), on("2026-11-23T00:00:00Z"), NOW) is None


def test_boundaries_beyond_the_calendar_are_ignored():
    cond = parse_conditions(time_trigger("within_last", days=36_525), SCHEMA)
    assert next_change(cond, on("9999-12-31T00:00:00Z"), NOW) is None
    cond = parse_conditions(time_trigger("within_next", days=10), SCHEMA)
    assert next_change(cond, on("0001-01-02"), datetime(1, 1, 1, tzinfo=UTC)) == at(
        "0001-01-02T00:00:00.000001+00:00"
    )
