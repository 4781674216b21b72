"""A :class:`~smartgroups.service.ports.Table` over RocksDB (rocksdict), with no faust.

:class:`RocksTable` keeps one RocksDB per partition at ``{root}/{name}-{partition}.db`` (faust's
layout under its table directory), opened on first use and closed with :meth:`RocksTable.close`
or, for one revoked partition, :meth:`RocksTable.close_partition`. Keys and values are raw bytes
(``raw_mode=True``); keys are ordered as unsigned bytes (RocksDB's default comparator), which is
Python's ``bytes`` order, so :meth:`~RocksTable.scan` and :meth:`~RocksTable.scan_until` answer
exactly as :class:`~smartgroups.service.memory.MemoryTable` does (``tests/contract``).

:meth:`RocksTable.write_batch` applies many changes to one partition atomically in one RocksDB
``WriteBatch``: readers, and a reopen after a crash, see all of them or none.

Decisions where the port is silent:

* A ``limit`` of 0 or less returns no pairs (``scan`` and ``scan_until`` alike).
* Memory: each partition's RocksDB has two 8 MiB write buffers; the 32 MiB LRU block cache is
  **one per table**, shared by its partitions, so memory does not grow with the partitions a
  worker is assigned (faust builds one cache per partition).
* Durability: writes go through RocksDB's write-ahead log without fsync; a value whose write
  returned survives the process's death, a machine crash may lose the last writes (the changelog
  restores them).
* A partition closed by :meth:`~RocksTable.close_partition` or :meth:`~RocksTable.close` opens
  again on its next use; closing what is not open does nothing. One process must not open the
  same directory twice: RocksDB's lock refuses the second handle.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Iterator
from itertools import islice, takewhile
from pathlib import Path
from typing import cast

from rocksdict import BlockBasedOptions, Cache, Options, Rdict, WriteBatch

WRITE_BUFFER_SIZE = 8 << 20
MAX_WRITE_BUFFER_NUMBER = 2
BLOCK_CACHE_SIZE = 32 << 20
MAX_OPEN_FILES = 256
BLOOM_BITS_PER_KEY = 10


def _options(cache: Cache) -> Options:
    """RocksDB options sized like the faust tables' (``worker.app._ROCKSDB``), sharing ``cache``."""
    options = Options(raw_mode=True)
    options.create_if_missing(True)
    options.set_write_buffer_size(WRITE_BUFFER_SIZE)
    options.set_max_write_buffer_number(MAX_WRITE_BUFFER_NUMBER)
    options.set_max_open_files(MAX_OPEN_FILES)
    table = BlockBasedOptions()
    table.set_block_cache(cache)
    table.set_bloom_filter(BLOOM_BITS_PER_KEY, False)  # point gets of absent keys skip files
    options.set_block_based_table_factory(table)
    return options


def _items(db: Rdict, start: bytes | None = None) -> Iterator[tuple[bytes, bytes]]:
    """``db``'s pairs in key order from ``start`` (the first key when None); raw mode: bytes."""
    return cast(Iterator[tuple[bytes, bytes]], db.items(from_key=start))


def _property(db: Rdict, name: str) -> int:
    """An integer property of ``db`` (0 when RocksDB does not know it)."""
    value = db.property_int_value(name)
    return int(value) if value is not None else 0


def _take(
    pairs: Iterator[tuple[bytes, bytes]], limit: int, skip: bytes | None
) -> list[tuple[bytes, bytes]]:
    """The first ``limit`` of ``pairs`` (none when ``limit`` is 0 or less, without reading
    any), the key ``skip`` left out."""
    if skip is not None:
        pairs = (pair for pair in pairs if pair[0] != skip)
    return list(islice(pairs, max(limit, 0)))


def scan_prefix(
    db: Rdict, prefix: bytes, after: bytes | None, limit: int, skip: bytes | None = None
) -> list[tuple[bytes, bytes]]:
    """Up to ``limit`` pairs of ``db`` whose key starts with ``prefix``, in key order, strictly
    after ``after`` when given; the key ``skip`` (faust's offset key) is left out."""
    # after + b"\x00" is the least key greater than after, in unsigned byte order.
    start = prefix if after is None else max(prefix, after + b"\x00")
    return _take(takewhile(lambda pair: pair[0].startswith(prefix), _items(db, start)), limit, skip)


def scan_below(
    db: Rdict, bound: bytes, limit: int, skip: bytes | None = None
) -> list[tuple[bytes, bytes]]:
    """Up to ``limit`` pairs of ``db`` from its first key, stopping before ``bound``; the key
    ``skip`` is left out."""
    return _take(takewhile(lambda pair: pair[0] < bound, _items(db)), limit, skip)


