"""Partition-scoped access to a faust table backed by rocksdict.

faust writes a table key into the RocksDB of the *current event's* partition and reads it from
there, which is what we want for every key a member agent touches: member records, the space's
group copies and the due index all live on the partition of the input being processed.

What faust does not offer is an ordered scan of *one* partition (``table.items()`` walks every
active partition of the worker). :meth:`PartitionTable.scan` reads the partition's own RocksDB,
whose keys are sorted, from a prefix: that is the per-partition index used by backfills and the
due index — no extra writes, and never another partition's keys.
"""

from __future__ import annotations

from typing import Any

_OFFSET_KEY = b"__faust\0offset__"
"""faust's own key in each partition's RocksDB (the changelog offset it reflects): skipped by
the scans. Only that key: a space id may start with ``__faust``."""


class PartitionTable:
    """A ``key_type=bytes, value_type=bytes`` faust table, used from inside an agent: the
    services' :class:`~smartgroups.service.ports.Table`.

    faust reads and writes a key in the RocksDB of the current event's partition, so the
    ``partition`` that ``get``/``put``/``delete`` are given is the one faust uses anyway (the
    services always pass the partition of the record they process); the scans read the named
    partition's RocksDB directly."""

    __slots__ = ("table",)

    def __init__(self, table: Any) -> None:
        self.table = table

    def get(self, partition: int, key: bytes) -> bytes | None:
        """The value in the current event's partition (``partition`` must be it)."""
        value: bytes | None = self.table.get(key)
        return value

    def put(self, partition: int, key: bytes, value: bytes) -> None:
        """Write to the current event's partition (``partition`` must be it)."""
        self.table[key] = value

    def delete(self, partition: int, key: bytes) -> None:
        """Delete from the current event's partition (``partition`` must be it)."""
        if key in self.table:
            del self.table[key]

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
        db = self.table.data._db_for_partition(partition)
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
        db = self.table.data._db_for_partition(partition)
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
