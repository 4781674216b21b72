"""Editable groups, blacklists at creation and segment sets, end to end through the services.

Random sequences of definition commands (creates with a blacklist, edits, (de)activations,
deletions, blacklist commands, segment set definitions, updates and deletions) and member events
(upserts, erasures) go through the in-memory services (:class:`tests.unit.service.bus.Bus`, small
scan chunks, several partitions; up to three definition commands wait on the topic before the
services run, so an edit's re-decision can be overtaken by the next one). The test folds the
same sequence with a deliberately plain reference written from the contract (sections 1, 3 and
9), its own guards included.

The sequence starts with group creations and member upserts, so later steps act on a populated
space. It checks at the end:

* every command got the reference's verdict (accepted or rejected);
* the compacted ``membership-state`` holds exactly the reference's memberships, and every
  pair's transitions alternate from version 1;
* the compacted ``segment-state`` holds exactly the reference's non-fallback segments, and every
  (set, member)'s ``segment.changed`` versions count from 1 with ``previous`` chaining.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from hypothesis import example, given, settings
from hypothesis import strategies as st
from tests.unit.service.bus import Bus

SPACE = "acme"
GROUPS = ("g1", "g2", "g3", "g4")
MEMBERS = ("m1", "m2", "m3", "m4", "m5")
SETS = ("s1", "s2")
DOMAINS = ("a.com", "b.com", "c.com")


def email(domain: str) -> dict[str, Any]:
    return {"field": "profile.email", "op": "email_domain", "value": [domain]}


def in_group(group_id: str) -> dict[str, Any]:
    return {"field": "groups", "op": "has_any", "value": [group_id]}


conditions = st.one_of(
    st.sampled_from(DOMAINS).map(lambda d: {"all": [email(d)]}),
    st.tuples(st.sampled_from(DOMAINS), st.sampled_from(DOMAINS)).map(
        lambda ds: {"any": [email(ds[0]), email(ds[1])]}
    ),
    st.sampled_from(DOMAINS).map(lambda d: {"not": email(d)}),
    st.sampled_from(GROUPS).map(lambda g: {"all": [in_group(g)]}),
    st.tuples(st.sampled_from(DOMAINS), st.sampled_from(GROUPS)).map(
        lambda x: {"any": [email(x[0]), in_group(x[1])]}
    ),
)
group_ids = st.sampled_from(GROUPS)
member_ids = st.sampled_from(MEMBERS)
set_lists = st.lists(group_ids, min_size=1, max_size=3, unique=True)

creates = st.tuples(
    st.just("create"),
    group_ids,
    conditions,
    st.booleans(),
    st.lists(member_ids, max_size=2, unique=True),
)
upserts = st.tuples(
    st.just("upsert"), member_ids, st.sampled_from(DOMAINS), st.sampled_from([True, True, False])
)
steps = st.one_of(
    creates,
    upserts,
    st.tuples(st.just("edit"), group_ids, conditions),
    st.tuples(st.just("edit"), group_ids, group_ids.map(lambda g: {"all": [in_group(g)]})),
    st.tuples(st.sampled_from(["deactivate", "activate", "delete"]), group_ids),
    st.tuples(st.sampled_from(["blacklist", "unblacklist"]), group_ids, member_ids),
    st.tuples(st.just("set_define"), st.sampled_from(SETS), set_lists),
    st.tuples(st.just("set_update"), st.sampled_from(SETS), set_lists),
    st.tuples(st.just("set_delete"), st.sampled_from(SETS)),
    st.tuples(st.just("erase"), member_ids),
    st.tuples(st.just("run")),
)


class Reference:
    """The contract's definitions, folded plainly (no indexes, no scans, no partitions)."""

    def __init__(self) -> None:
        self.groups: dict[str, dict[str, Any]] = {}  # id -> {conditions, active, editable}
        self.blacklist: set[tuple[str, str]] = set()
        self.sets: dict[str, list[str]] = {}
        self.members: dict[str, tuple[str, bool]] = {}  # id -> (domain, eligible)

    def names(self, cond: dict[str, Any]) -> set[str]:
        found: set[str] = set()
        for child in cond.get("all", cond.get("any", [cond.get("not", cond)])):
            if isinstance(child, dict) and child.get("field") == "groups":
                found.update(child["value"])
        return found

    def depends_on(self, group_id: str, target: str) -> bool:
        stack, seen = [group_id], set()
        while stack:
            current = stack.pop()
            if current == target:
                return True
            if current in seen or current not in self.groups:
                continue
            seen.add(current)
            stack.extend(self.names(self.groups[current]["conditions"]))
        return False

    def apply(self, step: tuple[Any, ...]) -> bool | None:
        """Apply a definition step; whether it is accepted (None for member events)."""
        kind = step[0]
        groups = self.groups
        if kind == "create":
            _, g, cond, editable, blacklist = step
            if g in groups or any(n not in groups for n in self.names(cond)):
                return False
            groups[g] = {"conditions": cond, "active": True, "editable": editable}
            self.blacklist |= {(g, m) for m in blacklist}
            return True
        if kind == "edit":
            _, g, cond = step
            if g not in groups or not groups[g]["editable"]:
                return False
            named = self.names(cond)
            if g in named or any(n not in groups for n in named):
                return False
            if any(self.depends_on(n, g) for n in named):
                return False
            groups[g]["conditions"] = cond
            return True
        if kind in ("deactivate", "activate"):
            if step[1] not in groups:
                return False
            groups[step[1]]["active"] = kind == "activate"
            return True
        if kind == "delete":
            g = step[1]
            if g not in groups:
                return False
            if any(g in self.names(o["conditions"]) for o in groups.values()):
                return False
            if any(g in listed for listed in self.sets.values()):
                return False
            del groups[g]
            self.blacklist = {(bg, m) for bg, m in self.blacklist if bg != g}
            return True
        if kind in ("blacklist", "unblacklist"):
            _, g, m = step
            if g not in groups:
                return False
            (self.blacklist.add if kind == "blacklist" else self.blacklist.discard)((g, m))
            return True
        if kind in ("set_define", "set_update"):
            _, s, listed = step
            if (s in self.sets) == (kind == "set_define"):
                return False
            if any(g not in groups for g in listed):
                return False
            self.sets[s] = listed
            return True
        if kind == "set_delete":
            return self.sets.pop(step[1], None) is not None
        if kind == "upsert":
            _, m, domain, eligible = step
            self.members[m] = (domain, eligible)
        elif kind == "erase":
            self.members.pop(step[1], None)
            self.blacklist = {(g, m) for g, m in self.blacklist if m != step[1]}
        return None

    def memberships(self, member_id: str) -> set[str]:
        domain, eligible = self.members[member_id]
        decided: dict[str, bool] = {}

        def holds(cond: dict[str, Any]) -> bool:
            if "all" in cond:
                return all(holds(c) for c in cond["all"])
            if "any" in cond:
                return any(holds(c) for c in cond["any"])
            if "not" in cond:
                return not holds(cond["not"])
            if cond["field"] == "groups":
                return any(is_in(g) for g in cond["value"])
            return bool(domain == cond["value"][0])

        def is_in(group_id: str) -> bool:
            if group_id not in decided:
                group = self.groups.get(group_id)
                decided[group_id] = (
                    group is not None
                    and group["active"]
                    and eligible
                    and (group_id, member_id) not in self.blacklist
                    and holds(group["conditions"])
                )
            return decided[group_id]

        return {g for g in self.groups if is_in(g)}

    def segment(self, set_id: str, member_id: str) -> str | None:
        groups_in = self.memberships(member_id) if member_id in self.members else set()
        return next((g for g in self.sets[set_id] if g in groups_in), None)


