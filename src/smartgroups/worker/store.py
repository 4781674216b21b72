"""Partition-scoped access to a faust table backed by rocksdict.

faust writes a table key into the RocksDB of the *current event's* partition and reads it from
there, which is what we want for every key an agent touches: member records, the space's group
copies and the due index all live on the partition of the input being processed, a space's
catalog on the partition of its commands.

What faust does not offer is an ordered scan of *one* partition (``table.items()`` walks every
active partition of the worker). :meth:`PartitionTable.scan` reads the partition's own RocksDB,
whose keys are sorted, from a prefix: that is the per-partition index used by backfills and the
due index — no extra writes, and never another partition's keys.

**Writes bypass faust's table machinery, not its store or its recovery.** faust sends a table
write's changelog record through its ``ProducerBuffer``: a queue drained one record at a time
by a background task through the channel layer (codecs, a ``FutureMessage``, callbacks), and
once 100 records wait, the agent stalls until the queue ebbs. Measured on the definitions
agent at 10 groups (py-spy and a loop trace, ``make bench``'s drain): each group command wrote
4 to 6 keys, the buffer filled ("producer buffer full" logged every 50 ms) and the agent passed
about 1,000 commands per second with the machine half idle. So :meth:`PartitionTable.put` and
:meth:`~PartitionTable.delete` write the partition's RocksDB directly and queue the changelog
record (raw key and value bytes: what faust's ``raw`` serializers send) in the
:class:`ChangelogWriter`, which the agent hands to the producer after each record
(:meth:`ChangelogWriter.flush`). faust's commit flushes that producer before it commits the
record's offset, as it did for its own buffer, so delivery stays at-least-once; each delivery
stamps the partition's changelog offset in its RocksDB (faust's ``set_persisted_offset``), so
faust's recovery reads on from there as before.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka.structs import TopicPartition

from smartgroups.errors import ChangelogLost

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
    may ack it. Records keep the order of their writes.
    """

    __slots__ = ("_pending", "failure", "stats")

    def __init__(self, stats: Counter[str] | None = None) -> None:
        self._pending: list[tuple[_Changelog, int, bytes, bytes | None]] = []
        self.stats: Counter[str] = stats if stats is not None else Counter()
        """Counts ``changelog.failed``: records the producer could not deliver."""
        self.failure: BaseException | None = None
        """Why a record could not be delivered, if one could not: the next flush raises it."""

    def append(
        self, changelog: _Changelog, partition: int, key: bytes, value: bytes | None
    ) -> None:
        """Queue ``key``'s new value (``None``: deleted) on ``changelog``'s topic."""
        self._pending.append((changelog, partition, key, value))

    def __len__(self) -> int:
        return len(self._pending)

    async def flush(self, send: Send) -> None:
        """Hand every queued record to the producer, in order; each delivery stamps its
        offset in the partition's RocksDB. Raises what the producer raises, and
        :class:`~smartgroups.errors.ChangelogLost` once a record could not be delivered: the
        caller stops the worker (the record is not acked), and an operator sees that the
        changelog misses a write."""
        if self.failure is not None:
            raise ChangelogLost(f"a changelog record was not delivered: {self.failure!r}")
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        for changelog, partition, key, value in pending:
            delivery = await send(changelog.topic, key, value, partition)
            delivery.add_done_callback(changelog.delivered)


class _Changelog:
    """One table's changelog topic and the stamp of what it holds, per partition."""

    __slots__ = ("table", "topic", "writer")

    def __init__(self, table: Any, writer: ChangelogWriter) -> None:
        self.topic: str = table.changelog_topic.get_topic_name()
        self.table = table
        self.writer = writer

    def delivered(self, delivery: Any) -> None:
        """Stamp a delivered record's offset in its partition's RocksDB, as faust's own
        changelog callback does (recovery reads the changelog from there). A partition closed
        meanwhile (revoked) is left alone. A record the producer could not deliver after its
        retries is logged and counted (``changelog.failed``), and the writer's next flush
        raises: the table's changelog misses a write, which no replay of the input repairs."""
        if delivery.cancelled():
            return
        if (failure := delivery.exception()) is not None:
            self.writer.stats["changelog.failed"] += 1
            self.writer.failure = self.writer.failure or failure
            log.error("changelog record not delivered to %s: %r", self.topic, failure)
            return
        metadata = delivery.result()
        store = self.table.data
        if metadata.partition in store._dbs:
            tp = TopicPartition(metadata.topic, metadata.partition)
            store.set_persisted_offset(tp, metadata.offset)


class PartitionTable:
    """A ``key_type=bytes, value_type=bytes`` faust table, used from inside an agent: the
    services' :class:`~smartgroups.service.ports.Table`.

    Every operation reads or writes the named partition's RocksDB (faust's own ``get`` and
    ``set`` use the current event's partition, which is the one the services pass: that of
    the record they process); writes queue their changelog records (see the module
    docstring)."""

    __slots__ = ("_changelog", "_writer", "table")

    def __init__(self, table: Any, writer: ChangelogWriter) -> None:
        self.table = table
        self._writer = writer
        self._changelog = _Changelog(table, writer)

    def _db(self, partition: int) -> Any:
        return self.table.data._db_for_partition(partition)

    def get(self, partition: int, key: bytes) -> bytes | None:
        """The value in ``partition``'s RocksDB (an assigned partition: the record's own)."""
        value: bytes | None = self._db(partition).get(key)
        return value

    def put(self, partition: int, key: bytes, value: bytes) -> None:
        """Write to ``partition``'s RocksDB and queue the changelog record (see the module
        docstring)."""
        self._db(partition).put(key, value)
        self._writer.append(self._changelog, partition, key, value)

    def delete(self, partition: int, key: bytes) -> None:
        """Delete from ``partition``'s RocksDB and queue a tombstone, if the key is there."""
        db = self._db(partition)
        if db.get(key) is None:
            return
        db.delete(key)
        self._writer.append(self._changelog, partition, key, None)

    def scan(
        self, partition: int, prefix: bytes, *, after: bytes | None = None, limit: int = 500
    ) -> list[tuple[bytes, bytes]]:
        """Up to ``limit`` (key, value) pairs of ``partition`` whose key starts with ``prefix``.

        Keys come in byte order, strictly after ``after`` when given. Reads the partition's
        RocksDB directly (see the module docstring); writes made while the caller processes the
        chunk are not seen by it.
        """
        if limit < 1:
            return []
        db = self._db(partition)
        start = max(after + b"\x00", prefix) if after is not None else prefix
        chunk: list[tuple[bytes, bytes]] = []
        for key, value in db.items(from_key=start):
            if not key.startswith(prefix):
                break
            if key == _OFFSET_KEY:
                continue
            chunk.append((key, value))
            if len(chunk) >= limit:
                break
        return chunk

    def scan_until(self, partition: int, bound: bytes, limit: int) -> list[tuple[bytes, bytes]]:
        """Up to ``limit`` pairs of ``partition`` from the first key, stopping before ``bound``."""
        if limit < 1:
            return []
        db = self._db(partition)
        chunk: list[tuple[bytes, bytes]] = []
        for key, value in db.items():
            if key >= bound:
                break
            if key == _OFFSET_KEY:
                continue
            chunk.append((key, value))
            if len(chunk) >= limit:
                break
        return chunk
