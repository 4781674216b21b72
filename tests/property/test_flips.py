"""GroupIndex.affected never misses a group whose verdict a change flips (against the evaluator).

Groups of every value type and op, some under ``not``, are created through the real catalog;
a member's fields change from random old to random new values (right type, wrong type, missing,
equal up to case, dates in several spellings). Every group whose conditions evaluate differently
on the old and new values, in the direction that changes the member's membership, must be in
``affected``; and a cascade started from ``affected`` ends where deciding every group ends.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from tests.property.strategies import OPS

from smartgroups.core.catalog import SpaceCatalog
from smartgroups.core.commands import parse_command
from smartgroups.core.conditions import evaluate
from smartgroups.core.conditions.model import Trigger
from smartgroups.core.flips import NEGATIVE, POSITIVE, FieldTriggers
from smartgroups.core.matching import GroupIndex, cascade
from smartgroups.core.snapshot import MemberSnapshot
from smartgroups.core.values import parse_instant

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
OPTIONS = ["a", "B", "c"]
TYPES = {
    "property.t": "text",
    "property.n": "number",
    "property.b": "boolean",
    "property.d": "date",
    "property.s": "single_select",
    "property.m": "multi_select",
    "profile.email": "text",
    "profile.tags": "multi_select",
    "profile.last_active_at": "date",
}
TEXTS = [
    "a",
    "A",
    "ab",
    "Ab c",
    "é",
    "Straße",  # casefolds to "strasse", as "STRASSE" does (lower() would not)
    "STRASSE",
    "x@acme.com",
    "y@Mail.ACME.com",
    "z@other.org",
]
NUMBERS = [0, 1, 1.0, 2.5, 3, -1]
DATES = [
    "2026-01-01",
    "2026-01-01T00:00:00Z",
    "2026-01-01T01:00:00+01:00",
    "2026-11-20T10:00:00Z",
    "2026-11-25T10:00:00Z",
    "2025-06-01T00:00:00Z",
]
ANY_VALUE = st.one_of(
    st.none(),
    st.sampled_from(TEXTS + DATES + OPTIONS + ["b", "C"]),
    st.sampled_from(NUMBERS),
    st.booleans(),
    st.lists(st.sampled_from([*OPTIONS, "b", "x"]), max_size=3),
    st.just([1, "a"]),
)


def member_value(field: str) -> st.SearchStrategy[Any]:
    """Mostly a value of the field's type from the triggers' small domains; sometimes anything."""
    field_type = TYPES[field]
    domain: st.SearchStrategy[Any] = {
        "text": st.sampled_from(TEXTS),
        "number": st.sampled_from(NUMBERS),
        "boolean": st.booleans(),
        "date": st.sampled_from(DATES),
        "single_select": st.sampled_from([*OPTIONS, "b", "C"]),
        "multi_select": st.lists(st.sampled_from([*OPTIONS, "b"]), max_size=3),
    }[field_type]
    return st.one_of(domain, domain, domain, ANY_VALUE)


@st.composite
def values(draw: st.DrawFn, min_size: int = 0) -> dict[str, Any]:
    fields = draw(
        st.lists(st.sampled_from(sorted(TYPES)), min_size=min_size, max_size=3, unique=True)
    )
    return {field: draw(member_value(field)) for field in fields}


def value_for(field_type: str, op: str) -> st.SearchStrategy[Any]:
    if op in ("is_set", "is_not_set"):
        return st.none()
    if op in ("within_last", "older_than", "within_next"):
        return st.builds(lambda n: {"days": n}, st.integers(0, 400))
    if field_type == "text":
        if op == "email_domain":
            return st.lists(st.sampled_from(["acme.com", "other.org"]), min_size=1, unique=True)
        if op in ("in", "not_in"):
            return st.lists(st.sampled_from(TEXTS), min_size=1, max_size=3)
        return st.sampled_from(TEXTS)
    if field_type == "number":
        if op == "between":
            return st.tuples(st.sampled_from(NUMBERS), st.sampled_from(NUMBERS)).map(sorted)
        if op in ("in", "not_in"):
            return st.lists(st.sampled_from(NUMBERS), min_size=1, max_size=3)
        return st.sampled_from(NUMBERS)
    if field_type == "boolean":
        return st.booleans()
    if field_type == "date":
        if op == "between":
            return st.tuples(st.sampled_from(DATES), st.sampled_from(DATES)).map(
                lambda pair: sorted(pair, key=lambda d: d if "T" in d else d + "T00:00:00Z")
            )
        return st.sampled_from(DATES)
    if op in ("in", "not_in", "has_any", "has_all", "has_none"):
        return st.lists(st.sampled_from(OPTIONS), min_size=1, max_size=3)
    return st.sampled_from(OPTIONS)


@st.composite
def triggers_on(draw: st.DrawFn, field: str) -> dict[str, Any]:
    """A trigger on ``field``: any op of its type (or is_set / is_not_set), a value that fits."""
    field_type = TYPES[field]
    op = draw(st.sampled_from([*OPS[field_type], "is_set", "is_not_set"]))
    node: dict[str, Any] = {"field": field, "op": op}
    value = draw(value_for(field_type, op))
    if value is not None:
        node["value"] = value
    return node


def triggers() -> st.SearchStrategy[dict[str, Any]]:
    """A trigger on any of the fields."""
    return st.sampled_from(sorted(TYPES)).flatmap(triggers_on)


@st.composite
def trees(draw: st.DrawFn) -> dict[str, Any]:
    leaves = draw(st.lists(triggers(), min_size=1, max_size=3))
    node: dict[str, Any] = {draw(st.sampled_from(["all", "any"])): leaves}
    if draw(st.booleans()):
        node = {"not": node}
    if draw(st.booleans()):
        node = {draw(st.sampled_from(["all", "any"])): [node, draw(triggers())]}
    return node


def catalog_with(conditions: list[dict[str, Any]]) -> tuple[SpaceCatalog, list[str]]:
    catalog = SpaceCatalog()
    for field, field_type in TYPES.items():
        source, _, ident = field.partition(".")
        if source != "property":
            continue
        command: dict[str, Any] = {
            "type": "property.defined",
            "property_id": ident,
            "name": ident,
            "value_type": field_type,
        }
        if field_type.endswith("select"):
            command["options"] = OPTIONS
        assert catalog.apply(parse_command(command)).accepted
    ids = []
    for i, tree in enumerate(conditions):
        command = {
            "type": "group.created",
            "group_id": f"g{i}",
            "name": "g",
            "kind": "smart",
            "conditions": tree,
        }
        outcome = catalog.apply(parse_command(command))
        if outcome.accepted:  # e.g. between [2026-01-01T01:00+01:00, 2026-01-01] may be invalid
            ids.append(f"g{i}")
    return catalog, ids


def snapshot(values: dict[str, Any]) -> MemberSnapshot:
    profile = {"status": "accepted"}
    properties = {}
    for field, value in values.items():
        if value is None:
            continue
        source, _, key = field.partition(".")
        (profile if source == "profile" else properties)[key] = value
    return MemberSnapshot(profile, properties, {}, frozenset())


@settings(max_examples=500, deadline=None)
@given(
    conditions=st.lists(trees(), min_size=1, max_size=12),
    before=values(),
    changes=values(min_size=1),
)
def test_affected_holds_every_group_whose_verdict_flips(
    conditions: list[dict[str, Any]], before: dict[str, Any], changes: dict[str, Any]
) -> None:
    catalog, ids = catalog_with(conditions)
    index = GroupIndex()
    for group_id in ids:
        index.add(catalog.groups[group_id])
    after = {**before, **changes}
    old, new = snapshot(before), snapshot(after)

    def verdict(group_id: str, member: MemberSnapshot) -> bool:
        group = catalog.groups[group_id]
        assert group.conditions is not None
        return evaluate(group.conditions, member, NOW)

    current = frozenset(g for g in ids if verdict(g, old))
    affected = index.affected({f: (before.get(f), after.get(f)) for f in changes}, current, NOW)
    flipped = {g for g in ids if verdict(g, old) != verdict(g, new)}
    assert flipped <= affected
    assert affected <= index.candidates(changes)

    def decide(group_id: str, groups_now: frozenset[str]) -> bool:
        return verdict(group_id, new)

    final = set(current)
    for group_id, member in cascade(index, affected, decide, current):
        (final.add if member else final.discard)(group_id)
    assert final == {g for g in ids if verdict(g, new)}


@settings(max_examples=1000, deadline=None)
@given(field=st.sampled_from(sorted(TYPES)), data=st.data())
def test_flips_are_exactly_the_triggers_whose_truth_changed(
    field: str, data: st.DataObject
) -> None:
    """Per distinct trigger on a field, ``flips`` yields once each trigger whose truth differs
    between the old and the new value, with ``rose`` its new truth, and nothing else: the
    value indexes (thresholds, ranges, keys, options, texts) are exact, not supersets."""
    check_flips(field, data)


@settings(max_examples=600, deadline=None)
@given(field=st.sampled_from(["property.m", "profile.tags", "property.t"]), data=st.data())
def test_option_and_text_flips_are_exact(field: str, data: st.DataObject) -> None:
    """The same, more often on option lists and texts, where the set algebra of ``has_any``
    (an option added while another stays held), ``has_all`` and the folded text tests need
    many shapes to be seen."""
    check_flips(field, data)


def check_flips(field: str, data: st.DataObject) -> None:
    conditions = data.draw(st.lists(triggers_on(field), min_size=1, max_size=10))
    catalog, ids = catalog_with(conditions)
    table = FieldTriggers()
    for group_id in ids:
        trigger = catalog.groups[group_id].conditions
        assert isinstance(trigger, Trigger)
        table.add(trigger, group_id, POSITIVE)
    old_value, new_value = data.draw(member_value(field)), data.draw(member_value(field))
    old, new = snapshot({field: old_value}), snapshot({field: new_value})
    expected = {
        trigger: evaluate(trigger, new, NOW)
        for trigger in table.entries
        if evaluate(trigger, old, NOW) != evaluate(trigger, new, NOW)
    }
    found = [(entry.trigger, rose) for entry, rose in table.flips(old_value, new_value, NOW)]
    assert len(found) == len({trigger for trigger, _ in found})  # each trigger once
    assert dict(found) == expected


TIME_OPS = ["within_last", "older_than", "within_next"]
MICROSECOND = timedelta(microseconds=1)


@settings(max_examples=400, deadline=None)
@given(
    spans=st.lists(
        st.tuples(st.sampled_from(TIME_OPS), st.integers(0, 60)), min_size=1, max_size=6
    ),
    value=st.one_of(st.sampled_from(DATES), st.none(), st.just("soon"), st.just(7)),
    start_hours=st.integers(-100 * 24, 500 * 24),
    length_hours=st.integers(0, 90 * 24),
    on_edge=st.none() | st.integers(0, 200),
    end_on_edge=st.none() | st.integers(0, 200),
)
def test_due_instants_and_elapsed_changes_follow_the_evaluator(
    spans: list[tuple[str, int]],
    value: Any,
    start_hours: int,
    length_hours: int,
    on_edge: int | None,
    end_on_edge: int | None,
) -> None:
    """``next_flip`` is the first instant after now at which some verdict changes; ``elapsed``
    holds exactly the groups whose verdict changes at some instant of ``(since, now]``.

    A verdict ``within_last``/``older_than``/``within_next`` n can only change where the member's
    instant v is n, 0 or -n away (give or take 1µs): sampling the evaluator at those instants
    and at the interval's ends sees every change.
    """
    conditions = [{"field": "property.d", "op": op, "value": {"days": n}} for op, n in spans]
    catalog, ids = catalog_with(conditions)
    index = GroupIndex()
    for group_id in ids:
        index.add(catalog.groups[group_id])
    member = snapshot({"property.d": value})

    def verdict(group_id: str, at: datetime) -> bool:
        group = catalog.groups[group_id]
        assert group.conditions is not None
        return evaluate(group.conditions, member, at)

    instant = parse_instant(value) if isinstance(value, str) else None
    edges: set[datetime] = set()
    if instant is not None:
        for _, n in spans:
            for centre in (instant - timedelta(days=n), instant, instant + timedelta(days=n)):
                edges.update((centre - MICROSECOND, centre, centre + MICROSECOND))

    def changes_within(group_id: str, since: datetime, until: datetime) -> bool:
        seen = {verdict(group_id, t) for t in edges | {since, until} if since <= t <= until}
        return len(seen) > 1

    since = NOW + timedelta(hours=start_hours)
    if on_edge is not None and edges:  # start exactly where a verdict may change
        since = sorted(edges)[on_edge % len(edges)]
    until = since + timedelta(hours=length_hours)
    if end_on_edge is not None and edges:  # end exactly where a verdict may change
        until = max(since, sorted(edges)[end_on_edge % len(edges)])
    assert index.elapsed({"property.d": (value, since)}, until) == {
        g for g in ids if changes_within(g, since, until)
    }

    due = index.next_flip("property.d", value, since)
    later = sorted(t for t in edges if t > since)
    if due is None:
        assert not any(changes_within(g, since, later[-1]) for g in ids if later)
        return
    assert due > since
    before_due = due - MICROSECOND
    assert not any(changes_within(g, since, before_due) for g in ids)
    assert any(verdict(g, before_due) != verdict(g, due) for g in ids)


@settings(max_examples=1000, deadline=None)
@given(
    field=st.sampled_from(sorted(TYPES)),
    polarity=st.lists(st.sampled_from([POSITIVE, NEGATIVE, POSITIVE | NEGATIVE]), min_size=13),
    removed=st.sets(st.integers(0, 12), max_size=6),
    data=st.data(),
)
def test_spread_gives_the_groups_of_the_flips_by_direction_and_polarity(
    field: str, polarity: list[int], removed: set[int], data: st.DataObject
) -> None:
    """``spread`` (what ``affected`` uses) puts each group of a flipped trigger in the set of
    its direction and polarity, exactly as ``flips`` names them: the column slices and the
    per-trigger path agree, under ``not`` too, after groups were removed as well. Groups share
    triggers now and then, so one trigger's groups mix polarities."""
    conditions = data.draw(st.lists(triggers_on(field), min_size=1, max_size=10))
    catalog, ids = catalog_with(conditions + conditions[:3])  # a few triggers used twice
    table = FieldTriggers()
    for group_id, bits in zip(ids, polarity, strict=False):  # (ids: at most 13)
        trigger = catalog.groups[group_id].conditions
        assert isinstance(trigger, Trigger)
        table.add(trigger, group_id, bits)
    for i in removed & set(range(len(ids))):
        trigger = catalog.groups[ids[i]].conditions
        assert isinstance(trigger, Trigger)
        table.discard(trigger, ids[i])
    old, new = data.draw(member_value(field)), data.draw(member_value(field))
    expected: dict[tuple[bool, bool], set[str]] = {
        (rose, negative): set() for rose in (True, False) for negative in (False, True)
    }
    for entry, rose in table.flips(old, new, NOW):
        expected[rose, False] |= entry.positive
        expected[rose, True] |= entry.negative_in
    found: dict[tuple[bool, bool], set[str]] = {key: set() for key in expected}
    table.spread(
        old,
        new,
        NOW,
        found[True, False],
        found[True, True],
        found[False, False],
        found[False, True],
    )
    assert found == expected
