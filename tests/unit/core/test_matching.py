"""GroupIndex and cascade: candidates by field, dependency ranks, cascades at any depth."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from smartgroups.core.catalog import Group, SpaceCatalog
from smartgroups.core.commands import parse_command
from smartgroups.core.conditions import References, evaluate
from smartgroups.core.matching import GroupIndex, cascade
from smartgroups.core.snapshot import MemberSnapshot

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def trig(field: str, op: str, value: Any = None) -> dict[str, Any]:
    return {"field": field, "op": op, **({} if value is None else {"value": value})}


class Space:
    """A catalog feeding an index, as the worker's definitions fan-out does."""

    def __init__(self) -> None:
        self.catalog = SpaceCatalog()
        self.index = GroupIndex()
        for p in ("a", "b", "c"):
            self.do("property.defined", property_id=p, name=p, value_type="boolean")

    def do(self, command_type: str, /, **fields: Any) -> Group | None:
        outcome = self.catalog.apply(parse_command({"type": command_type, **fields}))
        assert outcome.accepted, outcome
        return outcome.group

    def smart(self, group_id: str, conditions: dict[str, Any]) -> Group:
        group = self.do(
            "group.created", group_id=group_id, name=group_id, kind="smart", conditions=conditions
        )
        assert group is not None
        self.index.add(group)
        return group

    def static(self, group_id: str) -> Group:
        group = self.do("group.created", group_id=group_id, name=group_id, kind="static")
        assert group is not None
        self.index.add(group)
        return group


def bare(group_id: str, names: set[str], fields: set[str] | None = None) -> Group:
    """A group with hand-made references (to build what the catalog would refuse)."""
    refs = References(
        properties=frozenset(),
        questions=frozenset(),
        groups=frozenset(names),
        options=frozenset(),
        fields=frozenset(fields or {"groups"}),
        time_relative=False,
    )
    return Group(group_id, group_id, "smart", group_id, references=refs)


def test_candidates_are_the_groups_reading_a_changed_field() -> None:
    space = Space()
    space.smart("ga", trig("property.a", "eq", True))
    space.smart("gab", {"any": [trig("property.a", "eq", True), trig("property.b", "eq", True)]})
    space.smart("gmail", trig("profile.email", "email_domain", ["gmail.com"]))
    space.static("s")
    assert space.index.candidates(["property.a"]) == {"ga", "gab"}
    assert space.index.candidates(["property.b", "profile.email"]) == {"gab", "gmail"}
    assert space.index.candidates(["property.c", "profile.title"]) == set()
    space.index.remove("gab")
    assert space.index.candidates(["property.a", "property.b"]) == {"ga"}
    assert "gab" not in space.index and len(space.index) == 3


def test_dependents_and_ranks_follow_groups_triggers() -> None:
    space = Space()
    space.static("s")
    space.smart("x", trig("groups", "has_any", ["s"]))
    space.smart("y", {"all": [trig("groups", "has_all", ["s", "x"]), trig("property.a", "is_set")]})
    assert space.index.dependents("s") == {"x", "y"}
    assert space.index.dependents("x") == {"y"}
    assert space.index.dependents("y") == frozenset()
    assert [space.index.rank(g) for g in ("s", "x", "y")] == [0, 1, 2]
    assert space.index.rank("unknown") == -1


def test_groups_may_be_added_in_any_order() -> None:
    index = GroupIndex()
    index.add(bare("c", {"b"}))
    index.add(bare("b", {"a"}))
    index.add(bare("a", set()))
    assert index.rank("a") < index.rank("b") < index.rank("c")


def test_a_cycle_is_refused_not_looped() -> None:
    index = GroupIndex()
    index.add(bare("a", {"b"}))
    with pytest.raises(ValueError, match="cycle"):
        index.add(bare("b", {"a"}))


def test_time_fields_due_instants_and_elapsed_changes() -> None:
    space = Space()
    space.smart("recent", trig("profile.last_active_at", "within_last", {"days": 7}))
    space.smart("lapsed", trig("profile.last_active_at", "older_than", {"days": 30}))
    space.smart("plain", trig("property.a", "eq", True))
    index, field = space.index, "profile.last_active_at"
    assert index.time_fields("recent") == {field}
    assert index.time_fields("plain") == frozenset()

    active = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    value = "2026-11-20T10:00:00Z"
    first = active + timedelta(days=7, microseconds=1)  # "recent" turns false
    second = active + timedelta(days=30, microseconds=1)  # "lapsed" turns true
    assert index.next_flip(field, value, NOW) == first
    assert index.next_flip(field, value, first - timedelta(microseconds=1)) == first
    assert index.next_flip(field, value, first) == second
    assert index.next_flip(field, value, second) is None
    assert index.next_flip(field, "not a date", NOW) is None
    assert index.next_flip("property.a", True, NOW) is None

    # which groups' triggers changed for the value over (since, now]
    assert index.elapsed({field: (value, NOW)}, first - timedelta(microseconds=1)) == set()
    assert index.elapsed({field: (value, NOW)}, first) == {"recent"}
    assert index.elapsed({field: (value, first)}, second) == {"lapsed"}
    assert index.elapsed({field: (value, NOW)}, second) == {"recent", "lapsed"}
    assert index.elapsed({field: (None, NOW)}, second) == set()

    index.remove("recent")
    assert index.time_fields("recent") == frozenset()
    assert index.next_flip(field, value, NOW) == second


