"""Reconcile over in-memory ports: steps of ``scan_chunk`` members per partition, only the
differences emitted (``cause.kind = "reconcile"``), a dry run that changes nothing, a report per
partition."""

from __future__ import annotations

from typing import Any

import orjson
from tests.unit.service.bus import Bus
from tests.unit.service.test_members import ACME, SPACE, smart, upsert

from smartgroups.core.ids import member_key
from smartgroups.core.partitioning import partition_for
from smartgroups.core.record import Pair
from smartgroups.service import record_codec
from smartgroups.service.reconcile import reconcile_message


def corrupt(bus: Bus, member_id: str, group_id: str, pair: Pair | None) -> None:
    """Change a stored membership behind the service's back (as a buggy build would have)."""
    key = member_key(SPACE, member_id)
    partition = partition_for(key, bus.names.partitions)
    record = record_codec.loads(bus.members_table.get(partition, key) or b"")
    if pair is None:
        record.pairs.pop(group_id, None)
    else:
        record.pairs[group_id] = pair
    bus.members_table.put(partition, key, record_codec.dumps(record))


def reports(bus: Bus, run: str) -> list[dict[str, Any]]:
    found = []
    for (topic, _), log in sorted(bus.logs.items()):
        for record in log:
            doc = orjson.loads(record.value or b"{}")
            report = topic == bus.names.fanout and doc.get("k") == "reconcile-report"
            if report and doc["run"] == run:
                found.append(doc)
    return found


def reconcile(bus: Bus, run: str, *, dry: bool, space: str | None = SPACE) -> None:
    for partition in range(bus.names.partitions):
        bus.append(
            bus.names.fanout, b"reconcile", reconcile_message(run, space, None, dry), partition
        )


async def test_only_the_differences_are_emitted_in_steps_after_a_dry_run_that_changes_nothing() -> (
    None
):
    bus = Bus(partitions=4, scan_chunk=7)
    bus.event("group-changes", smart("staff", ACME))
    for i in range(60):
        email = f"m{i}@acme.com" if i % 2 == 0 else f"m{i}@other.org"
        bus.event("member-changes", upsert(f"m{i}", email=email, status="accepted"))
    await bus.run()
    assert len(bus.changes()) == 30
    bus.take("state")
    corrupt(bus, "m0", "staff", Pair(False, 2, 0))  # should be in
    corrupt(bus, "m1", "staff", Pair(True, 1, 0))  # should be out
    corrupt(bus, "m2", "staff", None)  # should be in (never added, as far as it knows)

    reconcile(bus, "dry1", dry=True)
    await bus.run()
    assert bus.changes() == [] and bus.take("state") == []
    found = reports(bus, "dry1")
    assert len(found) == 4 and {r["dry"] for r in found} == {True}
    assert sum(r["scanned"] for r in found) == 60
    assert sum(r["counts"].get(f"{SPACE}:staff", 0) for r in found) == 3

    reconcile(bus, "run1", dry=False)
    await bus.run()
    fixed = sorted((e["member_id"], e["type"], e["version"]) for e in bus.changes())
    assert fixed == [
        ("m0", "member.added", 3),
        ("m1", "member.removed", 2),
        ("m2", "member.added", 1),
    ]
    assert sum(sum(r["counts"].values()) for r in reports(bus, "run1")) == 3
    assert bus.stats["reconcile.members"] == 120  # both runs, every member once each

    reconcile(bus, "run2", dry=False, space=None)  # every space
    await bus.run()
    assert bus.changes() == []
    assert sum(r["scanned"] for r in reports(bus, "run2")) == 60