def command(n: int, step: tuple[Any, ...]) -> dict[str, Any]:
    kind = step[0]
    base: dict[str, Any] = {"id": f"c{n}", "space": SPACE}
    if kind == "create":
        _, g, cond, editable, blacklist = step
        return {
            **base,
            "type": "group.created",
            "group_id": g,
            "name": g,
            "kind": "smart",
            "conditions": cond,
            "editable": editable,
            "blacklist": blacklist,
        }
    if kind == "edit":
        return {**base, "type": "group.updated", "group_id": step[1], "conditions": step[2]}
    if kind in ("deactivate", "activate", "delete"):
        return {**base, "type": f"group.{kind}d", "group_id": step[1]}
    if kind in ("blacklist", "unblacklist"):
        return {**base, "type": f"group.{kind}ed", "group_id": step[1], "member_id": step[2]}
    if kind == "set_define":
        return {
            **base,
            "type": "segment_set.defined",
            "set_id": step[1],
            "name": step[1],
            "groups": step[2],
            "fallback": "native",
        }
    if kind == "set_update":
        return {**base, "type": "segment_set.updated", "set_id": step[1], "groups": step[2]}
    assert kind == "set_delete"
    return {**base, "type": "segment_set.deleted", "set_id": step[1]}


async def play(bus: Bus, reference: Reference, sequence: list[tuple[Any, ...]]) -> None:
    expected: dict[str, bool] = {}
    waiting = 0
    for n, step in enumerate(sequence):
        kind = step[0]
        if kind == "run" or (kind in ("upsert", "erase") and waiting):
            await bus.run()
            waiting = 0
        if kind == "run":
            continue
        verdict = reference.apply(step)
        if verdict is not None:
            bus.event("group-changes", command(n, step))
            expected[f"c{n}"] = verdict
            waiting += 1
            if waiting >= 3:
                await bus.run()
                waiting = 0
            continue
        event: dict[str, Any] = {"id": f"e{n}", "space": SPACE, "member_id": step[1]}
        if kind == "upsert":
            status = "accepted" if step[3] else "deactivated"
            profile = {"email": f"{step[1]}@{step[2]}", "status": status}
            bus.event("member-changes", {**event, "type": "member.upserted", "profile": profile})
        else:
            bus.event("member-changes", {**event, "type": "member.deleted"})
        await bus.run()
    await bus.run()
    got = {
        r["command_id"]: r["type"] == "command.accepted"
        for r in (orjson.loads(o.value or b"") for o in bus.take("results"))
    }
    assert got == expected


