"""Issue 18 over the in-memory services: blacklist at creation, editable groups, segment sets.

Driven like the worker (:class:`tests.unit.service.bus.Bus`), with a small scan chunk so that
backfills, re-decisions and set resolutions take several steps interleaved with live inputs.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from tests.unit.service.bus import Bus

SPACE = "acme"
ACME = {"field": "profile.email", "op": "email_domain", "value": ["acme.com"]}
BETA = {"field": "profile.email", "op": "email_domain", "value": ["beta.com"]}
_ids = iter(range(1, 1_000_000))


def command(type_: str, **fields: Any) -> dict[str, Any]:
    return {"id": f"c{next(_ids)}", "type": type_, "space": SPACE, **fields}


def upsert(member_id: str, **profile: Any) -> dict[str, Any]:
    return {
        "id": f"e{next(_ids)}",
        "type": "member.upserted",
        "space": SPACE,
        "member_id": member_id,
        "profile": profile,
    }


def smart(group_id: str, conditions: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return command(
        "group.created",
        group_id=group_id,
        name=group_id.title(),
        kind="smart",
        conditions=conditions,
        **extra,
    )


def results(bus: Bus) -> list[dict[str, Any]]:
    return [orjson.loads(o.value or b"") for o in bus.take("results")]


def segments(bus: Bus) -> list[dict[str, Any]]:
    return [orjson.loads(o.value or b"") for o in bus.take("segments")]


def segment_state(bus: Bus) -> dict[bytes, dict[str, Any] | None]:
    """The compacted view of ``segment-state``: last value per key."""
    view: dict[bytes, dict[str, Any] | None] = {}
    for sent in bus.take("segment_state"):
        assert sent.key is not None
        view[sent.key] = None if sent.value is None else orjson.loads(sent.value)
    return view


@pytest.fixture
def bus() -> Bus:
    return Bus(partitions=4, scan_chunk=3)


async def members(bus: Bus, domains: dict[str, str]) -> None:
    for member_id, domain in domains.items():
        email = f"{member_id}@{domain}"
        bus.event("member-changes", upsert(member_id, email=email, status="accepted"))
    await bus.run()


# -- blacklist at creation ---------------------------------------------------------------------


async def test_a_created_groups_blacklist_is_never_added(bus: Bus) -> None:
    await members(bus, {f"m{i}": "acme.com" for i in range(20)})
    bus.changes()
    bus.event("group-changes", smart("staff", ACME, blacklist=["m3", "m7", "m11", "ghost"]))
    await bus.run()
    assert [r["type"] for r in results(bus)] == ["command.accepted"]
    added = {c["member_id"] for c in bus.changes()}
    assert added == {f"m{i}" for i in range(20)} - {"m3", "m7", "m11"}
    # the blacklist holds later too, and unblacklisting adds the member
    bus.event("member-changes", upsert("m3", first_name="Ann"))
    await bus.run()
    assert bus.changes() == []
    bus.event("group-changes", command("group.unblacklisted", group_id="staff", member_id="m3"))
    await bus.run()
    [change] = bus.changes()
    assert (change["member_id"], change["type"], change["reason"]) == (
        "m3",
        "member.added",
        "unblacklisted",
    )


async def test_a_recreated_group_does_not_inherit_the_old_blacklist(bus: Bus) -> None:
    await members(bus, {"m1": "acme.com"})
    bus.event("group-changes", smart("staff", ACME, blacklist=["m1"]))
    bus.event("group-changes", command("group.deleted", group_id="staff"))
    bus.event("group-changes", smart("staff", ACME))
    await bus.run()
    assert [(c["member_id"], c["type"]) for c in bus.changes()] == [("m1", "member.added")]


# -- editable groups ---------------------------------------------------------------------------


async def test_an_edit_emits_only_the_differences_and_cascades(bus: Bus) -> None:
    await members(bus, {"a1": "acme.com", "a2": "acme.com", "b1": "beta.com", "c1": "c.com"})
    bus.event("group-changes", smart("team", ACME, editable=True))
    in_team = {"field": "groups", "op": "has_any", "value": ["team"]}
    bus.event("group-changes", smart("mirror", in_team))
    await bus.run()
    bus.changes()
    results(bus)
    edit = command("group.updated", group_id="team", name="Team", conditions={"any": [ACME, BETA]})
    bus.event("group-changes", edit)
    await bus.run()
    assert [r["type"] for r in results(bus)] == ["command.accepted"]
    changes = sorted((c["group_id"], c["member_id"], c["type"], c["reason"]) for c in bus.changes())
    assert changes == [
        ("mirror", "b1", "member.added", "conditions_met"),
        ("team", "b1", "member.added", "conditions_met"),
    ]
    bus.event("group-changes", command("group.updated", group_id="team", conditions=BETA))
    await bus.run()
    out = bus.changes()
    assert {c["cause"]["kind"] for c in out} == {"definition"}
    assert sorted((c["group_id"], c["member_id"], c["type"], c["version"]) for c in out) == [
        ("mirror", "a1", "member.removed", 2),
        ("mirror", "a2", "member.removed", 2),
        ("team", "a1", "member.removed", 2),
        ("team", "a2", "member.removed", 2),
    ]
    assert {c["reason"] for c in out if c["group_id"] == "team"} == {"conditions_unmet"}


async def test_conditions_on_a_group_that_is_not_editable_are_triggers_immutable(
    bus: Bus,
) -> None:
    bus.event("group-changes", smart("team", ACME))
    bus.event("group-changes", command("group.updated", group_id="team", conditions=BETA))
    bus.event("group-changes", command("group.updated", group_id="team", conditions=ACME))
    await bus.run()
    codes = [r.get("code") for r in results(bus)]
    assert codes == [None, "triggers_immutable", "triggers_immutable"]


async def test_a_second_edit_during_the_first_ends_in_the_second_trees_memberships(
    bus: Bus,
) -> None:
    domains = {f"m{i}": ("acme.com" if i % 2 else "beta.com") for i in range(30)}
    await members(bus, domains)
    bus.event("group-changes", smart("team", ACME, editable=True))
    await bus.run()
    bus.changes()
    # both edits are on the topic before the first one's re-decision has run a step further
    bus.event("group-changes", command("group.updated", group_id="team", conditions=BETA))
    bus.event("group-changes", command("group.updated", group_id="team", conditions=ACME))
    bus.event("group-changes", command("group.updated", group_id="team", conditions=BETA))
    await bus.run()
    final: dict[str, dict[str, Any]] = {}
    by_member: dict[str, list[dict[str, Any]]] = {}
    for change in bus.changes():
        by_member.setdefault(change["member_id"], []).append(change)
        final[change["member_id"]] = change
    for member_id, domain in domains.items():
        history = by_member.get(member_id, [])
        # versions go on from the creation's backfill and alternate
        start = 2 if domain == "acme.com" else 1
        assert [c["version"] for c in history] == list(range(start, start + len(history)))
        in_now = (final[member_id]["type"] == "member.added") if history else domain == "acme.com"
        assert in_now == (domain == "beta.com"), member_id
    assert bus.stats["scans.abandoned"] > 0


async def test_a_rename_during_a_backfill_does_not_abandon_it(bus: Bus) -> None:
    await members(bus, {f"m{i}": "acme.com" for i in range(20)})
    bus.changes()
    bus.event("group-changes", smart("team", ACME))
    bus.event("group-changes", command("group.updated", group_id="team", name="The team"))
    await bus.run()
    assert len(bus.changes()) == 20


# -- segment sets ------------------------------------------------------------------------------


async def test_a_new_set_resolves_existing_members_and_follows_their_memberships(
    bus: Bus,
) -> None:
    await members(bus, {"a1": "acme.com", "b1": "beta.com", "c1": "c.com", "x1": "acme.com"})
    bus.event("group-changes", smart("acme", ACME))
    bus.event("group-changes", smart("beta", {"any": [BETA, ACME]}))
    await bus.run()
    bus.changes()
    groups = ["acme", "beta"]
    define = command("segment_set.defined", set_id="plan", name="P", groups=groups, fallback="n")
    bus.event("group-changes", define)
    await bus.run()
    got = {s["member_id"]: s for s in segments(bus)}
    assert {m: (s["segment"], s["previous"], s["version"]) for m, s in got.items()} == {
        "a1": ("acme", None, 1),
        "b1": ("beta", None, 1),
        "x1": ("acme", None, 1),
    }
    a1 = got["a1"]
    assert a1["id"] == "acme:plan:a1:1" and a1["slug"] == "acme" and a1["fallback"] == "n"
    assert a1["cause"]["kind"] == "definition" and a1["type"] == "segment.changed"
    state = segment_state(bus)
    assert state[b"acme:plan:a1"] == {
        "space": "acme",
        "set_id": "plan",
        "member_id": "a1",
        "segment": "acme",
        "version": 1,
        "since": a1["at"],
    }
    # a member's change moves it; a change that keeps its segment emits nothing
    bus.event("member-changes", upsert("a1", email="a1@beta.com"))
    bus.event("member-changes", upsert("b1", first_name="Bo"))
    await bus.run()
    [moved] = segments(bus)
    assert (moved["member_id"], moved["segment"], moved["previous"], moved["version"]) == (
        "a1",
        "beta",
        "acme",
        2,
    )
    assert moved["cause"]["kind"] == "event"
    # deactivating the first group redistributes its members; reactivating brings them back
    bus.event("group-changes", command("group.deactivated", group_id="acme"))
    await bus.run()
    assert [(s["member_id"], s["segment"]) for s in segments(bus)] == [("x1", "beta")]
    bus.event("group-changes", command("group.activated", group_id="acme"))
    await bus.run()
    assert [(s["member_id"], s["segment"]) for s in segments(bus)] == [("x1", "acme")]
    # a member that leaves every group returns to the fallback: null, and a tombstone
    segment_state(bus)
    bus.event("member-changes", upsert("b1", status="deactivated"))
    await bus.run()
    [fallback] = segments(bus)
    assert (fallback["segment"], fallback["previous"], fallback["slug"]) == (None, "beta", None)
    assert segment_state(bus) == {b"acme:plan:b1": None}


async def test_set_updates_and_deletion(bus: Bus) -> None:
    await members(bus, {"a1": "acme.com", "b1": "beta.com"})
    bus.event("group-changes", smart("acme", ACME))
    bus.event("group-changes", smart("beta", {"any": [BETA, ACME]}))
    set_cmd = command(
        "segment_set.defined", set_id="plan", name="Plan", groups=["acme", "beta"], fallback="x"
    )
    bus.event("group-changes", set_cmd)
    await bus.run()
    segments(bus)
    reorder = command("segment_set.updated", set_id="plan", groups=["beta", "acme"])
    bus.event("group-changes", reorder)
    await bus.run()
    assert [(s["member_id"], s["segment"], s["version"]) for s in segments(bus)] == [
        ("a1", "beta", 2)
    ]
    bus.event("group-changes", command("segment_set.updated", set_id="plan", name="Renamed"))
    await bus.run()
    assert segments(bus) == []
    bus.event("group-changes", command("group.deleted", group_id="beta"))
    await bus.run()
    assert results(bus)[-1]["code"] == "group_in_use"
    segment_state(bus)
    bus.event("group-changes", command("segment_set.deleted", set_id="plan"))
    await bus.run()
    gone = segments(bus)
    assert sorted((s["member_id"], s["segment"], s["version"]) for s in gone) == [
        ("a1", None, 3),
        ("b1", None, 2),
    ]
    assert segment_state(bus) == {b"acme:plan:a1": None, b"acme:plan:b1": None}
    bus.event("group-changes", command("group.deleted", group_id="beta"))
    await bus.run()
    assert "code" not in results(bus)[-1]


async def test_a_redelivered_input_resends_its_segment_outputs(bus: Bus) -> None:
    bus.event("group-changes", smart("acme", ACME))
    bus.event(
        "group-changes",
        command("segment_set.defined", set_id="plan", name="P", groups=["acme"], fallback="x"),
    )
    await bus.run()
    bus.outputs = []
    record = bus.event("member-changes", upsert("m1", email="m@acme.com", status="accepted"))
    await bus.run()
    first = [(o.role, o.key, o.value) for o in bus.outputs]
    assert {role for role, _, _ in first} == {"changes", "state", "segments", "segment_state"}
    bus.outputs = []
    await bus.members.handle(record)  # the worker crashed before committing the offset
    for sent in bus.publisher.take():
        bus.outputs.append(sent)
    assert [(o.role, o.key, o.value) for o in bus.outputs] == first
