"""Benchmark of issue 18: an editable group's re-decision, and segment resolution per change.

Run ``.venv/bin/python -m bench.segments [--members N] [--changes N]``. It prints a report; it
is not a test. Both parts drive the services as the worker does (records handed to
``MemberService.handle``, fan-out messages fed back, scans in ``SMARTGROUPS_SCAN_CHUNK`` steps)
over the in-memory twins of the ports, so they measure the processor's own CPU (decoding the
record, deciding, rendering outputs) without RocksDB or Kafka:

* **Edit**: N members with a number property uniform over 0…999, an editable group
  ``score < 900`` (90 % in), then ``group.updated`` to ``score < 800``: 10 % of the verdicts
  change. Reported: members re-decided per second over the whole re-decision and transitions
  emitted (all must be ``conditions_unmet``, one per changed verdict).
* **Segments**: 100 smart groups (score bands of 10), each member in exactly one; K member
  inputs that move a member from one band to another (2 transitions each), first with no
  segment set, then with 10 sets of 10 groups each (every group in one set). Reported: µs per
  input for both, and the difference: the resolution cost per membership change.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import orjson

from smartgroups.core.membership import Transition
from smartgroups.core.partitioning import partition_for
from smartgroups.core.record import Pair
from smartgroups.service import record_codec
from smartgroups.service.definitions import DefinitionsService
from smartgroups.service.members import MemberService
from smartgroups.service.memory import ManualClock, MemoryTable
from smartgroups.service.ports import Headers, Record
from smartgroups.service.segments import outputs as segment_outputs

SPACE = "bench"
PARTITIONS = 1


class Names:
    partitions = PARTITIONS
    fanout = "fanout"
    commands = "commands"

    def logical(self, topic: str) -> str:
        return topic


class CountingPublisher:
    """Counts outputs by role; keeps fan-out messages to feed back."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.fanout: list[tuple[bytes | None, bytes | None, int]] = []
        self.kinds: Counter[str] = Counter()

    async def send(
        self,
        role: str,
        key: bytes | None,
        value: bytes | None,
        partition: int | None = None,
        headers: Headers | None = None,
    ) -> None:
        self.counts[role] += 1
        if role == "fanout":
            self.fanout.append((key, value, partition or 0))
        elif role == "changes" and value is not None:
            self.kinds[orjson.loads(value)["reason"]] += 1

    async def dead_letter(self, record: Record, error: Any) -> None:
        self.counts["dead_letters"] += 1


class Rig:
    def __init__(self, scan_chunk: int) -> None:
        self.publisher = CountingPublisher()
        self.members = MemberService(
            members=MemoryTable(),
            groups=MemoryTable(),
            due=MemoryTable(),
            publisher=self.publisher,
            topics=Names(),
            clock=ManualClock(datetime(2026, 12, 1, tzinfo=UTC)),
            scan_chunk=scan_chunk,
            stats=Counter(),
        )
        self.definitions = DefinitionsService(
            catalogs=MemoryTable(),
            publisher=self.publisher,
            topics=Names(),
            stats=Counter(),
        )
        self.offsets: Counter[str] = Counter()
        self.ids = 0

    def record(self, topic: str, key: bytes, value: bytes) -> Record:
        offset = self.offsets[topic]
        self.offsets[topic] += 1
        return Record(topic, partition_for(key, PARTITIONS), offset, key, value)

    async def command(self, type_: str, **fields: Any) -> None:
        self.ids += 1
        event = {"id": f"c{self.ids}", "type": type_, "space": SPACE, **fields}
        await self.definitions.handle(
            self.record("group-changes", SPACE.encode(), orjson.dumps(event))
        )
        await self.drain()

    async def member(
        self, member_id: str, score: int, profile: dict[str, Any] | None = None
    ) -> None:
        self.ids += 1
        key = f"{SPACE}:{member_id}".encode()
        if profile is not None:
            upsert = {"id": f"e{self.ids}", "type": "member.upserted", "space": SPACE,
                     "member_id": member_id, "profile": profile}  # fmt: skip
            await self.members.handle(self.record("member-changes", key, orjson.dumps(upsert)))
        event: dict[str, Any] = {"id": f"p{self.ids}", "type": "property.set", "space": SPACE,
                 "member_id": member_id, "property_id": "score", "value": score}  # fmt: skip
        await self.members.handle(self.record("property-changes", key, orjson.dumps(event)))
        await self.drain()

    async def drain(self) -> None:
        while self.publisher.fanout:
            pending, self.publisher.fanout = self.publisher.fanout, []
            for key, value, partition in pending:
                offset = self.offsets["fanout"]
                self.offsets["fanout"] += 1
                await self.members.handle(Record("fanout", partition, offset, key, value))


def score_lt(bound: int) -> dict[str, Any]:
    return {"all": [{"field": "property.score", "op": "lt", "value": bound}]}


