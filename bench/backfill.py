"""The benchmark's backfill in process: the member service over its in-memory twins, no Kafka.

``python -m bench.backfill [--members 100000] [--reps 2]``

Loads ``--members`` members of :mod:`bench.workload` (profiles only, as ``bench.e2e``'s backfill
phase does) into :class:`bench.segments.Rig`, then creates ``bench.e2e``'s backfilled group
(:data:`bench.e2e.BACKFILL_CONDITIONS`, a quarter of the members join) and, on a second rig, the
same group with a domain nobody has, so that every member is skipped on its stored state
(``membership.rescan_changes_nothing``). Each rate is members decided per second of the
group's command and the scans it sets off; the two together give the cost of a skipped member
and of a join, what the worker's backfill costs before Kafka and RocksDB.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import time
from typing import Any

from bench.e2e import BACKFILL_CONDITIONS
from bench.segments import Rig
from bench.workload import Event, Workload, WorkloadSpec, encode

NOBODY = "nobody.example"
"""The e-mail domain of the group nobody matches."""


async def backfill(members: int, conditions: dict[str, Any]) -> tuple[float, dict[str, int]]:
    """Members/s of one backfill of ``conditions`` over ``members`` loaded members, and the
    outputs it made by role."""
    workload = Workload(WorkloadSpec(spaces=1, members=members, groups=0, static_groups=0))
    rig = Rig(scan_chunk=100)
    for event in [*workload.definitions(), *workload.creations(values=False)]:
        await feed(rig, event)
    rig.publisher.counts.clear()
    group = workload.backfill_group(0, "backfill")
    group.value["conditions"] = conditions
    started = time.perf_counter()
    await feed(rig, group)
    elapsed = time.perf_counter() - started
    return members / elapsed, dict(rig.publisher.counts)


async def feed(rig: Rig, event: Event) -> None:
    """One workload event to its service, and what it sends to the fan-out back in."""
    topic, key, value = encode(event)
    record = rig.record(topic, key, value)
    if topic == "group-changes":
        await rig.definitions.handle(record)
    else:
        await rig.members.handle(record)
    await rig.drain()


async def run(members: int, reps: int) -> list[str]:
    nobody: Any = copy.deepcopy(BACKFILL_CONDITIONS)
    nobody["all"][0]["value"] = [NOBODY]
    lines = [f"backfill in process, {members:,} members, {reps} runs each, interleaved"]
    rates: dict[str, list[float]] = {"bench group": [], "group nobody matches": []}
    changes: dict[str, int] = {}
    for _ in range(reps):
        for name, conditions in zip(rates, (BACKFILL_CONDITIONS, nobody), strict=True):
            rate, counts = await backfill(members, conditions)
            rates[name].append(rate)
            changes[name] = counts.get("changes", 0)
    for name, values in rates.items():
        shown = " and ".join(f"{v:,.0f}" for v in values)
        lines.append(f"  {name}: {shown} members/s; {changes[name]:,} membership changes")
    skipped = 1e6 / max(rates["group nobody matches"])
    whole = 1e6 / max(rates["bench group"])
    joins = changes["bench group"]
    if joins:
        per_join = (whole - skipped) * members / joins
        lines.append(
            f"  a skipped member {skipped:.1f} µs; a join about {per_join:.0f} µs more"
            f" ({joins / members:.1%} of the members join)"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--reps", type=int, default=2)
    args = parser.parse_args(argv)
    for line in asyncio.run(run(args.members, args.reps)):
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
