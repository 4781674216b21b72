"""The faust table adapter: a partition's keys in order (faust's own offset key left out);
writes read at once, sent to the changelog through the agent's flush in order, and applied to
the partition's RocksDB only once delivered, in write order, with the offset faust's recovery
reads on from: after a crash at any moment, RocksDB holds a prefix of the writes and the
changelog's replay past its stamp makes it exactly the changelog."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.errors import KafkaTimeoutError
from aiokafka.structs import RecordMetadata, TopicPartition
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.faust_store import OFFSET_KEY, FaustStore

from smartgroups.errors import ChangelogLost
from smartgroups.worker.store import ChangelogWriter, PartitionTable

TOPIC = "app-catalogs-changelog"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[FaustStore]:
    store = FaustStore(tmp_path)
    yield store
    store.close()


def _table(store: FaustStore, writer: ChangelogWriter | None = None) -> PartitionTable:
    changelog = SimpleNamespace(get_topic_name=lambda: TOPIC)
    faust_table = SimpleNamespace(data=store, changelog_topic=changelog)
    return PartitionTable(faust_table, writer if writer is not None else ChangelogWriter())


def _writing(store: FaustStore) -> tuple[PartitionTable, ChangelogWriter]:
    """A table over ``store`` and the writer that queues its changelog records; partitions 0
    to 2 are assigned (faust opens their RocksDB)."""
    for partition in range(3):
        store._db_for_partition(partition)
    writer = ChangelogWriter()
    return _table(store, writer), writer


async def _callbacks() -> None:
    """Let the deliveries' callbacks run, and the settle they schedule."""
    await asyncio.sleep(0)
    await asyncio.sleep(0)


class _Producer:
    """Records what is sent, at each partition's next offset; delivers when the test says so
    (``deliver``), or at once (``at_once``)."""

    def __init__(self, *, at_once: bool = False) -> None:
        self.sent: list[tuple[str, bytes, bytes | None, int]] = []
        self.deliveries: list[tuple[asyncio.Future[RecordMetadata], RecordMetadata]] = []
        self.ends: dict[int, int] = {}
        self.at_once = at_once

    async def send(self, topic: str, key: bytes, value: bytes | None, partition: int) -> Any:
        self.sent.append((topic, key, value, partition))
        offset = self.ends[partition] = self.ends.get(partition, -1) + 1
        delivery: asyncio.Future[RecordMetadata] = asyncio.get_running_loop().create_future()
        metadata = RecordMetadata(topic, partition, TopicPartition(topic, partition), offset,
                                  0, 0, 0)  # fmt: skip
        self.deliveries.append((delivery, metadata))
        if self.at_once:
            delivery.set_result(metadata)
        return delivery

    async def deliver(self, *indexes: int) -> None:
        """Deliver the records sent ``indexes``-th (0 is the first), then let callbacks run."""
        for index in indexes:
            delivery, metadata = self.deliveries[index]
            delivery.set_result(metadata)
        await _callbacks()


def test_scans_skip_faust_offset_key_only_not_keys_that_start_like_it(store: FaustStore) -> None:
    db = store._db_for_partition(0)
    for key in (OFFSET_KEY, b"__faust", b"__faust:g1:00000000000000000001", b"a"):
        db.put(key, b"v")
    table = _table(store)
    # A space whose id starts with "__faust" keeps its document and its groups' keys.
    assert [k for k, _ in table.scan(0, b"__faust")] == [
        b"__faust", b"__faust:g1:00000000000000000001",
    ]  # fmt: skip
    assert [k for k, _ in table.scan_until(0, b"b", 10)] == [
        b"__faust", b"__faust:g1:00000000000000000001", b"a",
    ]  # fmt: skip


async def test_writes_are_read_at_once_and_reach_rocksdb_only_once_delivered(
    store: FaustStore,
) -> None:
    store._db_for_partition(1).put(b"s1:old", b"o")
    table, writer = _writing(store)
    table.put(1, b"s1", b"v1")
    table.put(1, b"s1:g1", b"d1")
    table.put(2, b"s2", b"v2")
    table.delete(1, b"s1:g1")
    table.delete(1, b"s1:old")
    table.delete(1, b"never-written")  # nothing to delete: no tombstone
    # The service reads its own writes, scans included, before anything is delivered.
    assert table.get(1, b"s1") == b"v1" and table.get(1, b"s1:g1") is None
    assert table.scan(1, b"s1") == [(b"s1", b"v1")]
    assert table.get(2, b"s1") is None  # another partition's
    assert len(writer) == 5 and table.unsettled(1) == 4

    producer = _Producer()
    await writer.flush(producer.send)
    assert producer.sent == [
        (TOPIC, b"s1", b"v1", 1),
        (TOPIC, b"s1:g1", b"d1", 1),
        (TOPIC, b"s2", b"v2", 2),
        (TOPIC, b"s1:g1", None, 1),
        (TOPIC, b"s1:old", None, 1),
    ]
    assert len(writer) == 0
    # Sent, not delivered: RocksDB is as it was, reads are not.
    assert store.contents(1) == {b"s1:old": b"o"} and store.stamp(1) is None
    assert table.scan(1, b"s1") == [(b"s1", b"v1")]

    await producer.deliver(0, 1)  # partition 1's first two records (offsets 0 and 1)
    assert store.contents(1) == {b"s1": b"v1", b"s1:g1": b"d1", b"s1:old": b"o"}
    assert store.stamp(1) == 1 and table.unsettled(1) == 2
    assert table.get(1, b"s1:g1") is None  # its deletion still waits, and reads see it

    await producer.deliver(2, 3, 4)
    assert store.contents(1) == {b"s1": b"v1"} and store.stamp(1) == 3
    assert store.contents(2) == {b"s2": b"v2"} and store.stamp(2) == 0
    assert table.unsettled(1) == table.unsettled(2) == 0
    assert table.scan(1, b"") == [(b"s1", b"v1")]


