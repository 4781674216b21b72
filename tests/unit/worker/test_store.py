"""The faust table adapter: a partition's keys in order (faust's own offset key left out), and
writes that reach RocksDB at once and the changelog through the agent's flush, in order, each
delivery stamping the partition's changelog offset."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.errors import KafkaTimeoutError
from aiokafka.structs import RecordMetadata, TopicPartition
from rocksdict import Options, Rdict

from smartgroups.errors import ChangelogLost
from smartgroups.worker.store import ChangelogWriter, PartitionTable


class _Store:
    """faust's rocksdb ``Store`` as the adapter uses it: one Rdict per open partition."""

    def __init__(self, root: Path) -> None:
        self._dbs: dict[int, Rdict] = {}
        self.root = root
        self.stamped: list[tuple[TopicPartition, int]] = []

    def partition_path(self, partition: int) -> Path:
        return self.root / f"p{partition}"

    def _db_for_partition(self, partition: int) -> Rdict:
        if partition not in self._dbs:
            path = str(self.partition_path(partition))
            self._dbs[partition] = Rdict(path, Options(raw_mode=True))
        return self._dbs[partition]

    def set_persisted_offset(self, tp: TopicPartition, offset: int) -> None:
        self.stamped.append((tp, offset))
        self._db_for_partition(tp.partition).put(b"__faust\0offset__", str(offset).encode())


@pytest.fixture
def store(tmp_path: Path) -> Iterator[_Store]:
    store = _Store(tmp_path)
    yield store
    for db in store._dbs.values():
        db.close()


def _table(store: _Store, writer: ChangelogWriter | None = None) -> PartitionTable:
    changelog = SimpleNamespace(get_topic_name=lambda: "app-catalogs-changelog")
    faust_table = SimpleNamespace(data=store, changelog_topic=changelog)
    return PartitionTable(faust_table, writer if writer is not None else ChangelogWriter())


def _writing(store: _Store) -> tuple[PartitionTable, ChangelogWriter]:
    """A table over ``store`` and the writer that queues its changelog records."""
    writer = ChangelogWriter()
    return _table(store, writer), writer


class _Producer:
    """Records what is sent; delivers each record at the partition's next offset."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes | None, int]] = []
        self.ends: dict[int, int] = {}

    async def send(self, topic: str, key: bytes, value: bytes | None, partition: int) -> Any:
        self.sent.append((topic, key, value, partition))
        offset = self.ends[partition] = self.ends.get(partition, -1) + 1
        delivery: asyncio.Future[RecordMetadata] = asyncio.get_running_loop().create_future()
        delivery.set_result(
            RecordMetadata(topic, partition, TopicPartition(topic, partition), offset, 0, 0, 0)
        )
        return delivery


def test_scans_skip_faust_offset_key_only_not_keys_that_start_like_it(store: _Store) -> None:
    db = store._db_for_partition(0)
    for key in (b"__faust\0offset__", b"__faust", b"__faust:g1:00000000000000000001", b"a"):
        db.put(key, b"v")
    table = _table(store)
    # A space whose id starts with "__faust" keeps its document and its groups' keys.
    assert [k for k, _ in table.scan(0, b"__faust")] == [
        b"__faust", b"__faust:g1:00000000000000000001",
    ]  # fmt: skip
    assert [k for k, _ in table.scan_until(0, b"b", 10)] == [
        b"__faust", b"__faust:g1:00000000000000000001", b"a",
    ]  # fmt: skip


async def test_writes_are_read_at_once_and_reach_the_changelog_in_order_on_flush(
    store: _Store,
) -> None:
    table, writer = _writing(store)
    table.put(1, b"s1", b"v1")
    table.put(1, b"s1:g1", b"d1")
    table.put(2, b"s2", b"v2")
    table.delete(1, b"s1:g1")
    table.delete(1, b"never-written")  # nothing to delete: no tombstone
    # The service reads its own writes before the flush (they are in RocksDB already).
    assert table.get(1, b"s1") == b"v1" and table.get(1, b"s1:g1") is None
    assert table.get(2, b"s1") is None  # another partition's RocksDB
    assert len(writer) == 4

    producer = _Producer()
    await writer.flush(producer.send)
    await asyncio.sleep(0)  # the deliveries' callbacks run
    topic = "app-catalogs-changelog"
    assert producer.sent == [
        (topic, b"s1", b"v1", 1),
        (topic, b"s1:g1", b"d1", 1),
        (topic, b"s2", b"v2", 2),
        (topic, b"s1:g1", None, 1),
    ]
    assert len(writer) == 0
    # faust's recovery reads each partition's changelog on from its stamped offset.
    assert store.stamped[-1] == (TopicPartition(topic, 1), 2)
    assert (TopicPartition(topic, 2), 0) in store.stamped
    assert store._db_for_partition(1).get(b"__faust\0offset__") == b"2"


async def test_a_delivery_to_a_partition_closed_meanwhile_stamps_nothing(store: _Store) -> None:
    table, writer = _writing(store)
    table.put(3, b"k", b"v")
    store._dbs.pop(3).close()  # revoked: faust closed its RocksDB
    await writer.flush(_Producer().send)
    await asyncio.sleep(0)
    assert store.stamped == [] and 3 not in store._dbs  # not reopened by the stamp


async def test_a_changelog_record_not_delivered_is_counted_and_stops_the_next_flush(
    store: _Store,
) -> None:
    table, writer = _writing(store)
    table.put(0, b"k", b"v")

    async def failing(topic: str, key: bytes, value: bytes | None, partition: int) -> Any:
        delivery: asyncio.Future[RecordMetadata] = asyncio.get_running_loop().create_future()
        delivery.set_exception(KafkaTimeoutError("no broker"))
        return delivery

    await writer.flush(failing)
    await asyncio.sleep(0)
    assert writer.stats["changelog.failed"] == 1 and store.stamped == []
    with pytest.raises(ChangelogLost, match="not delivered"):
        await writer.flush(_Producer().send)  # even with nothing queued: the worker stops
    table.put(0, b"k2", b"v2")
    producer = _Producer()
    with pytest.raises(ChangelogLost, match="not delivered"):
        await writer.flush(producer.send)
    assert producer.sent == []  # nothing more is sent
