"""Properties of matching: candidates = a brute-force scan; cascade = a naive fixpoint; the
native cascade = the Python one, call for call; the shortcut = calling ``decide``.

Groups are created (and some deactivated) through the real catalog, so the ``groups``
references form a DAG exactly as in production, and decided with the real evaluator.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from tests.native_switch import native_only

from smartgroups.core.catalog import Group, SpaceCatalog
from smartgroups.core.commands import parse_command
from smartgroups.core.conditions import All, Trigger, evaluate, native
from smartgroups.core.matching import GroupIndex, Shortcut, cascade, python_cascade
from smartgroups.core.snapshot import MemberSnapshot

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
PROPERTIES = [f"p{i}" for i in range(6)]
SEEN = "seen"  # a date property, read by a time-relative trigger
FIELDS = [f"property.{p}" for p in [*PROPERTIES, SEEN]] + [
    "profile.email",
    "profile.tags",
    "groups",
]


def new_catalog() -> SpaceCatalog:
    catalog = SpaceCatalog()
    for p in PROPERTIES:
        define = {"type": "property.defined", "property_id": p, "name": p, "value_type": "boolean"}
        assert catalog.apply(parse_command(define)).accepted
    define = {"type": "property.defined", "property_id": SEEN, "name": SEEN, "value_type": "date"}
    assert catalog.apply(parse_command(define)).accepted
    return catalog


def create(catalog: SpaceCatalog, group_id: str, conditions: dict[str, Any] | None) -> Group:
    command: dict[str, Any] = {"type": "group.created", "group_id": group_id, "name": group_id}
    if conditions is None:
        command["kind"] = "static"
    else:
        command.update(kind="smart", conditions=conditions)
    outcome = catalog.apply(parse_command(command))
    assert outcome.accepted, outcome
    assert outcome.group is not None
    return outcome.group


@st.composite
def trigger(draw: st.DrawFn, earlier: list[str]) -> dict[str, Any]:
    choices = ["property", "email", "tags", "seen"] + (["groups"] if earlier else [])
    kind = draw(st.sampled_from(choices))
    if kind == "seen":
        return {"field": f"property.{SEEN}", "op": "within_last", "value": {"days": 30}}
    if kind == "property":
        p = draw(st.sampled_from(PROPERTIES))
        return {"field": f"property.{p}", "op": "eq", "value": draw(st.booleans())}
    if kind == "email":
        return {"field": "profile.email", "op": "email_domain", "value": ["acme.com"]}
    if kind == "tags":
        return {"field": "profile.tags", "op": "has_any", "value": ["vip"]}
    op = draw(st.sampled_from(["has_any", "has_all", "has_none"]))
    named = draw(st.lists(st.sampled_from(earlier), min_size=1, max_size=3, unique=True))
    return {"field": "groups", "op": op, "value": named}


@st.composite
def conditions(draw: st.DrawFn, earlier: list[str]) -> dict[str, Any]:
    leaves = draw(st.lists(trigger(earlier), min_size=1, max_size=5))
    split = draw(st.integers(0, len(leaves)))
    inner = {draw(st.sampled_from(["all", "any"])): leaves[:split] or leaves}
    outer: dict[str, Any] = {draw(st.sampled_from(["all", "any"])): [inner, *leaves[split:]]}
    return {"not": outer} if draw(st.booleans()) and draw(st.booleans()) else outer


@st.composite
def spaces(draw: st.DrawFn, whole: bool = False) -> tuple[SpaceCatalog, list[str]]:
    """A catalog of 1 to 14 groups; smart ones may name any earlier group (a random DAG).

    ``whole``: some smart groups also read the whole group set (``groups`` ``is_set`` or
    ``is_not_set``, which the catalog refuses, grafted on after creation), so the native
    evaluator's path that builds a cascade's updated groups is held to the reference too.
    """
    catalog = new_catalog()
    ids: list[str] = []
    for i in range(draw(st.integers(1, 14))):
        group_id = f"g{i}"
        is_static = draw(st.integers(0, 4)) == 0
        group = create(catalog, group_id, None if is_static else draw(conditions(list(ids))))
        if whole and group.conditions is not None and draw(st.integers(0, 3)) == 0:
            op = draw(st.sampled_from(["is_set", "is_not_set"]))
            reads = Trigger("groups", op, None, "multi_select")
            catalog._groups[group_id] = replace(group, conditions=All((group.conditions, reads)))
        ids.append(group_id)
    for group_id in draw(st.sets(st.sampled_from(ids), max_size=2)):
        command = {"type": "group.deactivated", "group_id": group_id}
        assert catalog.apply(parse_command(command)).accepted
    return catalog, ids


@st.composite
def members(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "properties": {
            **{p: draw(st.booleans()) for p in PROPERTIES if draw(st.booleans())},
            **(
                {SEEN: draw(st.sampled_from(["2026-11-20", "2026-01-01"]))}
                if draw(st.booleans())
                else {}
            ),
        },
        "email": draw(st.sampled_from(["a@acme.com", "b@other.org", None])),
        "tags": draw(st.sampled_from([["vip"], ["x"], None])),
    }


def snapshot(member: dict[str, Any], groups_now: frozenset[str]) -> MemberSnapshot:
    profile = {"email": member["email"], "tags": member["tags"], "status": "accepted"}
    return MemberSnapshot(profile, member["properties"], {}, groups_now)


def decider(catalog: SpaceCatalog, member: dict[str, Any], static: frozenset[str]) -> Any:
    def decide(group_id: str, groups_now: frozenset[str]) -> bool:
        group = catalog.groups.get(group_id)
        if group is None or not group.active:
            return False
        if group.kind == "static":
            return group_id in static
        assert group.conditions is not None
        return evaluate(group.conditions, snapshot(member, groups_now), NOW)

    return decide


def fixpoint(
    catalog: SpaceCatalog, member: dict[str, Any], static: frozenset[str]
) -> frozenset[str]:
    """Naive: re-decide every group until nothing changes (terminates on a DAG)."""
    decide = decider(catalog, member, static)
    groups_now: frozenset[str] = frozenset()
    for _ in range(len(catalog.groups) + 2):
        following = frozenset(g for g in sorted(catalog.groups) if decide(g, groups_now))
        if following == groups_now:
            return groups_now
        groups_now = following
    raise AssertionError("no fixpoint")


def changed_fields(before: dict[str, Any], after: dict[str, Any]) -> set[str]:
    changed = {
        f"property.{p}"
        for p in [*PROPERTIES, SEEN]
        if before["properties"].get(p) != after["properties"].get(p)
    }
    if before["email"] != after["email"]:
        changed.add("profile.email")
    if before["tags"] != after["tags"]:
        changed.add("profile.tags")
    return changed


@settings(max_examples=150, deadline=None)
@given(
    space=spaces(),
    changed=st.sets(st.sampled_from(FIELDS)),
    removed=st.sets(st.integers(0, 13)),
    data=st.data(),
)
def test_candidates_equal_a_brute_force_scan(
    space: tuple[SpaceCatalog, list[str]], changed: set[str], removed: set[int], data: st.DataObject
) -> None:
    catalog, ids = space
    index = GroupIndex()
    for group_id in data.draw(st.permutations(ids)):  # any order, as a partition loads them
        index.add(catalog.groups[group_id])
    kept = {g: catalog.groups[g] for g in ids}
    for i in removed:
        if f"g{i}" in kept:
            index.remove(f"g{i}")
            del kept[f"g{i}"]
    brute = {
        g for g, group in kept.items() if group.references and group.references.fields & changed
    }
    assert index.candidates(changed) == brute
    for group_id, group in kept.items():
        named = group.references.groups if group.references else frozenset()
        assert all(index.rank(n) < index.rank(group_id) for n in named if n in kept)
        assert index.dependents(group_id) == {
            d
            for d, other in kept.items()
            if other.references and group_id in other.references.groups
        }


@settings(max_examples=200, deadline=None)
@given(space=spaces(), before=members(), after=members(), data=st.data())
def test_cascade_reaches_the_naive_fixpoint(
    space: tuple[SpaceCatalog, list[str]],
    before: dict[str, Any],
    after: dict[str, Any],
    data: st.DataObject,
) -> None:
    catalog, ids = space
    index = GroupIndex()
    for group_id in data.draw(st.permutations(ids)):
        index.add(catalog.groups[group_id])
    static = frozenset(g for g in ids if catalog.groups[g].kind == "static")
    static_before = (
        frozenset(data.draw(st.sets(st.sampled_from(sorted(static))))) if static else frozenset()
    )
    static_after = (
        frozenset(data.draw(st.sets(st.sampled_from(sorted(static))))) if static else frozenset()
    )

    current = fixpoint(catalog, before, static_before)
    start = index.candidates(changed_fields(before, after)) | (static_before ^ static_after)
    calls: list[str] = []
    decide = decider(catalog, after, static_after)

    def counted(group_id: str, groups_now: frozenset[str]) -> bool:
        calls.append(group_id)
        return decide(group_id, groups_now)

    flips = cascade(index, start, counted, current)
    final = set(current)
    for group_id, member in flips:
        assert (group_id in final) != member  # every flip is a real change
        (final.add if member else final.discard)(group_id)
    assert final == fixpoint(catalog, after, static_after)
    assert len(calls) == len(set(calls))  # each group decided at most once


@native_only
@settings(max_examples=300, deadline=None)
@given(
    space=spaces(whole=True),
    member=members(),
    exempt=st.sets(st.sampled_from([f"g{i}" for i in range(14)])),
    eligible=st.booleans(),
    shortcut_on=st.booleans(),
    data=st.data(),
)
def test_the_native_cascade_decides_as_the_python_cascade(
    space: tuple[SpaceCatalog, list[str]],
    member: dict[str, Any],
    exempt: set[str],
    eligible: bool,
    shortcut_on: bool,
    data: st.DataObject,
) -> None:
    """Same flips in the same order, the same decide calls with the same group sets, the same
    groups recorded as timed; from any current groups and any start (unknown ids too)."""
    assert native.AVAILABLE, "the native extension is not built: pip install -e ."
    catalog, ids = space
    index = GroupIndex()
    for group_id in data.draw(st.permutations(ids)):
        index.add(catalog.groups[group_id])
    current = frozenset(data.draw(st.sets(st.sampled_from(ids))))
    start = data.draw(st.lists(st.sampled_from([*ids, "unknown"])))
    runs = []
    for run in (python_cascade, cascade):
        calls: list[tuple[str, frozenset[str]]] = []

        def decide(group_id: str, groups_now: frozenset[str], calls: list[Any] = calls) -> bool:
            calls.append((group_id, groups_now))
            return hash((group_id, groups_now)) % 3 == 0  # any answer: only agreement counts

        shortcut = Shortcut(snapshot(member, current), NOW, eligible, exempt, [])
        flips = run(index, start, decide, current, shortcut if shortcut_on else None)
        runs.append((flips, calls, shortcut.timed))
    assert runs[0] == runs[1]


@settings(max_examples=300, deadline=None)
@given(space=spaces(whole=True), member=members(), eligible=st.booleans(), data=st.data())
def test_the_shortcut_decides_as_decide_would(
    space: tuple[SpaceCatalog, list[str]],
    member: dict[str, Any],
    eligible: bool,
    data: st.DataObject,
) -> None:
    """For a decide that keeps the shortcut's promise, the flips are those of decide alone, and
    decide is asked exactly about the decided groups the shortcut does not cover. Groups that
    name a flipped group see the updated groups through the shortcut too (``has_any``/
    ``has_all`` read through the flips; ``is_set`` on ``groups`` reads the rebuilt set)."""
    catalog, ids = space
    index = GroupIndex()
    for group_id in ids:
        index.add(catalog.groups[group_id])
    static = frozenset(data.draw(st.sets(st.sampled_from(ids))))
    exempt = frozenset(data.draw(st.sets(st.sampled_from(ids))))
    current = frozenset(data.draw(st.sets(st.sampled_from(ids))))
    start = data.draw(st.sets(st.sampled_from(ids)))
    decide = decider(catalog, member, static)

    def promised(group_id: str, groups_now: frozenset[str]) -> bool:
        group = catalog.groups[group_id]
        if group.kind == "smart" and (not eligible or group_id in exempt):
            return False  # ineligible, or blacklisted: what exempt stands for
        return decide(group_id, groups_now)

    asked: list[str] = []

    def counted(group_id: str, groups_now: frozenset[str]) -> bool:
        asked.append(group_id)
        return promised(group_id, groups_now)

    shortcut = Shortcut(snapshot(member, current), NOW, eligible, exempt, [])
    expected = cascade(index, start, promised, current)
    assert cascade(index, start, counted, current, shortcut) == expected

    def covered(group_id: str) -> bool:
        group = catalog.groups[group_id]
        return group.kind == "smart" and group.active and group_id not in exempt

    decided = set(start).union(*(index.dependents(g) for g, _ in expected))
    assert sorted(asked) == sorted(g for g in decided if not covered(g))
    assert sorted(shortcut.timed) == sorted(
        g for g in decided if covered(g) and eligible and index.time_fields(g)
    )