async def edit(members: int, chunk: int) -> list[str]:
    rig = Rig(chunk)
    await rig.command("property.defined", property_id="score", name="Score", value_type="number")
    rng = random.Random(7)
    started = time.perf_counter()
    for i in range(members):
        await rig.member(f"m{i:08d}", rng.randrange(1000), {"status": "accepted"})
    loaded = time.perf_counter() - started
    started = time.perf_counter()
    await rig.command("group.created", group_id="g", name="G", kind="smart", editable=True,
                      conditions=score_lt(900))  # fmt: skip
    backfill = time.perf_counter() - started
    rig.publisher.kinds.clear()
    started = time.perf_counter()
    await rig.command("group.updated", group_id="g", conditions=score_lt(800))
    elapsed = time.perf_counter() - started
    kinds = dict(rig.publisher.kinds)
    return [
        f"edit: {members:,} members (loaded in {loaded:.1f} s), scan chunk {chunk}",
        f"  backfill of the new group: {members / backfill:,.0f} members/s",
        f"  re-decision after the edit: {elapsed:.2f} s, {members / elapsed:,.0f} members/s,"
        f" transitions {kinds}",
    ]


async def band_rig(sets: int, members: int) -> Rig:
    """100 score-band groups, ``sets`` sets of 10 of them, ``members`` members in one band each."""
    rig = Rig(1000)
    await rig.command("property.defined", property_id="score", name="S", value_type="number")
    for band in range(100):
        low = band * 10
        conditions = {"all": [{"field": "property.score", "op": "between",
                               "value": [low, low + 9]}]}  # fmt: skip
        await rig.command("group.created", group_id=f"g{band:02d}", name=f"G{band}",
                          kind="smart", conditions=conditions)  # fmt: skip
    for s in range(sets):
        groups = [f"g{band:02d}" for band in range(s * 10, s * 10 + 10)]
        await rig.command("segment_set.defined", set_id=f"s{s}", name=f"S{s}",
                          groups=groups, fallback="none")  # fmt: skip
    rng = random.Random(11)
    for i in range(members):
        await rig.member(f"m{i:08d}", rng.randrange(1000), {"status": "accepted"})
    return rig


async def segments(members: int, changes: int, reps: int) -> list[str]:
    rigs = {sets: await band_rig(sets, members) for sets in (0, 10)}
    timings: dict[int, list[float]] = {0: [], 10: []}
    for _ in range(reps):  # interleaved, so drift on a shared machine hits both
        for sets, rig in rigs.items():
            rng = random.Random(13)
            started = time.perf_counter()
            for _n in range(changes):
                await rig.member(f"m{rng.randrange(members):08d}", rng.randrange(1000))
            timings[sets].append((time.perf_counter() - started) / changes * 1e6)
    median = {sets: sorted(t)[len(t) // 2] for sets, t in timings.items()}
    lines = [
        f"  {sets:>2} sets: {median[sets]:.1f} µs per input (median of {reps};"
        f" {min(t):.1f}-{max(t):.1f})"
        for sets, t in timings.items()
    ]
    # the resolution alone, on one member record: 10 sets of 10 groups, the member moving
    # between two groups of one set on every call (one segment change per call)
    rig = rigs[10]
    space = rig.members._space(0, SPACE)
    raw = rig.members.members.get(0, f"{SPACE}:m00000000".encode())
    assert raw is not None
    rec = record_codec.loads(raw)
    rec.pairs = {"g05": Pair(True, 1, 0)}
    moved = [Transition("g05", True, 1, "conditions_met")]  # what makes the service resolve
    segment_outputs(rec, space, SPACE, "m00000000", {"kind": "time"}, 0, moved, None)
    calls = 100_000
    started = time.perf_counter()
    for n in range(calls):
        rec.pairs = {("g07" if n % 2 == 0 else "g05"): Pair(True, 1, 0)}
        changed = segment_outputs(rec, space, SPACE, "m00000000", {"kind": "time"}, n, moved, None)
        assert len(changed) == 1
    alone = (time.perf_counter() - started) / calls * 1e6
    return [
        f"segments: 100 groups, {members:,} members, {changes:,} inputs per repetition, each"
        " moving a member between bands (about 2 transitions)",
        *lines,
        f"  difference: {median[10] - median[0]:+.1f} µs per input, segment outputs included",
        f"  resolution alone (10 sets of 10 groups, one segment.changed rendered):"
        f" {alone:.1f} µs per membership change",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=200_000)
    parser.add_argument("--chunk", type=int, default=500)
    parser.add_argument("--changes", type=int, default=20_000)
    parser.add_argument("--segment-members", type=int, default=20_000)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    report = asyncio.run(edit(args.members, args.chunk))
    report += asyncio.run(segments(args.segment_members, args.changes, args.reps))
    print("\n".join(report))


if __name__ == "__main__":
    main()
