"""The member path as batches on its own Kafka consumer (``SMARTGROUPS_MEMBER_PATH=batch``).

faust's per-record stream path costs 120 to 270 µs of CPU per record on this machine, against
12 µs for a raw aiokafka consume→produce pipe (``bench/README.md``): whatever the core does, a
member path that is a faust agent cannot pass a few thousand events per second. So the member
path can run as a loop of its own, inside the faust app's lifecycle (a ``mode`` service started
and stopped with the app), with its own consumer group ``{app}-members``, its own producer and
its own RocksDB tables; the definitions agent, the timer and the web server stay faust's.

One batch (:meth:`MemberLoop._batch`), under :attr:`MemberLoop.lock`:

1. ``getmany`` a batch; hand every record, per partition in offset order, to the same
   :class:`~smartgroups.service.members.MemberService` the agent uses. State writes go to a
   :class:`~smartgroups.worker.batch_table.BatchTable` overlay, outputs to the producer.
2. **Checkpoint**, in quix-streams' order: send one changelog record per key the batch changed
   (``{app}-{table}-changelog``, the key's partition), wait until every output and changelog
   record is acknowledged (a failed delivery stops the worker), commit the input offsets, then
   write the batch's state to RocksDB in one write batch per partition and store the changelog
   offset it reflects.

A crash anywhere leaves RocksDB *behind* the changelog, never ahead of it: on assignment each
partition's tables are brought up to the end of their changelogs from the stored offset (all of
it when the data directory was lost). Inputs after the last committed offset are read again; a
member record that already holds an input (its offset per source) re-sends the outputs it kept,
so outputs stay exact in effect (deterministic ids, per-pair versions).

Assignment: the range assignor, so one worker owns the same partition number of every topic
it reads (the tables are per partition number; aiokafka's default round robin split them).

Rebalances: on revocation the listener waits for the batch in progress to finish its
checkpoint (the lock), then closes the revoked partitions; on assignment it restores the new
ones before the next batch. A record whose processing fails by its own doing is dead-lettered
(``processing_error``); any other failure stops the worker uncommitted, as with the agents
(:func:`smartgroups.worker.edge.blames_record`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from mode import Service

from smartgroups.service.members import MemberService
from smartgroups.service.ports import Headers, Record
from smartgroups.wire.deadletter import DeadLetter
from smartgroups.worker.batch_table import BatchTable
from smartgroups.worker.edge import blames_record, send_dead_letter
from smartgroups.worker.rocks import RocksTable
from smartgroups.worker.runtime import Runtime

log = logging.getLogger("smartgroups.members")

MEMBER_TABLES = ("members", "groups", "due")
"""The member path's tables; each has the changelog topic the topology names for it."""

MAX_RECORDS = 2000
"""Records per batch at most (``getmany``'s ``max_records``)."""


def _checkpoint_key(table: str) -> bytes:
    """Where a partition's ``checkpoints`` keep the last changelog offset applied to ``table``."""
    return b"changelog-offset:" + table.encode()


class BatchPublisher:
    """The service's :class:`~smartgroups.service.ports.Publisher` on the loop's own producer:
    records are handed to the producer at once and their deliveries awaited at the checkpoint."""

    def __init__(self, runtime: Runtime) -> None:
        self.stats = runtime.stats
        self.producer: AIOKafkaProducer  # set when the loop starts
        self.names = runtime.topology.roles()
        self.deliveries: list[asyncio.Future[Any]] = []

    async def send(
        self,
        role: str,
        key: bytes | None,
        value: bytes | None,
        partition: int | None = None,
        headers: Headers | None = None,
    ) -> None:
        await self.to_topic(self.names[role], key, value, partition, headers)

    async def to_topic(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        partition: int | None = None,
        headers: Headers | None = None,
    ) -> asyncio.Future[Any]:
        delivery: asyncio.Future[Any] = await self.producer.send(
            topic, value=value, key=key, partition=partition, headers=headers
        )
        self.deliveries.append(delivery)
        return delivery

    async def dead_letter(self, record: Record, letter: DeadLetter) -> None:
        await send_dead_letter(self, self.stats, record, letter)

    async def delivered(self) -> None:
        """Wait until every record sent since the last call is acknowledged; raise the first
        delivery failure (the caller stops the worker: nothing may be committed past it)."""
        deliveries, self.deliveries = self.deliveries, []
        if deliveries:
            await asyncio.gather(*deliveries)


