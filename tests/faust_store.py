"""A stand-in for faust's rocksdb ``Store`` as :class:`~smartgroups.worker.store.PartitionTable`
uses it: one rocksdict ``Rdict`` per open (assigned) partition, ``_db_for_partition`` opening
one on first use, and the offset key faust's recovery reads the changelog on from."""

from __future__ import annotations

from pathlib import Path

from rocksdict import Options, Rdict

OFFSET_KEY = b"__faust\0offset__"


class FaustStore:
    def __init__(self, root: Path) -> None:
        self._dbs: dict[int, Rdict] = {}
        self.root = root

    def partition_path(self, partition: int) -> Path:
        return self.root / f"p{partition}"

    def _db_for_partition(self, partition: int) -> Rdict:
        if partition not in self._dbs:
            path = str(self.partition_path(partition))
            self._dbs[partition] = Rdict(path, Options(raw_mode=True))
        return self._dbs[partition]

    def stamp(self, partition: int) -> int | None:
        """faust's ``persisted_offset``: where its recovery reads the changelog on from."""
        value = self._db_for_partition(partition).get(OFFSET_KEY)
        return None if value is None else int(value)

    def contents(self, partition: int) -> dict[bytes, bytes]:
        """The partition's RocksDB, faust's offset key left out."""
        db = self._db_for_partition(partition)
        return {bytes(k): bytes(v) for k, v in db.items() if k != OFFSET_KEY}

    def close(self) -> None:
        for db in self._dbs.values():
            db.close()
        self._dbs.clear()