def compacted(bus: Bus, role: str) -> dict[bytes, dict[str, Any]]:
    view: dict[bytes, dict[str, Any] | None] = {}
    for sent in bus.outputs:
        if sent.role == role:
            assert sent.key is not None
            view[sent.key] = None if sent.value is None else orjson.loads(sent.value)
    return {k: v for k, v in view.items() if v is not None}


CYCLE = [
    ("create", "g1", {"all": [email("a.com")]}, True, ["m2"]),
    ("create", "g2", {"any": [email("b.com"), in_group("g1")]}, True, []),
    ("upsert", "m1", "a.com", True),
    ("upsert", "m2", "a.com", True),
    ("upsert", "m3", "b.com", True),
    ("set_define", "s1", ["g1", "g2"]),
    ("edit", "g1", {"all": [in_group("g2")]}),  # a loop: cycle
    ("edit", "g2", {"all": [email("c.com")]}),  # two edits before a run
    ("edit", "g1", {"any": [email("b.com"), in_group("g2")]}),
    ("upsert", "m4", "c.com", True),
]


@settings(max_examples=300, deadline=None)
@example(sequence=CYCLE, partitions=2, chunk=1)
@given(
    sequence=st.tuples(
        st.lists(st.one_of(creates, upserts), min_size=4, max_size=10),
        st.lists(steps, min_size=5, max_size=30),
    ).map(lambda parts: parts[0] + parts[1]),
    partitions=st.integers(1, 3),
    chunk=st.integers(1, 3),
)
def test_memberships_and_segments_equal_the_reference_fold(
    sequence: list[tuple[Any, ...]], partitions: int, chunk: int
) -> None:
    bus = Bus(partitions=partitions, scan_chunk=chunk)
    reference = Reference()
    asyncio.run(play(bus, reference, sequence))

    memberships = compacted(bus, "state")
    want = {
        f"{SPACE}:{g}:{m}".encode() for m in reference.members for g in reference.memberships(m)
    }
    assert set(memberships) == want
    versions: dict[tuple[str, str], int] = {}
    for change in (orjson.loads(o.value or b"") for o in bus.outputs if o.role == "changes"):
        pair = (change["group_id"], change["member_id"])
        versions[pair] = versions.get(pair, 0) + 1
        assert change["version"] == versions[pair]
        assert (change["type"] == "member.added") == (change["version"] % 2 == 1)

    segments = compacted(bus, "segment_state")
    want_segments = {
        f"{SPACE}:{s}:{m}".encode(): reference.segment(s, m)
        for s in reference.sets
        for m in MEMBERS
    }
    assert {k: v["segment"] for k, v in segments.items()} == {
        k: v for k, v in want_segments.items() if v is not None
    }
    last: dict[tuple[str, str], tuple[int, str | None]] = {}
    for change in (orjson.loads(o.value or b"") for o in bus.outputs if o.role == "segments"):
        triple = (change["set_id"], change["member_id"])
        version, segment = last.get(triple, (0, None))
        assert (change["version"], change["previous"]) == (version + 1, segment)
        assert change["segment"] != change["previous"]
        last[triple] = (change["version"], change["segment"])