class MemberLoop(Service, ConsumerRebalanceListener):  # type: ignore[misc]
    """The member path's consumer loop (see the module docstring)."""

    def __init__(self, runtime: Runtime, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rt = runtime
        settings, topology = runtime.settings, runtime.topology
        root = settings.data_dir / "members"  # beside faust's own v1/ directory
        self.tables = {name: BatchTable(RocksTable(root, name)) for name in MEMBER_TABLES}
        self.checkpoints = RocksTable(root, "checkpoints")
        self.sources = (*topology.member_inputs, topology.fanout)
        self.lock = asyncio.Lock()
        self.assigned: set[int] = set()
        self.ready: set[int] = set()
        self.rebalancing = True
        self.offsets: dict[TopicPartition, int] = {}
        self.consumer: AIOKafkaConsumer  # made when the loop starts (see on_start)
        self.producer: AIOKafkaProducer
        self.publisher = BatchPublisher(runtime)
        self.service = MemberService(
            members=self.tables["members"],
            groups=self.tables["groups"],
            due=self.tables["due"],
            publisher=self.publisher,
            topics=topology,
            clock=runtime.clock,
            scan_chunk=settings.scan_chunk,
            stats=runtime.stats,
        )

    # -- lifecycle (mode) ----------------------------------------------------------------------
    async def on_start(self) -> None:
        # aiokafka's clients bind to the running loop: they are made here, not in __init__.
        settings, topology = self.rt.settings, self.rt.topology
        options = settings.kafka_client_options()
        self.consumer = AIOKafkaConsumer(
            **options,
            group_id=topology.member_group,
            # Co-partitioned: a worker owns partition N of every input and the fan-out, since
            # the tables are per partition number. aiokafka's default (round robin over all
            # topic-partitions) gave member-changes-1 to one worker and property-changes-1 to
            # another, both writing partition 1's state (issue 19, F6/F7).
            partition_assignment_strategy=(RangePartitionAssignor,),
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=15_000,
            heartbeat_interval_ms=3_000,
            max_partition_fetch_bytes=4 << 20,
        )
        self.producer = AIOKafkaProducer(
            **options, acks="all", enable_idempotence=True, linger_ms=5, max_batch_size=131072
        )
        self.publisher.producer = self.producer
        await self.producer.start()
        self.consumer.subscribe(list(self.sources), listener=self)
        await self.consumer.start()

    async def on_stop(self) -> None:
        async with self.lock:  # the batch in progress finishes its checkpoint first
            await self.consumer.stop()  # leaves the group: the partitions move at once
            await self.producer.stop()
            for table in self.tables.values():
                table.close()
            self.checkpoints.close()

    @Service.task
    async def _run(self) -> None:
        while not self.should_stop:
            try:
                batch = await self.consumer.getmany(timeout_ms=200, max_records=MAX_RECORDS)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.should_stop:  # the consumer was stopped under the fetch: shutting down
                    return
                await self._halt("the member path could not fetch", exc)
                return
            if batch and not await self._batch(batch):
                return

    # -- one batch -----------------------------------------------------------------------------
    async def _batch(self, batch: dict[TopicPartition, list[Any]]) -> bool:
        """Process and checkpoint one batch; False when the worker must stop."""
        async with self.lock:
            for tp, messages in batch.items():
                if tp.partition not in self.ready:
                    continue  # revoked since the fetch: its new owner reads it
                for message in messages:
                    record = Record.from_message(message)
                    try:
                        await self.service.handle(record)
                    except Exception as exc:
                        if not blames_record(exc):
                            await self._halt(f"could not process {record.coordinates()}", exc)
                            return False
                        log.exception("members: failed on %s", record.coordinates())
                        await self.publisher.dead_letter(
                            record,
                            DeadLetter("processing_error", "the processor failed on this record"),
                        )
                self.offsets[tp] = messages[-1].offset + 1
            self.rt.stats["batches"] += 1
            try:
                await self._checkpoint()
            except Exception as exc:
                await self._halt("could not checkpoint a batch", exc)
                return False
        return True

    async def _checkpoint(self) -> None:
        """Changelogs, deliveries, offsets, then state (see the module docstring)."""
        changelog_offsets: dict[tuple[str, int], asyncio.Future[Any]] = {}
        for name, table in self.tables.items():
            topic = self.rt.topology.changelog(name)
            for partition in table.dirty():
                last = None
                for key, value in table.pending(partition):
                    last = await self.publisher.to_topic(topic, key, value, partition)
                if last is not None:
                    changelog_offsets[(name, partition)] = last
        await self.publisher.delivered()
        if self.offsets:
            await self.consumer.commit(dict(self.offsets))
            self.offsets.clear()
        for table in self.tables.values():
            for partition in table.dirty():
                table.flush(partition)
        for (name, partition), delivery in changelog_offsets.items():
            self._store_offset(name, partition, delivery.result().offset)

    # -- changelog offsets and restore ---------------------------------------------------------
    def _stored_offset(self, table: str, partition: int) -> int:
        raw = self.checkpoints.get(partition, _checkpoint_key(table))
        return int(raw) if raw is not None else -1

    def _store_offset(self, table: str, partition: int, offset: int) -> None:
        self.checkpoints.put(partition, _checkpoint_key(table), str(offset).encode())

    async def _restore(self, partitions: Iterable[int]) -> None:
        """Bring each partition's tables to the end of their changelogs."""
        reader = AIOKafkaConsumer(
            **self.rt.settings.kafka_client_options(),
            group_id=None,
            enable_auto_commit=False,
            max_partition_fetch_bytes=4 << 20,
        )
        await reader.start()
        try:
            for partition in sorted(partitions):
                fresh = self._open_or_wipe(partition)
                for name, table in self.tables.items():
                    restored = await self._restore_one(
                        reader, name, table, partition, fresh=name in fresh
                    )
                    if restored:
                        self.rt.stats["restored.records"] += restored
        finally:
            await reader.stop()

    def _open_or_wipe(self, partition: int) -> set[str]:
        """Open ``partition``'s RocksDBs; return the tables that start empty (no files on disk:
        restored from the changelog's start, whatever the checkpoint says).

        A RocksDB that does not open because a file is damaged (RocksDB's ``Corruption: …``;
        any other error, say a lock held by another process, stops the worker) gets the partition's
        tables and checkpoints wiped and rebuilt from the changelogs' start (issue 19, F4), rather
        than a crash at every start or, worse, an empty table RocksDB made in place of a lost
        ``CURRENT`` file that the checkpoint would take as up to date.
        """
        stores = [*(t.base for t in self.tables.values()), self.checkpoints]
        fresh = {name for name, t in self.tables.items() if not t.base.exists(partition)}
        try:
            for store in stores:
                store.open(partition)
        except Exception as exc:
            if not str(exc).startswith("Corruption"):
                raise  # a lock held by another process, a full disk: not ours to wipe
            log.error(
                "members: the RocksDB of partition %d does not open (%s): wiping it; its tables "
                "are rebuilt from the changelogs",
                partition,
                " ".join(str(exc).split())[:200],
            )
            for store in stores:
                store.wipe(partition)
            self.rt.stats["rocksdb.wiped"] += 1
            return set(self.tables)
        return fresh

    async def _restore_one(
        self,
        reader: AIOKafkaConsumer,
        name: str,
        table: BatchTable,
        partition: int,
        *,
        fresh: bool = False,
    ) -> int:
        tp = TopicPartition(self.rt.topology.changelog(name), partition)
        end = (await reader.end_offsets([tp]))[tp]
        start = 0 if fresh else self._stored_offset(name, partition) + 1
        if start > end:
            await self._reseed(name, table, partition, end)
            return 0
        if start >= end:
            return 0
        reader.assign([tp])
        reader.seek(tp, start)
        restored = 0
        while await reader.position(tp) < end:
            fetched = await reader.getmany(tp, timeout_ms=1000, max_records=10_000)
            messages = fetched.get(tp, [])
            if not messages:
                continue
            puts = [(m.key, m.value) for m in messages if m.value is not None]
            deletes = [m.key for m in messages if m.value is None]
            table.base.write_batch(partition, puts, deletes)
            restored += len(messages)
            self._store_offset(name, partition, messages[-1].offset)
        log.info("restored %d %s records of partition %d", restored, name, partition)
        return restored

    async def _reseed(self, name: str, table: BatchTable, partition: int, end: int) -> None:
        """The changelog ends below the offset the local state reflects: it was deleted and
        created again, or truncated (faust #158, issue 19 F17). The local state is then the only
        full copy: write it to the changelog again (every key of the partition, in key order),
        so a later restore on any worker finds it, instead of crashing or dropping it."""
        stored = self._stored_offset(name, partition)
        log.warning(
            "members: changelog %s partition %d ends at offset %d, below the stored offset %d "
            "(deleted or truncated): writing the partition's local state to it again",
            self.rt.topology.changelog(name),
            partition,
            end,
            stored,
        )
        topic = self.rt.topology.changelog(name)
        last = None
        after: bytes | None = None
        count = 0
        while True:
            chunk = table.base.scan(partition, b"", after=after, limit=1000)
            if not chunk:
                break
            for key, value in chunk:
                last = await self.publisher.to_topic(topic, key, value, partition)
            count += len(chunk)
            after = chunk[-1][0]
        await self.publisher.delivered()
        self._store_offset(name, partition, last.result().offset if last is not None else end - 1)
        self.rt.stats["changelog.reseeded"] += count

    # -- rebalances (aiokafka's listener) ------------------------------------------------------
    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        self.rebalancing = True
        async with self.lock:  # a batch in progress finishes its checkpoint first
            gone = {tp.partition for tp in revoked}
            for partition in gone:
                for table in self.tables.values():
                    table.close_partition(partition)
                self.checkpoints.close_partition(partition)
            self.ready -= gone
            self.assigned -= gone
            self.service.forget()

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        async with self.lock:
            partitions = {tp.partition for tp in assigned}
            self.assigned = partitions
            try:
                await self._restore(partitions - self.ready)
            except Exception as exc:
                await self._halt("could not restore the member tables", exc)
                return
            self.ready = set(partitions)
            self.service.forget()
            self.rebalancing = False
            log.info("members: ready on partitions %s", sorted(partitions))

    # -- health --------------------------------------------------------------------------------
    def not_ready(self) -> str | None:
        """Why the assigned partitions are not all processed now (None when they are)."""
        return "rebalancing" if self.rebalancing or self.ready != self.assigned else None

    # -- failure ---------------------------------------------------------------------------------
    async def _halt(self, what: str, exc: BaseException) -> None:
        """Stop the worker: nothing past the last checkpoint is committed (see the module
        docstring); ``/v1/health`` reports why until the process exits."""
        detail = " ".join(str(exc).split()).rstrip(".")
        self.rt.failure = f"members {what}: {type(exc).__name__}" + (
            f": {detail}" if detail else ""
        )
        log.critical(
            "stopping the worker: %s. Nothing after the last checkpoint is committed; "
            "it is processed when the worker starts again.",
            self.rt.failure,
        )
        self.rt.exit_within()
        await self.rt.app.crash(exc)
