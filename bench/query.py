"""The query API's read costs over a large space, in process (a report, not a test).

    python -m bench.query [--members 200000] [--partitions 8] [--samples 200]

Builds one space in RocksDB exactly as a worker does (the member service over the member loop's
``BatchTable``/``RocksTable`` tables, flushed every 2,000 records like a checkpoint): a smart
group holding half of the members (``profile.email`` at ``acme.com``), then times the query
service's reads over every partition, as one worker holding all of them answers them:

* the first page and deep pages (a cursor at a random member of the group) of 50 members;
* a ``q`` search over the whole group (reads every index entry of the group);
* a member lookup and an explain;
* a live preview over every member of the space;
* the index's RocksDB size and the process RSS per 100,000 members.

What it does not measure: HTTP (aiohttp adds about a millisecond per request here), the
routing between workers (one more local HTTP round trip per worker asked), and the stream's
input latency while queries run (that needs ``bench.e2e``'s broker harness; the reads hold the
member loop's lock for one slice of at most 2,000 entries at a time).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import resource
import shutil
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from smartgroups.core.conditions import parse_conditions
from smartgroups.core.ids import member_key, space_key
from smartgroups.core.partitioning import partition_for
from smartgroups.service import index
from smartgroups.service.definitions import DefinitionsService
from smartgroups.service.members import MemberService
from smartgroups.service.memory import ManualClock, MemoryTable
from smartgroups.service.ports import Headers, Record
from smartgroups.service.query import Filters, QueryService
from smartgroups.worker.batch_table import BatchTable
from smartgroups.worker.rocks import RocksTable

SPACE = "bench"
FIRST = ["Ann", "Bob", "Chloé", "Dmitri", "Émile", "Fatima", "Günther", "Hana", "Ivo", "Jo"]
LAST = ["Smith", "Nguyen", "O'Neil", "Müller", "García", "Kowalski", "Rossi", "Dubois"]
CONDITIONS = {"all": [{"field": "profile.email", "op": "email_domain", "value": ["acme.com"]}]}


class Names:
    def __init__(self, partitions: int) -> None:
        self.partitions = partitions
        self.fanout = "fanout"
        self.commands = "commands"

    def logical(self, topic: str) -> str:
        return topic


class Loopback:
    """A publisher that feeds internal messages back and drops the outputs (counted)."""

    def __init__(self) -> None:
        self.internal: list[Record] = []
        self.outputs = 0
        self.offsets: Counter[tuple[str, int]] = Counter()

    async def send(
        self,
        role: str,
        key: bytes | None,
        value: bytes | None,
        partition: int | None = None,
        headers: Headers | None = None,
    ) -> None:
        if role in ("fanout", "commands"):
            assert partition is not None
            offset = self.offsets[(role, partition)]
            self.offsets[(role, partition)] += 1
            self.internal.append(Record(role, partition, offset, key, value))
        else:
            self.outputs += 1

    async def dead_letter(self, record: Record, letter: Any) -> None:
        raise AssertionError(f"dead letter: {letter}")


def profile(i: int, rng: random.Random) -> dict[str, Any]:
    return {
        "first_name": f"{rng.choice(FIRST)}{i % 97}",
        "last_name": rng.choice(LAST),
        "email": f"user{i}@{'acme.com' if i % 2 == 0 else 'other.org'}",
        "status": "accepted",
        "role": rng.choice(["admin", "member", "moderator"]),
    }


async def build(root: Path, members: int, partitions: int) -> dict[str, Any]:
    tables = {
        name: BatchTable(RocksTable(root, name)) for name in ("members", "groups", "due", "index")
    }
    bus = Loopback()
    clock = ManualClock(datetime(2026, 12, 1, tzinfo=UTC))
    names = Names(partitions)
    service = MemberService(
        members=tables["members"], groups=tables["groups"], due=tables["due"],
        publisher=bus, topics=names, clock=clock, scan_chunk=500, stats=Counter(),
        index=tables["index"],
    )  # fmt: skip
    definitions = DefinitionsService(
        catalogs=MemoryTable(), publisher=bus, topics=names, stats=Counter()
    )

    async def drain() -> None:
        while bus.internal:
            pending, bus.internal = bus.internal, []
            for record in pending:
                if record.topic == "commands":
                    await definitions.handle(record)
                else:
                    await service.handle(record)

    def flush() -> None:
        for table in tables.values():
            for p in table.dirty():
                table.flush(p)

    created = {"id": "c1", "type": "group.created", "space": SPACE, "group_id": "g",
               "name": "G", "kind": "smart", "conditions": CONDITIONS}  # fmt: skip
    await definitions.handle(
        Record("group-changes", partition_for(space_key(SPACE), partitions), 0,
               space_key(SPACE), orjson.dumps(created))
    )  # fmt: skip
    await drain()
    rng = random.Random(7)
    offsets: Counter[int] = Counter()
    started = time.perf_counter()
    for i in range(members):
        member_id = f"m{i:07d}"
        key = member_key(SPACE, member_id)
        p = partition_for(key, partitions)
        event = {"id": f"e{i}", "type": "member.upserted", "space": SPACE,
                 "member_id": member_id, "profile": profile(i, rng)}  # fmt: skip
        await service.handle(Record("member-changes", p, offsets[p], key, orjson.dumps(event)))
        offsets[p] += 1
        if i % 2000 == 1999:
            await drain()
            flush()
    await drain()
    flush()
    elapsed = time.perf_counter() - started
    return {"tables": tables, "service": service, "build_s": elapsed, "outputs": bus.outputs}


def du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def timed(samples: int, call: Callable[[], Awaitable[Any]]) -> dict[str, float]:
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        await call()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {
        "p50_ms": round(statistics.median(times), 3),
        "p99_ms": round(times[min(len(times) - 1, int(len(times) * 0.99))], 3),
        "max_ms": round(times[-1], 3),
        "n": samples,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=200_000)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--samples", type=int, default=200)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-query-"))
    try:
        built = await build(root, args.members, args.partitions)
        tables = built["tables"]
        lock = asyncio.Lock()
        service = QueryService(
            members=tables["members"], groups=tables["groups"], index_table=tables["index"],
            clock=lambda: datetime(2026, 12, 1, tzinfo=UTC), guard=lambda: lock,
            check=lambda p: None,
        )  # fmt: skip
        parts = list(range(args.partitions))
        prefix = index.group_prefix(SPACE, "g")
        count = index.count_key(SPACE, "g")
        empty = Filters()
        first = await service.listing(prefix, count, empty, None, 50, parts, memberships=True)
        group_size = first.total
        rng = random.Random(11)
        in_group = [f"m{i:07d}" for i in range(0, args.members, 2)]

        def cursor() -> bytes:
            member_id = rng.choice(in_group)
            i = int(member_id[1:])
            listing = tuple(profiles[i].get(f) for f in index.LISTING_FIELDS)
            return index.sort_key(listing, member_id)

        profiles: dict[int, dict[str, Any]] = {}
        replay = random.Random(7)
        for i in range(args.members):
            profiles[i] = profile(i, replay)

        report: dict[str, Any] = {
            "members": args.members,
            "partitions": args.partitions,
            "group_members": group_size,
            "build_s": round(built["build_s"], 1),
            "build_members_per_s": round(args.members / built["build_s"]),
        }
        report["first_page"] = await timed(
            args.samples,
            lambda: service.listing(prefix, count, empty, None, 50, parts, memberships=True),
        )
        report["deep_page"] = await timed(
            args.samples,
            lambda: service.listing(prefix, count, empty, cursor(), 50, parts, memberships=True),
        )
        search = Filters.parse(q="ann")
        report["q_over_group"] = await timed(
            5, lambda: service.listing(prefix, count, search, None, 50, parts, memberships=True)
        )
        report["q_total"] = (
            await service.listing(prefix, count, search, None, 50, parts, memberships=True)
        ).total

        def member() -> tuple[str, int]:
            member_id = f"m{rng.randrange(args.members):07d}"
            return member_id, partition_for(member_key(SPACE, member_id), args.partitions)

        async def lookup() -> None:
            await service.member(SPACE, *member())

        async def explain() -> None:
            member_id, p = member()
            await service.explain(SPACE, "g", member_id, p)

        report["member_lookup"] = await timed(args.samples * 5, lookup)
        report["explain"] = await timed(args.samples * 5, explain)
        conditions = parse_conditions(CONDITIONS, SpaceGroupsSchema())
        report["preview"] = await timed(
            3,
            lambda: service.preview(SPACE, conditions, frozenset(), empty, None, 50, parts),
        )
        sizes = {
            name: sum(du(path) for path in root.glob(f"{name}-*.db"))
            for name in ("members", "index")
        }
        per = 100_000 / args.members
        report["rocksdb_mb_per_100k"] = {k: round(v * per / 2**20, 1) for k, v in sizes.items()}
        report["peak_rss_mb"] = round(rss_mb())
        print(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
    finally:
        shutil.rmtree(root, ignore_errors=True)


class SpaceGroupsSchema:
    """The schema a condition on profile fields needs (no properties, questions or groups)."""

    def resolve(self, field: str) -> Any:
        from smartgroups.core.fields import PROFILE_FIELDS

        return PROFILE_FIELDS.get(field)

    def has_group(self, group_id: str) -> bool:
        return False


if __name__ == "__main__":
    asyncio.run(main())
