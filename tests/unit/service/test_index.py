"""The query indexes stay exactly what the member records say, whatever the inputs.

After any sequence of member inputs and definition commands, the ``index`` table of every
partition must equal the index rebuilt from scratch out of the member records and group copies
the same partition holds: one member entry per current membership (keyed by the contract's sort
key, with the listing fields and the pair's since/version), one blacklist entry per blacklisting
in force, and counters equal to the entries.
"""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.unit.service.bus import Bus

from smartgroups.core.space import GroupEntry, SpaceGroups
from smartgroups.service import index, record_codec

SPACE = "acme"
MEMBERS = ("m1", "m2", "m3", "m4", "m5")
NAMES = (None, "Zoé", "zoe", "Ann", "ann", "Émile", "")
EMAILS = (None, "a@acme.com", "b@other.org")
STATUSES = ("accepted", "pending", "declined", None)
_ids = iter(range(1, 10**9))


def _event(type_: str, **fields: Any) -> dict[str, Any]:
    return {"id": f"e{next(_ids)}", "type": type_, "space": SPACE, **fields}


def rebuilt(bus: Bus) -> dict[int, dict[bytes, bytes]]:
    """The index of every partition, computed from the member records and group copies."""
    found: dict[int, dict[bytes, bytes]] = {}
    for partition in range(bus.names.partitions):
        entries: dict[bytes, bytes] = {}
        space = SpaceGroups()
        for _, raw in bus.groups_table.scan(partition, b"", limit=10**6):
            space.apply(GroupEntry.from_json(orjson.loads(raw)["entry"]))
        for key, raw in bus.members_table.scan(partition, b"", limit=10**6):
            space_id, _, member_id = key.decode().partition(":")
            rec = record_codec.loads(raw)
            listing = index.listing_of(rec)
            sort = index.sort_key(listing, member_id)
            for group_id, pair in rec.pairs.items():
                if pair.member:
                    search = index.search_text(listing, member_id)
                    value = orjson.dumps([*listing, pair.since_ms, pair.version, search])
                    entries[index.group_prefix(space_id, group_id) + sort] = value
                    count = index.count_key(space_id, group_id)
                    entries[count] = b"%d" % (int(entries.get(count, b"0")) + 1)
            for group_id, seq in index.blacklisted(rec, space):
                entries[index.blacklist_prefix(space_id, group_id, seq) + sort] = orjson.dumps(
                    [*listing, None, None, index.search_text(listing, member_id)]
                )
                count = index.blacklist_count_key(space_id, group_id, seq)
                entries[count] = b"%d" % (int(entries.get(count, b"0")) + 1)
        found[partition] = entries
    return found


def stored(bus: Bus) -> dict[int, dict[bytes, bytes]]:
    return {p: dict(bus.index_table.scan(p, b"", limit=10**6)) for p in range(bus.names.partitions)}


def _valid_blacklist_entries(bus: Bus) -> dict[int, dict[bytes, bytes]]:
    """The stored index without the entries of deleted groups' blacklists (left behind on
    purpose: keyed by the group's creation, they are never read again)."""
    live: set[tuple[str, int]] = set()
    for partition in range(bus.names.partitions):
        for _, raw in bus.groups_table.scan(partition, b"", limit=10**6):
            entry = GroupEntry.from_json(orjson.loads(raw)["entry"])
            if not entry.deleted:
                live.add((entry.group.group_id, entry.created_seq))
    kept: dict[int, dict[bytes, bytes]] = {}
    for partition, entries in stored(bus).items():
        kept[partition] = {}
        for key, value in entries.items():
            if key.startswith((b"b|", b"c|")):
                group = key.split(b"|")[1].decode().partition(":")[2]
                seq = int(key.split(b"|")[2][:20])
                if (group, seq) not in live:
                    continue
            kept[partition][key] = value
    return kept