async def test_a_write_delivered_before_an_earlier_one_waits_for_it(store: FaustStore) -> None:
    table, writer = _writing(store)
    table.put(0, b"doc", b"v1")
    table.put(0, b"g:2", b"d2")
    table.put(0, b"doc", b"v2")
    producer = _Producer()
    await writer.flush(producer.send)
    await producer.deliver(2, 1)  # the later records first
    assert store.contents(0) == {} and store.stamp(0) is None
    assert table.get(0, b"doc") == b"v2"
    await producer.deliver(0)  # then all three, in write order, in one batch
    assert store.contents(0) == {b"doc": b"v2", b"g:2": b"d2"} and store.stamp(0) == 2


async def test_the_records_of_one_delivery_reach_rocksdb_in_one_write(store: FaustStore) -> None:
    table, writer = _writing(store)
    writes: list[int] = []

    class Counting:
        def __init__(self, db: Any) -> None:
            self.db = db

        def write(self, batch: Any) -> None:
            writes.append(batch.len())
            self.db.write(batch)

    real = store._dbs[0]
    store._dbs[0] = Counting(real)  # type: ignore[assignment]
    for i in range(5):  # a group command's keys
        table.put(0, b"k%d" % i, b"v")
    producer = _Producer()
    await writer.flush(producer.send)
    await producer.deliver(0, 1, 2, 3, 4)  # one produce response
    assert writes == [5 + 1]  # and the offset
    store._dbs[0] = real


async def test_a_later_write_of_a_key_stays_over_an_earlier_one_delivered(
    store: FaustStore,
) -> None:
    table, writer = _writing(store)
    producer = _Producer()
    table.put(0, b"doc", b"v1")
    await writer.flush(producer.send)
    table.put(0, b"doc", b"v2")
    table.delete(0, b"doc")
    await writer.flush(producer.send)
    await producer.deliver(0)
    assert store.contents(0) == {b"doc": b"v1"}
    assert table.get(0, b"doc") is None and table.scan(0, b"") == []


async def test_a_key_written_back_to_an_earlier_value_reads_its_last_write(
    store: FaustStore,
) -> None:
    """A key put, deleted and put again (a definition created, deleted, created again) reads
    as its last write while only the earlier writes are delivered; a later delete then sends
    its tombstone (a review found the key read as deleted, and the tombstone skipped)."""
    table, writer = _writing(store)
    producer = _Producer()
    table.put(0, b"k", b"A")
    table.delete(0, b"k")
    await writer.flush(producer.send)
    table.put(0, b"k", b"A")
    await writer.flush(producer.send)
    await producer.deliver(0, 1)  # the first command's records; the second's waits
    assert store.contents(0) == {}
    assert table.get(0, b"k") == b"A" and table.scan(0, b"") == [(b"k", b"A")]
    table.delete(0, b"k")
    await writer.flush(producer.send)
    assert [value for _, _, value, _ in producer.sent] == [b"A", None, b"A", None]
    await producer.deliver(2, 3)
    assert store.contents(0) == {} and table.get(0, b"k") is None


async def test_a_cancelled_changelog_record_counts_as_lost(store: FaustStore) -> None:
    table, writer = _writing(store)
    table.put(0, b"k", b"v")

    async def cancelling(topic: str, key: bytes, value: bytes | None, partition: int) -> Any:
        delivery: asyncio.Future[RecordMetadata] = asyncio.get_running_loop().create_future()
        delivery.cancel()
        return delivery

    await writer.flush(cancelling)
    await _callbacks()
    assert writer.stats["changelog.failed"] == 1
    with pytest.raises(ChangelogLost):
        await writer.flush(_Producer().send)


