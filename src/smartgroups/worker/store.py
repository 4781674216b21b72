"""Partition-scoped access to a faust table backed by rocksdict.

faust writes a table key into the RocksDB of the *current event's* partition and reads it from
there, which is what we want for every key an agent touches: a space's catalog lives on the
partition of its commands (and, in the agent member path, member records, group copies and the
due index on the partition of the input being processed).

What faust does not offer is an ordered scan of *one* partition (``table.items()`` walks every
active partition of the worker). :meth:`PartitionTable.scan` reads the partition's own RocksDB,
whose keys are sorted, from a prefix: no extra writes, and never another partition's keys.

**Writes bypass faust's table machinery, not its store or its recovery.** faust sends a table
write's changelog record through its ``ProducerBuffer``: a queue drained one record at a time
by a background task through the channel layer (codecs, a ``FutureMessage``, callbacks), and
once 100 records wait, the agent stalls until the queue ebbs. Measured on the definitions
agent at 10 groups (py-spy and a loop trace, ``make bench``'s drain): each group command wrote
4 to 6 keys, the buffer filled ("producer buffer full" logged every 50 ms) and the agent passed
about 1,000 commands per second with the machine half idle. So :meth:`PartitionTable.put` and
:meth:`~PartitionTable.delete` queue the changelog record (raw key and value bytes: what
faust's ``raw`` serializers send) in the :class:`ChangelogWriter`, which the agent hands to the
producer after each record (:meth:`ChangelogWriter.flush`). faust's commit flushes that
producer before it commits the record's offset, as it did for its own buffer, so delivery stays
at-least-once.

**RocksDB holds what the changelog holds, up to the stamped offset.** A write reaches the
partition's RocksDB only once its changelog record, and every record written before it on that
partition, is delivered: the delivered prefix is applied in one ``WriteBatch`` together with
its offset (faust's ``__faust\0offset__`` key, which its recovery reads the changelog on from).
Until then the write waits in an overlay (:class:`~smartgroups.worker.batch_table.Layer`) that
every read sees first, so the agent reads its own writes at once. faust wrote RocksDB at the
write and the changelog later, and so did this module until issue 15's fifth round: after a
SIGKILL, faust's recovery replays the changelog from the last stamp over a local copy that may
be ahead of it, and a space kept under several keys could come back mixed (a document naming a
definition a later, undelivered command had deleted; F1 saw it once). Now the local copy after
any crash is a prefix of the changelog, in write order, and the replay makes it exactly the
changelog; :meth:`~smartgroups.service.definitions.SpaceState.save` orders a command's writes
so that any prefix reads back whole.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from rocksdict import WriteBatch

from smartgroups.errors import ChangelogLost
from smartgroups.worker.batch_table import Layer, Pairs
from smartgroups.worker.rocks import scan_below, scan_prefix

log = logging.getLogger("smartgroups.edge")

_OFFSET_KEY = b"__faust\0offset__"
"""faust's own key in each partition's RocksDB (the changelog offset it reflects): skipped by
the scans. Only that key: a space id may start with ``__faust``."""

Send = Callable[[str, bytes, bytes | None, int], Awaitable[Any]]
"""Hands one record (topic, key, value or tombstone, partition) to the producer; resolves to
its delivery future (faust's producer driver ``send``)."""


class ChangelogWriter:
    """The changelog records of the tables' writes, from the write to the producer.

    Writes queue their records (:meth:`append`, synchronous: the services' table port is);
    the agent that made them awaits :meth:`flush` once its record is processed, before faust
    may ack it. Records keep the order of their writes. One writer serves every table.
    """

    __slots__ = ("_lock", "_pending", "failure", "stats")

    def __init__(self, stats: Counter[str] | None = None) -> None:
        self._pending: list[tuple[PartitionTable, _Write]] = []
        self._lock = asyncio.Lock()
        """One flush at a time: a send may wait (a full producer batch), and another agent's
        flush must not hand later records of the same partition over first."""
        self.stats: Counter[str] = stats if stats is not None else Counter()
        """Counts ``changelog.failed``: records the producer could not deliver."""
        self.failure: BaseException | None = None
        """Why a record could not be delivered or applied, if one could not: the next flush
        raises it."""

    def append(self, table: PartitionTable, write: _Write) -> None:
        """Queue ``write``'s record on ``table``'s changelog."""
        self._pending.append((table, write))

    def fail(self, failure: BaseException) -> None:
        """Remember the first write that was lost (the next flush raises) and count it."""
        self.stats["changelog.failed"] += 1
        self.failure = self.failure or failure

    def __len__(self) -> int:
        return len(self._pending)

    def take(self) -> list[tuple[PartitionTable, _Write]]:
        """Every queued record with its table, in write order, handed over (none stay
        queued): what :meth:`flush` sends."""
        pending, self._pending = self._pending, []
        return pending

    async def flush(self, send: Send) -> None:
        """Hand every queued record to the producer, in order; each delivery lets its table
        apply the delivered writes to RocksDB (:meth:`PartitionTable.settle`). Raises what
        the producer raises, and :class:`~smartgroups.errors.ChangelogLost` once a write was
        lost (its record not delivered, or RocksDB refused it): the caller stops the worker
        (the record is not acked), and an operator sees that the changelog misses a write."""
        if self.failure is not None:
            raise ChangelogLost(
                "a table write was lost (its changelog record not delivered, or not written"
                f" to RocksDB): {self.failure!r}"
            )
        async with self._lock:
            for table, write in self.take():
                delivery = await send(table.topic, write.key, write.value, write.partition)
                delivery.add_done_callback(partial(table.delivered, write))


class _Write:
    """One write of a faust table: its changelog record, and its offset once delivered."""

    __slots__ = ("key", "offset", "partition", "value")

    def __init__(self, partition: int, key: bytes, value: bytes | None) -> None:
        self.partition = partition
        self.key = key
        self.value = value
        self.offset: int | None = None


class _Rocks:
    """Reads of each partition's own RocksDB in faust's store (the layer under the overlay)."""

    __slots__ = ("store",)

    def __init__(self, store: Any) -> None:
        self.store = store

    def get(self, partition: int, key: bytes) -> bytes | None:
        value: bytes | None = self.store._db_for_partition(partition).get(key)
        return value

    def scan(
        self, partition: int, prefix: bytes, *, after: bytes | None = None, limit: int = 500
    ) -> Pairs:
        db = self.store._db_for_partition(partition)
        return scan_prefix(db, prefix, after, limit, skip=_OFFSET_KEY)

    def scan_until(self, partition: int, bound: bytes, limit: int) -> Pairs:
        return scan_below(self.store._db_for_partition(partition), bound, limit, skip=_OFFSET_KEY)


class PartitionTable:
    """A ``key_type=bytes, value_type=bytes`` faust table, used from inside an agent: the
    services' :class:`~smartgroups.service.ports.Table`.

    Every operation reads or writes the named partition (faust's own ``get`` and ``set`` use
    the current event's partition, which is the one the services pass: that of the record they
    process). Writes go to an overlay and queue their changelog records; each partition's
    delivered writes reach its RocksDB in order (see the module docstring). The web API's reads
    of the catalogs see the overlay too: a command's result and the definitions it wrote are
    read together.
    """

    __slots__ = ("_layer", "_settling", "_unsettled", "_waiting", "_writer", "table", "topic")

    def __init__(self, table: Any, writer: ChangelogWriter) -> None:
        self.table = table
        self.topic: str = table.changelog_topic.get_topic_name()
        self._writer = writer
        self._layer = Layer(_Rocks(table.data))
        self._unsettled: dict[int, deque[_Write]] = {}
        """Per partition, its writes not in RocksDB yet, in write order."""
        self._waiting: dict[int, dict[bytes, int]] = {}
        """Per partition, how many of its unsettled writes each key has: the overlay forgets a
        key only once its last write is in RocksDB (a key put, deleted and put again within
        a delivery's span must not read as deleted meanwhile)."""
        self._settling: set[int] = set()
        """Partitions whose :meth:`settle` is scheduled (see :meth:`delivered`)."""

    # --- the port ------------------------------------------------------------------------

    def get(self, partition: int, key: bytes) -> bytes | None:
        """The value on ``partition`` (an assigned partition: the record's own)."""
        return self._layer.get(partition, key)

    def put(self, partition: int, key: bytes, value: bytes) -> None:
        """Set ``key``: read at once, in RocksDB once delivered (see the module docstring)."""
        self._layer.put(partition, key, value)
        self._queue(_Write(partition, key, value))

    def delete(self, partition: int, key: bytes) -> None:
        """Delete ``key`` and queue a tombstone, if the key is there."""
        if self.get(partition, key) is None:
            return
        self._layer.delete(partition, key)
        self._queue(_Write(partition, key, None))

    def scan(
        self, partition: int, prefix: bytes, *, after: bytes | None = None, limit: int = 500
    ) -> Pairs:
        """Up to ``limit`` (key, value) pairs of ``partition`` whose key starts with ``prefix``,
        in byte order, strictly after ``after`` when given: the partition's RocksDB (never
        faust's offset key) with the unsettled writes over it."""
        return self._layer.scan(partition, prefix, after=after, limit=limit)

    def scan_until(self, partition: int, bound: bytes, limit: int) -> Pairs:
        """Up to ``limit`` pairs of ``partition`` from the first key, stopping before
        ``bound``."""
        return self._layer.scan_until(partition, bound, limit)

    # --- the changelog ---------------------------------------------------------------------

    def unsettled(self, partition: int) -> int:
        """How many of ``partition``'s writes wait for their changelog's delivery."""
        return len(self._unsettled.get(partition, ()))

    def delivered(self, write: _Write, delivery: Any) -> None:
        """The producer's answer for ``write``'s record: settle what is delivered.

        A record the producer could not deliver after its retries is logged and counted
        (``changelog.failed``) and the writer's next flush raises: the changelog misses a
        write, which no replay of the input repairs. Its write, and every later one of its
        partition, stay unsettled (out of RocksDB) until the worker stops."""
        failure = (
            asyncio.CancelledError("the producer cancelled it")
            if delivery.cancelled()
            else delivery.exception()
        )
        if failure is not None:
            self._writer.fail(failure)
            log.error("changelog record not delivered to %s: %r", self.topic, failure)
            return
        write.offset = delivery.result().offset
        partition = write.partition
        if partition not in self._settling:
            # After the other deliveries of the same response, whose callbacks are already
            # scheduled: one WriteBatch for them all (a group command writes 4 to 6 keys).
            self._settling.add(partition)
            delivery.get_loop().call_soon(self._settle_soon, partition)

    def _settle_soon(self, partition: int) -> None:
        self._settling.discard(partition)
        self.settle(partition)

    def settle(self, partition: int) -> None:
        """Apply ``partition``'s delivered writes, from the first one waiting up to the first
        not delivered, to its RocksDB in one ``WriteBatch`` with the last one's offset (faust's
        stamp), and forget them from the overlay.

        A partition faust closed meanwhile (revoked) drops its unsettled writes: they are in
        the changelog past the stamp, and the partition's next owner replays them. A write
        RocksDB refuses counts as lost (the writer's next flush raises)."""
        queue = self._unsettled.get(partition)
        if not queue or queue[0].offset is None:
            return
        store = self.table.data
        if partition not in store._dbs:
            log.warning(
                "%d delivered changelog records of %s partition %d not written to RocksDB: the"
                " partition is not open here (revoked); its next owner replays them",
                len(queue),
                self.topic,
                partition,
            )
            self._forget(partition)
            return
        batch = WriteBatch(raw_mode=True)
        done: list[_Write] = []
        while queue and queue[0].offset is not None:
            write = queue.popleft()
            done.append(write)
            if write.value is None:
                batch.delete(write.key)
            else:
                batch.put(write.key, write.value)
        batch.put(_OFFSET_KEY, str(done[-1].offset).encode())
        try:
            store._dbs[partition].write(batch)
        except Exception as error:
            queue.extendleft(reversed(done))
            self._writer.fail(error)
            log.error("delivered changelog records not written to RocksDB: %r", error)
            return
        if not queue:
            self._forget(partition)
            return
        waiting = self._waiting[partition]
        for write in done:
            left = waiting[write.key] - 1
            if left:
                waiting[write.key] = left
            else:  # its last write: the overlay holds the value RocksDB now has
                del waiting[write.key]
                self._layer.settle(partition, write.key, write.value)

    def _queue(self, write: _Write) -> None:
        partition = write.partition
        queue = self._unsettled.get(partition)
        if queue is None:
            queue = self._unsettled[partition] = deque()
            self._waiting[partition] = {}
        queue.append(write)
        waiting = self._waiting[partition]
        waiting[write.key] = waiting.get(write.key, 0) + 1
        self._writer.append(self, write)

    def _forget(self, partition: int) -> None:
        """Nothing of ``partition`` waits any more: its overlay goes."""
        del self._unsettled[partition]
        del self._waiting[partition]
        self._layer.discard(partition)