class RocksTable:
    """A partitioned table of bytes in one RocksDB per partition under ``root``.

    ``name`` names the table's files (``{root}/{name}-{partition}.db``); ``root`` is created
    when missing. Not thread-safe: one event loop uses it, as the worker's agents do.
    """

    def __init__(self, root: Path | str, name: str) -> None:
        if not name or "/" in name:
            raise ValueError(f"table name must be a non-empty file name, got {name!r}")
        self.root = Path(root)
        self.name = name
        self._cache = Cache(BLOCK_CACHE_SIZE)
        self._options = _options(self._cache)
        self._dbs: dict[int, Rdict] = {}

    def path(self, partition: int) -> Path:
        """Where ``partition``'s RocksDB lives."""
        return self.root / f"{self.name}-{partition}.db"

    def _db(self, partition: int) -> Rdict:
        db = self._dbs.get(partition)
        if db is None:
            self.root.mkdir(parents=True, exist_ok=True)
            db = Rdict(str(self.path(partition)), self._options)
            self._dbs[partition] = db
        return db

    def get(self, partition: int, key: bytes) -> bytes | None:
        """The value under ``key`` on ``partition``, or None."""
        value: bytes | None = self._db(partition).get(key)
        return value

    def put(self, partition: int, key: bytes, value: bytes) -> None:
        """Set ``key`` on ``partition``."""
        self._db(partition).put(key, value)

    def delete(self, partition: int, key: bytes) -> None:
        """Remove ``key`` from ``partition`` (no error when absent)."""
        self._db(partition).delete(key)

    def write_batch(
        self,
        partition: int,
        puts: Iterable[tuple[bytes, bytes]],
        deletes: Iterable[bytes] = (),
    ) -> None:
        """Apply ``puts`` then ``deletes`` to ``partition`` atomically, in one ``WriteBatch``.

        All or nothing: when a key or value is not bytes, rocksdict refuses it (``KeyError`` for a
        key, ``ValueError`` for a value) before anything is written. Later changes win, so a key
        both put and deleted ends absent.
        """
        batch = WriteBatch(raw_mode=True)
        for key, value in puts:
            batch.put(key, value)
        for key in deletes:
            batch.delete(key)
        if batch.len():
            self._db(partition).write(batch)

    def replay(self, partition: int, records: Iterable[tuple[bytes, bytes | None]]) -> None:
        """Apply changelog records (key, value; None deletes) in their order, in one
        ``WriteBatch``: the last record of each key wins, as a compacted changelog keeps it. A
        key put, deleted and put again ends put (a member leaving and re-joining a group between
        checkpoints); each key is written once."""
        latest = dict(records)
        self.write_batch(
            partition,
            [(k, v) for k, v in latest.items() if v is not None],
            [k for k, v in latest.items() if v is None],
        )

    def scan(
        self, partition: int, prefix: bytes, *, after: bytes | None = None, limit: int = 500
    ) -> list[tuple[bytes, bytes]]:
        """Up to ``limit`` pairs of ``partition`` whose key starts with ``prefix``, in key
        order, strictly after ``after`` when given."""
        return scan_prefix(self._db(partition), prefix, after, limit)

    def scan_until(self, partition: int, bound: bytes, limit: int) -> list[tuple[bytes, bytes]]:
        """Up to ``limit`` pairs of ``partition`` from its first key, stopping before
        ``bound``."""
        return scan_below(self._db(partition), bound, limit)

    def close_partition(self, partition: int) -> None:
        """Close ``partition``'s RocksDB (a revoked partition), releasing its lock; its next use
        opens it again."""
        db = self._dbs.pop(partition, None)
        if db is not None:
            db.close()

    def exists(self, partition: int) -> bool:
        """True when ``partition``'s RocksDB is on disk (its ``CURRENT`` file is): a partition
        without one opens empty, whatever a checkpoint says it holds."""
        return (self.path(partition) / "CURRENT").is_file()

    def open(self, partition: int) -> None:
        """Open ``partition``'s RocksDB now; RocksDB's error (``Corruption: …``) when its files
        are damaged."""
        self._db(partition)

    def wipe(self, partition: int) -> None:
        """Close ``partition``'s RocksDB and delete its files (a damaged one, to be rebuilt)."""
        self.close_partition(partition)
        shutil.rmtree(self.path(partition), ignore_errors=True)

    def memory(self) -> dict[str, int]:
        """Bytes RocksDB holds in memory for the open partitions: ``memtables`` (written, not
        yet flushed to files), ``block_cache`` (the table's cache, shared by its partitions) and
        ``table_readers`` (the open files' indexes and filters)."""
        dbs = list(self._dbs.values())
        return {
            "memtables": sum(_property(db, "rocksdb.cur-size-all-mem-tables") for db in dbs),
            "block_cache": self._cache.get_usage(),
            "table_readers": sum(_property(db, "rocksdb.estimate-table-readers-mem") for db in dbs),
        }

    def close(self) -> None:
        """Close every open partition."""
        for partition in list(self._dbs):
            self.close_partition(partition)