async def test_a_delivery_to_a_partition_closed_meanwhile_drops_its_writes(
    store: FaustStore,
) -> None:
    table, writer = _writing(store)
    store._db_for_partition(3)  # assigned
    table.put(3, b"k", b"v")
    store._dbs.pop(3).close()  # revoked: faust closed its RocksDB
    producer = _Producer(at_once=True)
    await writer.flush(producer.send)
    await _callbacks()
    assert 3 not in store._dbs and table.unsettled(3) == 0  # not reopened by the delivery
    # Its next owner replays the changelog past the stamp, which this record is.
    assert store.stamp(3) is None and store.contents(3) == {}


async def test_a_changelog_record_not_delivered_is_counted_and_stops_the_next_flush(
    store: FaustStore,
) -> None:
    table, writer = _writing(store)
    table.put(0, b"k", b"v")

    async def failing(topic: str, key: bytes, value: bytes | None, partition: int) -> Any:
        delivery: asyncio.Future[RecordMetadata] = asyncio.get_running_loop().create_future()
        delivery.set_exception(KafkaTimeoutError("no broker"))
        return delivery

    await writer.flush(failing)
    await asyncio.sleep(0)
    assert writer.stats["changelog.failed"] == 1 and store.stamp(0) is None
    with pytest.raises(ChangelogLost, match="not delivered"):
        await writer.flush(_Producer().send)  # even with nothing queued: the worker stops
    table.put(0, b"k2", b"v2")
    producer = _Producer()
    with pytest.raises(ChangelogLost, match="not delivered"):
        await writer.flush(producer.send)
    assert producer.sent == []  # nothing more is sent
    assert store.contents(0) == {}  # the lost write never reaches RocksDB


async def test_writes_rocksdb_refuses_are_lost_and_stop_the_next_flush(store: FaustStore) -> None:
    table, writer = _writing(store)
    table.put(0, b"k", b"v")
    producer = _Producer()
    await writer.flush(producer.send)
    store._dbs[0].close()  # closed under faust's feet: the write raises
    await producer.deliver(0)
    assert writer.stats["changelog.failed"] == 1 and table.unsettled(0) == 1
    with pytest.raises(ChangelogLost):
        await writer.flush(producer.send)
    store._dbs.pop(0)


_key = st.sampled_from([b"doc", b"g:1", b"g:2", b"r:1", b"r:2"])
_write = st.tuples(_key, st.none() | st.binary(max_size=3))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    writes=st.lists(_write, min_size=1, max_size=25),
    flushes=st.sets(st.integers(0, 25)),
    order=st.randoms(use_true_random=False),
    delivered=st.integers(0, 25),
)
async def test_after_a_crash_rocksdb_is_a_prefix_of_the_writes_and_the_replay_the_changelog(
    tmp_path_factory: pytest.TempPathFactory,
    writes: list[tuple[bytes, bytes | None]],
    flushes: set[int],
    order: Any,
    delivered: int,
) -> None:
    """Writes flushed at random points, a random subset of the records delivered in a random
    order, then a crash: RocksDB holds exactly the writes up to the first record not delivered,
    stamped with its last offset, and faust's replay of the changelog (every delivered record
    past the stamp) makes it the state of the delivered prefix; reads before the crash saw
    every write."""
    store = FaustStore(tmp_path_factory.mktemp("rocks"))
    try:
        table, writer = _writing(store)
        producer = _Producer()
        model: dict[bytes, bytes] = {}
        for i, (key, value) in enumerate(writes):
            if value is None:
                table.delete(0, key)
                model.pop(key, None)
            else:
                table.put(0, key, value)
                model[key] = value
            if i in flushes:
                await writer.flush(producer.send)
        await writer.flush(producer.send)
        assert dict(table.scan(0, b"")) == model
        sent = producer.sent  # the changelog, in write order (a deletion of nothing is not sent)
        chosen = order.sample(range(len(sent)), min(delivered, len(sent)))
        await producer.deliver(*chosen)
        # Reads still see every write, whatever part of them settled.
        assert dict(table.scan(0, b"")) == model
        assert all(table.get(0, key) == model.get(key) for key, _ in writes)
        # The crash: what RocksDB holds now is what the next start finds.
        prefix = next((i for i in range(len(sent)) if i not in chosen), len(sent))

        def state(records: list[tuple[str, bytes, bytes | None, int]]) -> dict[bytes, bytes]:
            result: dict[bytes, bytes] = {}
            for _, key, value, _ in records:
                if value is None:
                    result.pop(key, None)
                else:
                    result[key] = value
            return result

        assert store.contents(0) == state(sent[:prefix])
        assert store.stamp(0) == (prefix - 1 if prefix else None)
        # faust's recovery: the broker's changelog holds the delivered records; those past the
        # stamp are applied over RocksDB. (Records delivered after a gap stay in the changelog:
        # the producer's retries keep a partition's order, so a gap ends what was delivered.)
        db = store._db_for_partition(0)
        for offset in sorted(chosen):
            if offset >= prefix:
                _, key, value, _ = sent[offset]
                if value is None:
                    db.delete(key)
                else:
                    db.put(key, value)
        assert store.contents(0) == state([sent[i] for i in sorted(chosen)])
    finally:
        store.close()
