"""The member and definitions services over in-memory ports: the worker's logic, no broker.

Each test drives the services as the worker's agents do (records in offset order per partition,
internal messages fed back) through :class:`tests.unit.service.bus.Bus`, and checks what a
consumer of the output topics relies on.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import orjson
import pytest
from tests.unit.service.bus import Bus

from smartgroups.core.partitioning import partition_for
from smartgroups.core.record import MemberRecord
from smartgroups.service import record_codec
from smartgroups.service.scans import JOB_PREFIX

SPACE = "acme"
ACME = {"field": "profile.email", "op": "email_domain", "value": ["acme.com"]}
RECENT = {"field": "profile.last_active_at", "op": "within_last", "value": {"days": 1}}
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


def smart(group_id: str, *triggers: dict[str, Any]) -> dict[str, Any]:
    return command(
        "group.created",
        group_id=group_id,
        name=group_id.title(),
        kind="smart",
        conditions={"all": list(triggers)},
    )


@pytest.fixture(params=["fanout-scans", "inline-scans"])
def bus(request: pytest.FixtureRequest) -> Bus:
    """The member service as each member path runs it (agent: backfills through the fan-out,
    batch loop: scan jobs stepped in process; both keep an outbox per record)."""
    return Bus(partitions=4, scan_chunk=50, inline_scans=request.param == "inline-scans")


async def test_a_member_who_matches_is_added_with_its_cause_and_state(bus: Bus) -> None:
    bus.event("group-changes", smart("staff", ACME))
    await bus.run()
    [result] = [orjson.loads(o.value or b"") for o in bus.take("results")]
    assert result["type"] == "command.accepted"
    record = bus.event("member-changes", upsert("m1", email="a@acme.com", status="accepted"))
    await bus.run()
    [added] = bus.changes()
    assert added["id"] == "acme:staff:m1:1"
    assert (added["type"], added["version"], added["reason"]) == (
        "member.added",
        1,
        "conditions_met",
    )
    assert added["cause"] == {
        "kind": "event",
        "event_id": orjson.loads(record.value or b"")["id"],
        "topic": "member-changes",
        "partition": record.partition,
        "offset": record.offset,
    }
    [state] = bus.take("state")
    assert state.key == b"acme:staff:m1"
    assert orjson.loads(state.value or b"")["since"] == added["at"]


async def test_a_redelivered_input_resends_the_same_outputs_and_changes_nothing(bus: Bus) -> None:
    bus.event("group-changes", smart("staff", ACME))
    await bus.run()
    record = bus.event("member-changes", upsert("m1", email="a@acme.com", status="accepted"))
    await bus.run()
    first = [o.value for o in bus.take("changes")]
    assert len(first) == 1
    bus.take("state")
    bus.clock.advance(timedelta(minutes=5))
    await bus.deliver(record)  # as after a crash before the offset was committed
    again = [o.value for o in bus.take("changes")]
    if bus.members.keep_outbox:
        assert again == first  # byte for byte: same id, same version, same at
    else:  # the batch loop persists a record only once its outputs were delivered
        assert again == []
    assert bus.stats["inputs.redelivered"] == 1
    bus.event("member-changes", upsert("m1", status="rejected"))
    await bus.run()
    [removed] = bus.changes()
    assert (removed["type"], removed["version"]) == ("member.removed", 2)


async def test_an_input_on_the_wrong_partition_is_applied_on_its_keys(bus: Bus) -> None:
    bus.event("group-changes", smart("staff", ACME))
    await bus.run()
    right = partition_for(b"acme:m1", 4)
    wrong = (right + 1) % 4
    record = bus.event(
        "member-changes", upsert("m1", email="a@acme.com", status="accepted"), partition=wrong
    )
    await bus.run()
    [added] = bus.changes()
    assert added["cause"]["partition"] == wrong and added["cause"]["offset"] == record.offset
    assert bus.stats["inputs.rerouted"] == 1
    assert bus.members_table.get(right, b"acme:m1") is not None
    assert bus.members_table.get(wrong, b"acme:m1") is None


async def test_a_new_group_is_backfilled_in_steps_over_existing_members(bus: Bus) -> None:
    emails = {f"m{i}": f"x{i}@acme.com" if i % 3 == 0 else f"x{i}@other.org" for i in range(400)}
    for member_id, email in emails.items():
        bus.event("member-changes", upsert(member_id, email=email, status="accepted"))
    await bus.run()
    assert bus.changes() == []
    bus.event("group-changes", smart("staff", ACME))
    await bus.run()
    added = bus.changes()
    assert {e["member_id"] for e in added} == {m for m, e in emails.items() if "acme" in e}
    assert {e["reason"] for e in added} == {"group_created"}
    assert {e["cause"]["kind"] for e in added} == {"definition"}
    assert bus.stats["scans.members"] == 400  # every member once, in chunks of 50
    scans = [r for (topic, _), log in bus.logs.items() if topic == "app-fanout" for r in log]
    steps = sum(1 for r in scans if orjson.loads(r.value or b"")["k"] == "scan")
    if bus.members.inline_scans:  # stepped in process; the finished jobs are gone
        assert steps == 0 and not bus.members.scanning()
        assert all(not bus.members_table.scan(p, JOB_PREFIX) for p in range(4))
    else:
        assert steps >= 4


async def test_a_backfill_interleaves_with_live_inputs_and_survives_a_restart() -> None:
    """Batch path: a member updated while its space is being backfilled is decided once for
    each, and a job taken up again after a restart (its partition reassigned) finishes the
    backfill without deciding anyone twice."""
    bus = Bus(partitions=1, scan_chunk=50, inline_scans=True)
    for i in range(200):
        bus.event("member-changes", upsert(f"m{i}", email=f"x{i}@acme.com", status="accepted"))
    await bus.run()
    bus.event("group-changes", smart("staff", ACME))
    # Apply the definition and its fan-out, then one slice only.
    while any(bus.read.get(k, 0) < len(log) for k, log in bus.logs.items()):
        for (topic, partition), log in sorted(bus.logs.items()):
            while bus.read.get((topic, partition), 0) < len(log):
                record = log[bus.read.get((topic, partition), 0)]
                bus.read[(topic, partition)] = record.offset + 1
                await bus.deliver(record)
    assert bus.members.scanning()
    assert (await bus.members.step_scans(50)).decided == 50
    bus.route()
    # A live update of a member the job has not reached yet, then a "restart".
    bus.event("member-changes", upsert("m199", first_name="Late"))
    bus.members.forget()
    bus.members.load_scans(0)
    await bus.run()
    added = bus.changes()
    assert sorted(e["member_id"] for e in added) == sorted(f"m{i}" for i in range(200))
    assert {e["version"] for e in added} == {1}
    assert not bus.members.scanning()


async def test_time_alone_removes_a_member_at_a_tick(bus: Bus) -> None:
    bus.event("group-changes", smart("active", RECENT))
    await bus.run()
    now = bus.clock.now.strftime("%Y-%m-%dT%H:%M:%SZ")
    bus.event("member-changes", upsert("m1", last_active_at=now, status="accepted"))
    await bus.run()
    [added] = bus.changes()
    assert added["type"] == "member.added"
    bus.clock.advance(timedelta(hours=25))
    await bus.tick()
    [removed] = bus.changes()
    assert (removed["type"], removed["reason"]) == ("member.removed", "conditions_unmet")
    assert removed["cause"] == {"kind": "time"}
    await bus.tick()  # nothing more is due
    assert bus.changes() == []


async def test_a_due_time_check_goes_in_slices_and_decides_each_member_once() -> None:
    bus = Bus(partitions=1, scan_chunk=7, inline_scans=True)
    bus.event("group-changes", smart("active", RECENT))
    await bus.run()
    now = bus.clock.now.strftime("%Y-%m-%dT%H:%M:%SZ")
    for i in range(30):
        bus.event("member-changes", upsert(f"m{i}", last_active_at=now, status="accepted"))
    await bus.run()
    assert len(bus.changes()) == 30
    bus.clock.advance(timedelta(hours=25))
    assert await bus.members.step_due(0, 7) == (7, False)  # a slice, more to come
    await bus.tick()
    removed = bus.changes()
    assert sorted(e["member_id"] for e in removed) == sorted(f"m{i}" for i in range(30))
    assert {(e["type"], e["version"]) for e in removed} == {("member.removed", 2)}


async def test_bad_input_is_dead_lettered_and_the_stream_goes_on(bus: Bus) -> None:
    bus.event("group-changes", smart("staff", ACME))
    await bus.run()
    bad = bus.append("member-changes", b"acme:m1", b"{not json")
    bus.event("member-changes", upsert("m1", email="a@acme.com", status="accepted"))
    await bus.run()
    [letter] = bus.take("dead_letters")
    assert (letter.key, letter.value) == (bad.key, bad.value)
    assert dict(letter.headers or [])["error.code"] == b"decode_error"
    assert [e["member_id"] for e in bus.changes()] == ["m1"]


async def test_a_rejected_command_gets_its_code_and_a_redelivery_is_not_applied_twice(
    bus: Bus,
) -> None:
    created = bus.event("group-changes", smart("staff", ACME))
    bus.event("group-changes", smart("staff", ACME))
    await bus.run()
    results = [orjson.loads(o.value or b"") for o in bus.take("results")]
    assert [r["type"] for r in results] == ["command.accepted", "command.rejected"]
    assert results[1]["code"] == "group_exists"
    await bus.deliver(created)  # re-delivered: the same accepted result, not group_exists
    [again] = [orjson.loads(o.value or b"") for o in bus.take("results")]
    assert again == results[0]
    assert bus.stats["definitions.redelivered"] == 1


def _outbox(bus: Bus, partition: int, key: bytes) -> list[Any]:
    raw = bus.members_table.get(partition, key)
    assert raw is not None
    return [[e.source, e.offset, e.at_ms, e.outputs] for e in record_codec.loads(raw).outbox]


async def test_a_record_drops_the_outputs_of_inputs_settled_durable(bus: Bus) -> None:
    """The batch loop settles what a checkpoint made durable: the next write of a record keeps
    only the outputs of inputs that may still be re-delivered (an input rerouted from another
    partition counts offsets of that partition's source, which this one does not settle)."""
    bus.event("group-changes", smart("staff", ACME))
    await bus.run()
    first = bus.event("member-changes", upsert("m1", email="a@acme.com", status="accepted"))
    home, m2 = first.partition, partition_for(b"acme:m2", 4)
    wrong = (m2 + 1) % 4
    bus.event("member-changes", upsert("m2", email="b@acme.com", status="accepted"), wrong)
    await bus.run()
    assert sorted(o["member_id"] for o in bus.changes()) == ["m1", "m2"]
    assert [e[1] for e in _outbox(bus, home, b"acme:m1")] == [first.offset]
    assert [e[0] for e in _outbox(bus, m2, b"acme:m2")] == [f"member-changes#{wrong}"]
    bus.members.settle(home, {f"member-changes#{home}": first.offset + 1})
    bus.members.settle(m2, {f"member-changes#{m2}": 10**9, f"fanout#{m2}": 10**9})
    second = bus.event("member-changes", upsert("m1", first_name="Ada"))
    bus.event("member-changes", upsert("m2", first_name="Bo"))
    await bus.run()
    assert bus.changes() == []
    assert _outbox(bus, home, b"acme:m1") == []  # the first input's outputs are settled
    rerouted = _outbox(bus, m2, b"acme:m2")
    assert [e[0] for e in rerouted] == [f"member-changes#{wrong}"]  # kept: not settled here
    await bus.deliver(second)  # not settled yet: a re-delivery is recognised, nothing new
    assert bus.changes() == [] and bus.stats["inputs.redelivered"] == 1


async def test_a_backfill_builds_only_the_records_whose_membership_changes(
    bus: Bus, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Most members of a backfill keep their verdict: their stored state is read, not built
    into a record, decided or written again."""
    for i in range(300):
        email = f"x{i}@acme.com" if i % 10 == 0 else f"x{i}@other.org"
        bus.event("member-changes", upsert(f"m{i}", email=email, status="accepted"))
    await bus.run()
    built = 0
    from_docs = MemberRecord.from_docs.__func__  # type: ignore[attr-defined]

    def counting(cls: type[MemberRecord], *args: Any) -> MemberRecord:
        nonlocal built
        built += 1
        return from_docs(cls, *args)  # type: ignore[no-any-return]

    monkeypatch.setattr(MemberRecord, "from_docs", classmethod(counting))
    bus.event("group-changes", smart("staff", ACME))
    await bus.run()
    assert len(bus.changes()) == 30
    assert bus.stats["scans.members"] == 300
    assert built == 30  # the 30 who join; 270 skipped on their stored state
