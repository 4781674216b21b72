"""An in-memory stand-in for the topics between the services: what the worker does with Kafka.

:class:`Bus` owns the two services over in-memory tables, a publisher and a manual clock. Inputs
are appended to per-(topic, partition) logs with offsets, as a broker would; :meth:`Bus.run`
hands every pending record to its service in offset order, partition by partition, and feeds the
fan-out and commands records the services publish back in, until nothing is pending. Outputs
(``changes``, ``state``, ``results``, ``dead_letters``) are kept in order for the test to read.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from smartgroups.core.partitioning import partition_for
from smartgroups.service.definitions import DefinitionsService
from smartgroups.service.members import MemberService
from smartgroups.service.memory import ManualClock, MemoryPublisher, MemoryTable, Sent
from smartgroups.service.ports import Record

MEMBER_TOPICS = ("member-changes", "property-changes", "form-answers")


@dataclass(frozen=True)
class Names:
    """The topology as the services see it (no prefix)."""

    partitions: int = 4
    fanout: str = "app-fanout"
    commands: str = "app-commands"

    def logical(self, topic: str) -> str:
        return topic


class Bus:
    def __init__(
        self, partitions: int = 4, scan_chunk: int = 50, *, inline_scans: bool = False
    ) -> None:
        self.names = Names(partitions)
        self.clock = ManualClock(datetime(2026, 12, 1, 12, 0, tzinfo=UTC))
        self.publisher = MemoryPublisher()
        self.stats: Counter[str] = Counter()
        self.members_table = MemoryTable()
        self.groups_table = MemoryTable()
        self.index_table = MemoryTable()
        self.members = MemberService(
            members=self.members_table,
            groups=self.groups_table,
            due=MemoryTable(),
            publisher=self.publisher,
            topics=self.names,
            clock=self.clock,
            scan_chunk=scan_chunk,
            stats=self.stats,
            inline_scans=inline_scans,
            index=self.index_table,
        )
        self.scan_chunk = scan_chunk
        self.definitions = DefinitionsService(
            catalogs=MemoryTable(), publisher=self.publisher, topics=self.names, stats=self.stats
        )
        self.logs: dict[tuple[str, int], list[Record]] = {}
        self.read: dict[tuple[str, int], int] = {}
        self.outputs: list[Sent] = []

    # -- producing, as a client would ------------------------------------------------------------
    def append(
        self, topic: str, key: bytes | None, value: bytes | None, partition: int | None = None
    ) -> Record:
        if partition is None:
            assert key is not None
            partition = partition_for(key, self.names.partitions)
        log = self.logs.setdefault((topic, partition), [])
        record = Record(topic, partition, len(log), key, value)
        log.append(record)
        return record

    def event(self, topic: str, event: dict[str, Any], partition: int | None = None) -> Record:
        """Append ``event`` under its contract key (``partition`` forces a wrong one)."""
        if topic == "group-changes":
            key = event["space"].encode()
        else:
            key = f"{event['space']}:{event['member_id']}".encode()
        return self.append(topic, key, orjson.dumps(event), partition)

    # -- consuming -----------------------------------------------------------------------------
    async def run(self) -> None:
        """Process every pending record, and what they publish to internal topics, until idle."""
        while True:
            pending = [
                (topic, partition)
                for (topic, partition), log in sorted(self.logs.items())
                if self.read.get((topic, partition), 0) < len(log)
            ]
            if not pending:
                if not self.members.scanning():
                    return
                # As the member loop does between fetched batches: one slice of the backfills.
                await self.members.step_scans(self.scan_chunk)
                self.route()
                continue
            for topic, partition in pending:
                log = self.logs[(topic, partition)]
                while self.read.get((topic, partition), 0) < len(log):
                    record = log[self.read.get((topic, partition), 0)]
                    self.read[(topic, partition)] = record.offset + 1
                    await self.deliver(record)

    async def deliver(self, record: Record) -> None:
        """Hand one record to its service (again, for a re-delivery) and route what it sends."""
        if record.topic in ("group-changes", self.names.commands):
            await self.definitions.handle(record)
        else:
            await self.members.handle(record)
        self.route()

    async def tick(self) -> None:
        """Time passed: check the members due, as the member path in use does (the batch loop
        in process, slice by slice; the agent path through a ``tick`` message per partition)."""
        if self.members.inline_scans:
            for partition in range(self.names.partitions):
                while not (await self.members.step_due(partition, self.scan_chunk))[1]:
                    self.route()
                self.route()
        else:
            for partition in range(self.names.partitions):
                self.append(self.names.fanout, b"tick", b'{"k":"tick"}', partition)
        await self.run()

    def route(self) -> None:
        """Feed what the services sent to internal topics back in; keep the outputs."""
        for sent in self.publisher.take():
            if sent.role == "fanout":
                self.append(self.names.fanout, sent.key, sent.value, sent.partition)
            elif sent.role == "commands":
                self.append(self.names.commands, sent.key, sent.value, sent.partition)
            else:
                self.outputs.append(sent)

    # -- reading outputs -----------------------------------------------------------------------
    def take(self, role: str) -> list[Sent]:
        taken = [o for o in self.outputs if o.role == role]
        self.outputs = [o for o in self.outputs if o.role != role]
        return taken

    def changes(self) -> list[dict[str, Any]]:
        return [orjson.loads(o.value) for o in self.take("changes") if o.value is not None]