upserts = st.builds(
    lambda m, first, last, email, status: _event(
        "member.upserted",
        member_id=m,
        profile={"first_name": first, "last_name": last, "email": email, "status": status},
    ),
    st.sampled_from(MEMBERS),
    st.sampled_from(NAMES),
    st.sampled_from(NAMES),
    st.sampled_from(EMAILS),
    st.sampled_from(STATUSES),
)
deletes = st.builds(lambda m: _event("member.deleted", member_id=m), st.sampled_from(MEMBERS))
GROUPS = {
    "acme": {"field": "profile.email", "op": "email_domain", "value": ["acme.com"]},
    "named": {"field": "profile.first_name", "op": "is_set"},
}
commands = st.one_of(
    st.builds(
        lambda g: _event(
            "group.created", group_id=g, name=g, kind="smart", conditions={"all": [GROUPS[g]]}
        ),
        st.sampled_from(sorted(GROUPS)),
    ),
    st.builds(
        lambda g: _event("group.created", group_id=g, name=g, kind="static"),
        st.just("club"),
    ),
    st.builds(
        lambda g: _event("group.deleted", group_id=g), st.sampled_from(["acme", "named", "club"])
    ),
    st.builds(lambda g: _event("group.deactivated", group_id=g), st.sampled_from(["acme", "club"])),
    st.builds(lambda g: _event("group.activated", group_id=g), st.sampled_from(["acme", "club"])),
    st.builds(
        lambda t, g, m: _event(t, group_id=g, member_id=m),
        st.sampled_from(["group.blacklisted", "group.unblacklisted"]),
        st.sampled_from(["acme", "named"]),
        st.sampled_from(MEMBERS),
    ),
    st.builds(
        lambda t, m: _event(t, group_id="club", member_id=m),
        st.sampled_from(["group.member_added", "group.member_removed"]),
        st.sampled_from(MEMBERS),
    ),
)
steps = st.lists(
    st.one_of(
        upserts.map(lambda e: ("member-changes", e)),
        deletes.map(lambda e: ("member-changes", e)),
        commands.map(lambda e: ("group-changes", e)),
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=steps, run_every=st.integers(1, 5))
async def test_the_index_is_what_the_records_say(steps: list[Any], run_every: int) -> None:
    bus = Bus(partitions=2, scan_chunk=2)
    for i, (topic, event) in enumerate(steps):
        bus.event(topic, event)
        if i % run_every == 0:
            await bus.run()
    await bus.run()
    assert _valid_blacklist_entries(bus) == rebuilt(bus)


async def test_a_name_change_moves_the_entry_and_erasure_removes_it() -> None:
    bus = Bus(partitions=1)
    bus.event(
        "group-changes",
        _event(
            "group.created", group_id="acme", name="A", kind="smart",
            conditions={"all": [GROUPS["acme"]]},
        ),
    )  # fmt: skip
    for m, first in (("m1", "Zed"), ("m2", "amy"), ("m3", "Émile")):
        profile = {"first_name": first, "email": f"{m}@acme.com", "status": "accepted"}
        bus.event("member-changes", _event("member.upserted", member_id=m, profile=profile))
    await bus.run()
    prefix = index.group_prefix(SPACE, "acme")

    def order() -> list[str]:
        return [index.member_id_of(k) for k, _ in bus.index_table.scan(0, prefix, limit=100)]

    assert order() == ["m2", "m1", "m3"]  # amy, zed, émile: casefolded code points
    profile = {"first_name": "Aaron"}
    bus.event("member-changes", _event("member.upserted", member_id="m1", profile=profile))
    await bus.run()
    assert order() == ["m1", "m2", "m3"]
    bus.event("member-changes", _event("member.deleted", member_id="m2"))
    await bus.run()
    assert order() == ["m1", "m3"]
    assert bus.index_table.get(0, index.count_key(SPACE, "acme")) == b"2"
    assert stored(bus)[0] == rebuilt(bus)[0]
