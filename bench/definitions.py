"""What one ``group-changes`` command costs the definitions service, by group count.

``python -m bench.definitions [--groups 10,100,1000] [--commands 1000]``

In process, over the in-memory table and publisher (no Kafka, no RocksDB): the end-to-end
benchmark's definitions for G groups per space (:mod:`bench.workload`) are applied, then
``--commands`` of its cheap definition changes. For those, it reports the CPU µs per command
and the bytes the service wrote to the ``catalogs`` table per command: what the worker writes to
RocksDB and to the table's changelog for each command. Run it from two source trees to compare
two versions of the service (it uses only the service's public constructor and ``handle``).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import Counter
from typing import Any

import orjson

from bench import segments
from bench.workload import Workload, WorkloadSpec
from smartgroups.core.partitioning import partition_for
from smartgroups.service.definitions import DefinitionsService
from smartgroups.service.memory import MemoryPublisher, MemoryTable
from smartgroups.service.ports import Record

PARTITIONS = 4


class Names(segments.Names):
    partitions = PARTITIONS


class CountingTable(MemoryTable):
    """A MemoryTable that counts the bytes and the keys written to it."""

    def __init__(self) -> None:
        super().__init__()
        self.bytes = 0
        self.writes = 0

    def put(self, partition: int, key: bytes, value: bytes) -> None:
        self.bytes += len(key) + len(value)
        self.writes += 1
        super().put(partition, key, value)

    def delete(self, partition: int, key: bytes) -> None:
        self.bytes += len(key)
        self.writes += 1
        super().delete(partition, key)


async def measure(groups: int, commands: int) -> dict[str, Any]:
    workload = Workload(WorkloadSpec(spaces=1, members=200, groups=groups, tag="d"))
    setup = workload.definitions()
    changes = workload.definition_changes(commands)
    table = CountingTable()
    publisher = MemoryPublisher()
    service = DefinitionsService(
        catalogs=table, publisher=publisher, topics=Names(), stats=Counter()
    )
    offsets: Counter[int] = Counter()

    async def apply(events: list[Any]) -> None:
        for event in events:
            partition = partition_for(event.key, PARTITIONS)
            record = Record(
                "group-changes", partition, offsets[partition], event.key, orjson.dumps(event.value)
            )
            offsets[partition] += 1
            await service.handle(record)
            publisher.sent.clear()

    await apply(setup)
    table.bytes = table.writes = 0
    started = time.process_time()
    await apply(changes)
    cpu = time.process_time() - started
    return {
        "groups": groups,
        "commands": commands,
        "cpu_us_per_command": round(cpu * 1e6 / commands, 1),
        "bytes_per_command": round(table.bytes / commands),
        "writes_per_command": round(table.writes / commands, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--groups", default="10,100,1000")
    parser.add_argument("--commands", type=int, default=1000)
    args = parser.parse_args()
    for groups in (int(g) for g in args.groups.split(",")):
        print(orjson.dumps(asyncio.run(measure(groups, args.commands))).decode(), flush=True)


if __name__ == "__main__":
    main()