def test_within_next_changes_twice() -> None:
    space = Space()
    space.smart("soon", trig("profile.registered_at", "within_next", {"days": 2}))
    index, field = space.index, "profile.registered_at"
    event = datetime(2026, 11, 30, tzinfo=UTC)
    value = "2026-11-30"
    opens, closes = event - timedelta(days=2), event + timedelta(microseconds=1)
    assert index.next_flip(field, value, NOW) == opens
    assert index.next_flip(field, value, opens) == closes
    assert index.next_flip(field, value, closes) is None
    # risen and fallen back within the interval: still a change (the verdict may have moved)
    assert index.elapsed({field: (value, NOW)}, closes) == {"soon"}
    assert index.elapsed({field: (value, opens)}, closes - timedelta(microseconds=1)) == set()


def test_replacing_a_group_keeps_the_index_exact() -> None:
    space = Space()
    group = space.smart("g", trig("property.a", "eq", True))
    space.index.add(group)  # the worker re-adds on every definition change
    assert space.index.candidates(["property.a"]) == {"g"}
    assert len(space.index) == 1


class Member:
    """A member of ``space`` whose smart memberships are decided by the real evaluator."""

    def __init__(self, space: Space, properties: dict[str, object], static: set[str]) -> None:
        self.space = space
        self.properties = properties
        self.static = static
        self.calls: list[str] = []

    def decide(self, group_id: str, groups_now: frozenset[str]) -> bool:
        self.calls.append(group_id)
        group = self.space.catalog.groups.get(group_id)
        if group is None or not group.active:
            return False
        if group.kind == "static":
            return group_id in self.static
        snapshot = MemberSnapshot({}, self.properties, {}, groups_now)
        assert group.conditions is not None
        return evaluate(group.conditions, snapshot, NOW)


def test_cascade_reaches_any_depth_in_rank_order_deciding_each_group_once() -> None:
    space = Space()
    space.smart("g0", trig("property.a", "eq", True))
    depth = 40
    for i in range(1, depth):
        # each level also names g0 directly, so g0's flip queues every level at once
        space.smart(f"g{i}", trig("groups", "has_all", [f"g{i - 1}", "g0"]))
    member = Member(space, {"a": True}, set())
    flips = cascade(space.index, space.index.candidates(["property.a"]), member.decide, frozenset())
    assert flips == [(f"g{i}", True) for i in range(depth)]
    assert member.calls == [f"g{i}" for i in range(depth)]

    member.properties["a"] = False
    member.calls.clear()
    current = frozenset(f"g{i}" for i in range(depth))
    flips = cascade(space.index, ["g0"], member.decide, current)
    assert flips == [(f"g{i}", False) for i in range(depth)]
    assert len(member.calls) == len(set(member.calls)) == depth


def test_cascade_stops_where_nothing_flips() -> None:
    space = Space()
    space.smart("a", trig("property.a", "eq", True))
    space.smart("not_a", trig("groups", "has_none", ["a"]))
    space.smart(
        "a_or_b", {"any": [trig("groups", "has_any", ["a"]), trig("property.b", "eq", True)]}
    )
    member = Member(space, {"a": True, "b": True}, set())
    flips = cascade(space.index, ["a"], member.decide, frozenset({"a_or_b", "not_a"}))
    assert flips == [("a", True), ("not_a", False)]
    assert "a_or_b" in member.calls  # re-decided as a dependent, still in: no flip


def test_cascade_from_a_static_group_and_from_a_deleted_group() -> None:
    space = Space()
    space.static("staff")
    space.smart("not_staff", trig("groups", "has_none", ["staff"]))
    member = Member(space, {}, {"staff"})
    flips = cascade(space.index, ["staff"], member.decide, frozenset({"not_staff"}))
    assert flips == [("staff", True), ("not_staff", False)]

    # a group no longer in the index (deleted) is still decided (rank -1): it goes
    space.do("group.deleted", group_id="not_staff")
    space.index.remove("not_staff")
    flips = cascade(space.index, ["not_staff"], member.decide, frozenset({"staff", "not_staff"}))
    assert flips == [("not_staff", False)]


def test_cascade_of_nothing_is_nothing() -> None:
    assert cascade(GroupIndex(), [], lambda g, now: True, frozenset()) == []
