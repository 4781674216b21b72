"""The one contract of :class:`~smartgroups.service.ports.Table`, run against every table.

Every test taking ``table`` (or ``make_table``) runs on
:class:`~smartgroups.service.memory.MemoryTable`; on :class:`~smartgroups.worker.rocks.RocksTable`
in a tmp directory; on :class:`~smartgroups.worker.batch_table.BatchTable` over one, three ways:
``batch`` (every write stays in the overlay), ``batch-flushed`` (each write is flushed to RocksDB
at once) and ``batch-sealed`` (sealed and flushed as the pipelined checkpoint does); and on the
faust tables' :class:`~smartgroups.worker.store.PartitionTable` over a stand-in for faust's
store, two ways: ``faust`` (no changelog record is delivered: every write stays in the overlay)
and ``faust-settled`` (each is delivered at once: reads go to RocksDB). So the overlays and
their flush paths all answer like the others (the eventsourcing project's
``tests/persistence.py`` pattern): the services are tested on the in-memory twin, and this
suite is what makes that mean something for the worker's RocksDB.
Keys are ordered as unsigned bytes (Python's ``bytes`` order, RocksDB's default comparator). The
property test at the end checks random sequences of writes and reads against a plain ``dict``
model.

The tests after it hold for :class:`RocksTable` only: what survives a close and a reopen, the
release of a revoked partition, and ``write_batch``; then :class:`BatchTable`'s own: writes reach
RocksDB only on ``flush``, ``pending`` is exact, ``discard`` restores the base's view, and a
property test mixes keys in the base and in the overlay, with flushes at random points.
"""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
import rocksdict
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.faust_store import FaustStore

from smartgroups.service.memory import MemoryTable
from smartgroups.service.ports import Table
from smartgroups.worker.batch_table import BatchTable
from smartgroups.worker.edge import blames_record
from smartgroups.worker.rocks import RocksTable
from smartgroups.worker.store import ChangelogWriter, PartitionTable

MakeTable = Callable[[], Table]


class AfterEachWrite:
    """A table mixin: ``after_write(partition)`` once each ``put`` or ``delete`` is done (how the
    variants below move every write down a layer at once)."""

    def put(self, partition: int, key: bytes, value: bytes) -> None:
        super().put(partition, key, value)
        self.after_write(partition)

    def delete(self, partition: int, key: bytes) -> None:
        super().delete(partition, key)
        self.after_write(partition)

    def after_write(self, partition: int) -> None:
        raise NotImplementedError


class FlushingTable(AfterEachWrite, BatchTable):
    """A :class:`BatchTable` that flushes each write at once: every read goes through RocksDB."""

    def after_write(self, partition: int) -> None:
        self.flush(partition)


class SealingTable(AfterEachWrite, BatchTable):
    """A :class:`BatchTable` that seals each write at once and flushes the sealed changes
    before the next seal, as the pipelined checkpoint does: reads merge all three layers."""

    def after_write(self, partition: int) -> None:
        for sealed in self.sealed():
            self.flush_sealed(sealed)
        self.seal()


class _Delivered:
    """A producer's delivery future, resolved: the record's offset (its loop runs what is
    scheduled at once)."""

    def __init__(self, offset: int) -> None:
        self.offset = offset

    def get_loop(self) -> SimpleNamespace:
        return SimpleNamespace(call_soon=lambda callback, *args: callback(*args))

    def cancelled(self) -> bool:
        return False

    def exception(self) -> None:
        return None

    def result(self) -> SimpleNamespace:
        return SimpleNamespace(offset=self.offset)


class SettlingTable(AfterEachWrite, PartitionTable):
    """A faust table whose every write is delivered at once: it reads from RocksDB."""

    offsets = itertools.count()

    def after_write(self, partition: int) -> None:
        for table, write in self._writer.take():
            table.delivered(write, _Delivered(next(self.offsets)))


TABLES = ["memory", "rocks", "batch", "batch-flushed", "batch-sealed", "faust", "faust-settled"]


@pytest.fixture(params=TABLES)
def make_table(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MakeTable]:
    """Makes fresh, empty tables of one kind; RocksDB ones each in a new directory."""
    opened: list[RocksTable | FaustStore] = []
    count = itertools.count()

    def make() -> Table:
        if request.param == "memory":
            return MemoryTable()
        if request.param.startswith("faust"):
            store = FaustStore(tmp_path / f"faust{next(count)}")
            opened.append(store)
            for partition in range(3):  # assigned: faust opened their RocksDB
                store._db_for_partition(partition)
            # "faust": nothing is delivered, every write stays in the overlay.
            kind = PartitionTable if request.param == "faust" else SettlingTable
            changelog = SimpleNamespace(get_topic_name=lambda: "app-catalogs-changelog")
            return kind(SimpleNamespace(data=store, changelog_topic=changelog), ChangelogWriter())
        table = RocksTable(tmp_path / f"table{next(count)}", "members")
        opened.append(table)
        if request.param == "batch":
            return BatchTable(table)
        if request.param == "batch-flushed":
            return FlushingTable(table)
        if request.param == "batch-sealed":
            return SealingTable(table)
        return table

    yield make
    for table in opened:
        table.close()


@pytest.fixture
def table(make_table: MakeTable) -> Table:
    return make_table()


def fill(table: Table, partition: int, *keys: bytes) -> None:
    """Put each key with a value telling it apart (``v`` + the key)."""
    for key in keys:
        table.put(partition, key, b"v" + key)


def keys_of(pairs: list[tuple[bytes, bytes]]) -> list[bytes]:
    return [key for key, _ in pairs]


# --- get, put, delete ------------------------------------------------------------------------


def test_get_of_a_missing_key_is_none(table: Table) -> None:
    assert table.get(0, b"nobody") is None  # on a partition never touched
    table.put(0, b"somebody", b"1")
    assert table.get(0, b"nobody") is None
    assert table.get(0, b"somebod") is None  # a prefix of a key is not the key


def test_put_then_get_and_overwrite(table: Table) -> None:
    table.put(0, b"m:1", b"first")
    assert table.get(0, b"m:1") == b"first"
    table.put(0, b"m:1", b"second")
    assert table.get(0, b"m:1") == b"second"
    assert table.scan(0, b"m:") == [(b"m:1", b"second")]  # one key, not two


def test_the_empty_value_and_the_empty_key_are_values_like_any_other(table: Table) -> None:
    table.put(0, b"m:1", b"")
    assert table.get(0, b"m:1") == b""  # stored, not absent
    table.put(0, b"", b"root")
    assert table.get(0, b"") == b"root"
    assert table.scan(0, b"") == [(b"", b"root"), (b"m:1", b"")]


def test_delete_removes_and_deleting_a_missing_key_is_no_error(table: Table) -> None:
    fill(table, 0, b"a", b"b")
    table.delete(0, b"a")
    assert table.get(0, b"a") is None
    assert keys_of(table.scan(0, b"")) == [b"b"]
    table.delete(0, b"a")  # again
    table.delete(0, b"never")
    table.delete(7, b"never")  # on a partition never touched
    table.put(0, b"a", b"back")
    assert table.scan(0, b"") == [(b"a", b"back"), (b"b", b"vb")]


def test_partitions_are_isolated(table: Table) -> None:
    table.put(0, b"k", b"zero")
    table.put(1, b"k", b"one")
    assert (table.get(0, b"k"), table.get(1, b"k")) == (b"zero", b"one")
    table.delete(0, b"k")
    assert (table.get(0, b"k"), table.get(1, b"k")) == (None, b"one")
    fill(table, 1, b"j", b"l")
    assert keys_of(table.scan(0, b"")) == []
    assert keys_of(table.scan_until(0, b"\xff", 10)) == []
    assert keys_of(table.scan(1, b"")) == [b"j", b"k", b"l"]
    assert table.get(2, b"k") is None


# --- scan ------------------------------------------------------------------------------------

# "g:" and its neighbours in unsigned byte order: 0x80 and 0xff sort after 0x7f (a signed
# comparator would put them first), b"g;" is the next prefix, b"g" and b"f\xff" come before.
NEIGHBOURS = [b"f\xff", b"g", b"g:", b"g:\x00", b"g:a", b"g:a\x00", b"g:\x7f", b"g:\x80"]
NEIGHBOURS += [b"g:\xff", b"g:\xff\xff", b"g;", b"h"]
IN_G = [b"g:", b"g:\x00", b"g:a", b"g:a\x00", b"g:\x7f", b"g:\x80", b"g:\xff", b"g:\xff\xff"]


def test_scan_returns_the_keys_with_the_prefix_in_unsigned_byte_order(table: Table) -> None:
    fill(table, 0, *reversed(NEIGHBOURS))
    pairs = table.scan(0, b"g:")
    assert keys_of(pairs) == IN_G
    assert pairs[2] == (b"g:a", b"vg:a")  # with their values


def test_scan_with_the_empty_prefix_returns_every_key(table: Table) -> None:
    fill(table, 0, *reversed(NEIGHBOURS))
    assert keys_of(table.scan(0, b"")) == sorted(NEIGHBOURS)


def test_a_prefix_that_is_a_prefix_of_another(table: Table) -> None:
    fill(table, 0, b"ab", b"ab\x00", b"abc", b"abc:1", b"abd", b"ac", b"a")
    assert keys_of(table.scan(0, b"ab")) == [b"ab", b"ab\x00", b"abc", b"abc:1", b"abd"]
    assert keys_of(table.scan(0, b"abc")) == [b"abc", b"abc:1"]
    assert keys_of(table.scan(0, b"abc:")) == [b"abc:1"]
    assert keys_of(table.scan(0, b"abe")) == []


def test_a_prefix_of_0xff_bytes_has_no_end_to_overflow(table: Table) -> None:
    fill(table, 0, b"\xfe\xff", b"\xff", b"\xff\x00", b"\xff\xff", b"\xff\xff\xff")
    assert keys_of(table.scan(0, b"\xff")) == [b"\xff", b"\xff\x00", b"\xff\xff", b"\xff\xff\xff"]
    assert keys_of(table.scan(0, b"\xff\xff")) == [b"\xff\xff", b"\xff\xff\xff"]
    assert keys_of(table.scan(0, b"\x00")) == []


def test_after_is_strictly_after(table: Table) -> None:
    fill(table, 0, *NEIGHBOURS)
    assert keys_of(table.scan(0, b"g:", after=b"g:a")) == IN_G[3:]  # b"g:a\x00" is after b"g:a"
    assert keys_of(table.scan(0, b"g:", after=b"g:")) == IN_G[1:]
    assert keys_of(table.scan(0, b"", after=b"")) == NEIGHBOURS  # "" is before every other key
    table.put(0, b"", b"root")
    assert keys_of(table.scan(0, b"", after=b"")) == NEIGHBOURS  # ... and never after itself


def test_after_a_key_not_in_the_table(table: Table) -> None:
    fill(table, 0, *NEIGHBOURS)
    assert keys_of(table.scan(0, b"g:", after=b"g:b")) == IN_G[4:]  # between g:a\x00 and g:\x7f
    assert keys_of(table.scan(0, b"g:", after=b"a")) == IN_G  # before the prefix: no effect
    assert keys_of(table.scan(0, b"g:", after=b"g")) == IN_G
    assert keys_of(table.scan(0, b"g:", after=b"g:\xff\xff\xff")) == []  # beyond the last one
    assert keys_of(table.scan(0, b"g:", after=b"g;")) == []  # beyond the prefix
    assert keys_of(table.scan(0, b"", after=b"z")) == []  # beyond every key


def test_limit_cuts_and_after_pages_on(table: Table) -> None:
    fill(table, 0, *NEIGHBOURS)
    first = table.scan(0, b"g:", limit=3)
    assert keys_of(first) == IN_G[:3]
    second = table.scan(0, b"g:", after=first[-1][0], limit=3)
    third = table.scan(0, b"g:", after=second[-1][0], limit=3)
    assert keys_of(second + third) == IN_G[3:]
    assert len(third) == 2
    assert table.scan(0, b"g:", after=third[-1][0], limit=3) == []
    assert keys_of(table.scan(0, b"g:", limit=100)) == IN_G


def test_the_default_limit_is_500(table: Table) -> None:
    fill(table, 0, *(b"k%04d" % i for i in range(501)))
    assert keys_of(table.scan(0, b"k")) == [b"k%04d" % i for i in range(500)]


@pytest.mark.parametrize("limit", [0, -1, -5])
def test_a_limit_below_one_returns_nothing(table: Table, limit: int) -> None:
    # "Up to limit pairs": none when limit < 1, by either scan.
    fill(table, 0, b"a", b"b", b"c")
    assert table.scan(0, b"", limit=limit) == []
    assert table.scan_until(0, b"z", limit) == []


# --- scan_until ------------------------------------------------------------------------------


def test_scan_until_stops_before_the_bound(table: Table) -> None:
    fill(table, 0, *NEIGHBOURS)
    assert keys_of(table.scan_until(0, b"g:a", 100)) == [b"f\xff", b"g", b"g:", b"g:\x00"]
    assert keys_of(table.scan_until(0, b"g:b", 100)) == NEIGHBOURS[:6]  # a bound not in the table
    assert keys_of(table.scan_until(0, b"g:\x80", 100)) == NEIGHBOURS[:7]  # 0x7f < 0x80
    assert keys_of(table.scan_until(0, b"", 100)) == []  # nothing is before ""
    assert keys_of(table.scan_until(0, b"f\xff", 100)) == []
    assert keys_of(table.scan_until(0, b"\xff", 100)) == NEIGHBOURS  # beyond every key
    assert table.scan_until(0, b"g:", 100)[0] == (b"f\xff", b"vf\xff")


def test_scan_until_respects_limit(table: Table) -> None:
    fill(table, 0, *NEIGHBOURS)
    assert keys_of(table.scan_until(0, b"\xff", 3)) == NEIGHBOURS[:3]
    assert keys_of(table.scan_until(0, b"g:", 5)) == NEIGHBOURS[:2]  # the bound comes first
    assert keys_of(table.scan_until(0, b"g:\x00", 3)) == NEIGHBOURS[:3]  # both at once
    table.delete(0, b"f\xff")  # a due index drained from the front
    assert keys_of(table.scan_until(0, b"\xff", 2)) == [b"g", b"g:"]


# --- random sequences against a dict model -------------------------------------------------

KEYS = st.binary(max_size=3).map(lambda b: bytes(b"\x00\x01a\x7f\x80\xff"[x % 6] for x in b))
"""Short keys over a few bytes, low and high: many equal keys and many prefixes of each other."""
PARTITIONS = st.integers(0, 1)
LIMITS = st.integers(0, 6)
OPS = st.one_of(
    st.tuples(st.just("put"), PARTITIONS, KEYS, st.binary(max_size=2)),
    st.tuples(st.just("delete"), PARTITIONS, KEYS),
    st.tuples(st.just("get"), PARTITIONS, KEYS),
    st.tuples(st.just("scan"), PARTITIONS, KEYS, st.none() | KEYS, LIMITS),
    st.tuples(st.just("scan_until"), PARTITIONS, KEYS, LIMITS),
    st.tuples(st.just("close"), PARTITIONS),
    st.tuples(st.just("seal"), PARTITIONS),
)


class Model:
    """The contract in a few lines: a dict per partition, sorted when read."""

    def __init__(self) -> None:
        self.data: dict[int, dict[bytes, bytes]] = {0: {}, 1: {}}

    def scan(
        self, partition: int, prefix: bytes, after: bytes | None, limit: int
    ) -> list[tuple[bytes, bytes]]:
        items = sorted(self.data[partition].items())
        found = [(k, v) for k, v in items if k.startswith(prefix) and (after is None or k > after)]
        return found[: max(limit, 0)]

    def scan_until(self, partition: int, bound: bytes, limit: int) -> list[tuple[bytes, bytes]]:
        items = sorted(self.data[partition].items())
        return [(k, v) for k, v in items if k < bound][: max(limit, 0)]


@settings(
    max_examples=150,
    deadline=None,
    # make_table is function-scoped, but each example makes its own fresh table with it
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(ops=st.lists(OPS, max_size=40))
def test_random_operations_answer_like_a_dict(
    make_table: MakeTable, ops: list[tuple[object, ...]]
) -> None:
    table, model = make_table(), Model()
    for op in ops:
        match op:
            case ("put", p, key, value):
                table.put(p, key, value)
                model.data[p][key] = value
            case ("delete", p, key):
                table.delete(p, key)
                model.data[p].pop(key, None)
            case ("get", p, key):
                assert table.get(p, key) == model.data[p].get(key), op
            case ("scan", p, prefix, after, limit):
                got = table.scan(p, prefix, after=after, limit=limit)
                assert got == model.scan(p, prefix, after, limit), op
            case ("scan_until", p, bound, limit):
                assert table.scan_until(p, bound, limit) == model.scan_until(p, bound, limit), op
            case ("seal", p):  # a checkpoint: the last one's changes flushed, these sealed
                if isinstance(table, BatchTable):
                    for sealed in table.sealed():
                        table.flush_sealed(sealed)
                    table.seal()
            case ("close", p):  # a revoked partition, assigned again (RocksDB only)
                if isinstance(table, BatchTable):
                    table.flush(p)  # its batch committed first (close drops what is pending)
                if isinstance(table, RocksTable | BatchTable):
                    table.close_partition(p)
    for p in (0, 1):
        assert table.scan(p, b"", limit=1000) == model.scan(p, b"", None, 1000)


# --- RocksTable only -------------------------------------------------------------------------


def test_rocks_values_persist_across_close_and_reopen(tmp_path: Path) -> None:
    table = RocksTable(tmp_path, "members")
    fill(table, 0, b"a", b"b", b"c")
    table.put(1, b"a", b"one")
    table.delete(0, b"b")
    table.close()

    again = RocksTable(tmp_path, "members")
    try:
        assert again.scan(0, b"") == [(b"a", b"va"), (b"c", b"vc")]
        assert again.get(0, b"b") is None  # the delete persisted too
        assert again.get(1, b"a") == b"one"
        other = RocksTable(tmp_path, "groups")
        assert other.get(0, b"a") is None  # another table's files
        other.close()
    finally:
        again.close()


def test_rocks_keeps_one_database_per_partition_named_after_the_table(tmp_path: Path) -> None:
    table = RocksTable(tmp_path / "tables", "members")
    table.put(0, b"k", b"v")
    table.put(3, b"k", b"v")
    table.close()
    assert sorted(p.name for p in (tmp_path / "tables").iterdir()) == [
        "members-0.db",
        "members-3.db",
    ]
    assert table.path(3) == tmp_path / "tables" / "members-3.db"


def test_rocks_memory_counts_the_open_partitions_memtables(tmp_path: Path) -> None:
    """What ``/stats/`` shows as ``rocksdb.TABLE.memtables``: it grows with what is written and
    not yet flushed, over every open partition, and a closed partition no longer counts."""
    table = RocksTable(tmp_path, "members")
    assert table.memory() == {"memtables": 0, "block_cache": 0, "table_readers": 0}
    table.put(0, b"k", b"")
    empty = table.memory()["memtables"]
    for i in range(1000):
        table.put(0, b"a%04d" % i, b"x" * 1000)
    one = table.memory()["memtables"]
    assert one >= empty + 1000 * 1000
    for i in range(1000):
        table.put(1, b"a%04d" % i, b"x" * 1000)
    assert table.memory()["memtables"] >= one + 1000 * 1000
    table.close_partition(1)
    assert table.memory()["memtables"] == one
    table.close()


def test_rocks_close_partition_releases_only_that_partition(tmp_path: Path) -> None:
    table = RocksTable(tmp_path, "members")
    table.put(0, b"k", b"zero")
    table.put(1, b"k", b"one")
    table.close_partition(0)
    table.close_partition(0)  # twice, or never opened: nothing to do
    table.close_partition(5)

    # Another handle (the partition's next owner) can now open partition 0, not partition 1.
    options = rocksdict.Options(raw_mode=True)
    other = rocksdict.Rdict(str(table.path(0)), options)
    assert other.get(b"k") == b"zero"
    other.close()
    with pytest.raises(Exception, match="lock"):
        rocksdict.Rdict(str(table.path(1)), options)

    assert table.get(0, b"k") == b"zero"  # opened again on its next use
    table.close()
    table.close()


def test_rocks_write_batch_applies_puts_then_deletes(tmp_path: Path) -> None:
    table = RocksTable(tmp_path, "members")
    fill(table, 0, b"old", b"gone")
    table.write_batch(0, [(b"a", b"1"), (b"b", b"2"), (b"old", b"new"), (b"both", b"x")])
    table.write_batch(0, [], [b"gone", b"both", b"missing"])
    table.write_batch(0, [(b"c", b"3"), (b"twice", b"x")], [b"twice"])  # a key put and deleted
    table.write_batch(0, [])  # empty: nothing happens
    expected = [(b"a", b"1"), (b"b", b"2"), (b"c", b"3"), (b"old", b"new")]
    assert table.scan(0, b"") == expected
    assert table.scan(1, b"") == []  # on its partition only
    table.close()
    again = RocksTable(tmp_path, "members")
    assert again.scan(0, b"") == expected  # durable, like single writes
    again.close()


def test_rocks_replay_applies_changelog_records_in_order_the_last_one_of_a_key_wins(
    tmp_path: Path,
) -> None:
    table = RocksTable(tmp_path, "index")
    fill(table, 0, b"left", b"stays")
    table.replay(
        0,
        [
            (b"rejoined", b"1"), (b"left", None), (b"rejoined", None), (b"rejoined", b"3"),
            (b"new", b"a"), (b"new", None), (b"moved", b"x"), (b"moved", b"y"),
        ],
    )  # fmt: skip
    assert table.scan(0, b"") == [(b"moved", b"y"), (b"rejoined", b"3"), (b"stays", b"vstays")]
    table.close()


def test_rocks_write_batch_is_applied_whole_or_not_at_all(tmp_path: Path) -> None:
    table = RocksTable(tmp_path, "members")
    table.put(0, b"keep", b"1")

    def puts() -> Iterator[tuple[bytes, bytes]]:
        yield b"a", b"1"
        yield b"b", "not bytes"  # type: ignore[misc]
        yield b"c", b"3"

    with pytest.raises(ValueError):
        table.write_batch(0, puts(), [b"keep"])
    with pytest.raises(KeyError):
        table.write_batch(0, [(b"a", b"1")], ["not bytes"])  # type: ignore[list-item]
    assert table.scan(0, b"") == [(b"keep", b"1")]  # none of either batch
    table.close()


def test_a_rocksdb_failure_in_the_table_is_the_workers_not_the_records(tmp_path: Path) -> None:
    # rocksdict raises a plain Exception from C code, with no frame of its own: the worker's
    # edge must see RocksTable as RocksDB, or an I/O error would dead-letter good records.
    holder = rocksdict.Rdict(str(tmp_path / "members-0.db"), rocksdict.Options(raw_mode=True))
    table = RocksTable(tmp_path, "members")
    try:
        with pytest.raises(Exception, match="lock") as failure:
            table.get(0, b"k")  # the partition's lock is held: RocksDB refuses to open it
        assert not blames_record(failure.value)
    finally:
        holder.close()
        table.close()


# --- BatchTable only -------------------------------------------------------------------------


class CountingRocks(RocksTable):
    """A :class:`RocksTable` that counts the reads a scan makes of it."""

    reads = 0

    def scan(
        self, partition: int, prefix: bytes, *, after: bytes | None = None, limit: int = 500
    ) -> list[tuple[bytes, bytes]]:
        self.reads += 1
        return super().scan(partition, prefix, after=after, limit=limit)

    def scan_until(self, partition: int, bound: bytes, limit: int) -> list[tuple[bytes, bytes]]:
        self.reads += 1
        return super().scan_until(partition, bound, limit)


@pytest.fixture
def rocks(tmp_path: Path) -> Iterator[CountingRocks]:
    base = CountingRocks(tmp_path, "members")
    yield base
    base.close()


def test_batch_writes_reach_rocksdb_only_on_flush(rocks: CountingRocks, tmp_path: Path) -> None:
    fill(rocks, 0, b"m:old", b"m:gone")
    table = BatchTable(rocks)
    table.put(0, b"m:new", b"1")
    table.put(0, b"m:old", b"2")
    table.delete(0, b"m:gone")
    assert rocks.scan(0, b"") == [(b"m:gone", b"vm:gone"), (b"m:old", b"vm:old")]  # untouched
    table.flush(0)
    assert table.dirty() == [] and table.pending(0) == []
    table.close()
    again = RocksTable(tmp_path, "members")  # on disk, after a reopen
    assert again.scan(0, b"") == [(b"m:new", b"1"), (b"m:old", b"2")]
    again.close()


def test_a_scan_in_the_batch_sees_a_member_created_earlier_in_the_batch(
    rocks: CountingRocks,
) -> None:
    # A backfill scan pages over the members: base ones, plus one created in this very batch
    # between two of them, minus one deleted in it.
    fill(rocks, 0, *(b"m:%02d" % i for i in range(0, 20, 2)))
    table = BatchTable(rocks)
    table.put(0, b"m:05", b"new")
    table.delete(0, b"m:08")
    seen: list[bytes] = []
    after = None
    while page := table.scan(0, b"m:", after=after, limit=3):
        seen += keys_of(page)
        after = page[-1][0]
    assert seen == [b"m:00", b"m:02", b"m:04", b"m:05", b"m:06"] + [
        b"m:%02d" % i for i in range(10, 20, 2)
    ]
    assert table.get(0, b"m:05") == b"new" and table.get(0, b"m:08") is None


def test_an_overlay_key_beyond_a_cut_base_read_does_not_skip_base_keys(
    rocks: CountingRocks,
) -> None:
    fill(rocks, 0, b"a", b"b", b"c", b"d")
    table = BatchTable(rocks)
    table.put(0, b"z", b"overlay")
    assert keys_of(table.scan(0, b"", limit=2)) == [b"a", b"b"]  # not [a, z]
    assert keys_of(table.scan(0, b"", after=b"b", limit=3)) == [b"c", b"d", b"z"]
    assert keys_of(table.scan_until(0, b"zz", 2)) == [b"a", b"b"]
    assert keys_of(table.scan_until(0, b"zz", 5)) == [b"a", b"b", b"c", b"d", b"z"]


def test_deletions_in_the_overlay_do_not_shorten_a_page(rocks: CountingRocks) -> None:
    # A due index drained from the front in this batch: the next scan_until must still find
    # `limit` entries, reading past the deleted ones.
    fill(rocks, 0, *(b"d:%03d" % i for i in range(100)))
    table = BatchTable(rocks)
    for i in range(90):
        table.delete(0, b"d:%03d" % i)
    assert keys_of(table.scan_until(0, b"d:095", 3)) == [b"d:090", b"d:091", b"d:092"]
    assert keys_of(table.scan_until(0, b"d:092", 3)) == [b"d:090", b"d:091"]  # the bound first
    assert keys_of(table.scan(0, b"d:", limit=20)) == [b"d:%03d" % i for i in range(90, 100)]
    assert keys_of(table.scan(0, b"d:", after=b"d:050", limit=2)) == [b"d:090", b"d:091"]
    rocks.reads = 0
    table.delete(0, b"e")
    assert keys_of(table.scan(0, b"d:", limit=2)) == [b"d:090", b"d:091"]
    assert rocks.reads <= 8  # 90 keys hidden: the reads grow (4, 6, 10, 18, ...), not 23 of 4


def test_a_key_of_the_overlay_is_returned_once_when_a_scan_reads_the_base_again(
    rocks: CountingRocks,
) -> None:
    fill(rocks, 0, *(b"k%d" % i for i in range(10)))
    table = BatchTable(rocks)
    table.put(0, b"k05", b"new")  # between k0 and k1
    for i in range(6):
        table.delete(0, b"k%d" % i)  # the first read is all deleted but k05
    assert table.scan(0, b"k", limit=2) == [(b"k05", b"new"), (b"k6", b"vk6")]
    assert table.scan_until(0, b"z", 3) == [(b"k05", b"new"), (b"k6", b"vk6"), (b"k7", b"vk7")]


def test_a_scan_reads_the_base_once_when_the_deletions_fit_in_the_page(
    rocks: CountingRocks,
) -> None:
    fill(rocks, 0, *(b"k%02d" % i for i in range(20)))
    table = BatchTable(rocks)
    table.delete(0, b"k00")
    table.delete(0, b"k01")
    table.put(0, b"k015", b"new")
    rocks.reads = 0
    assert keys_of(table.scan(0, b"k", limit=3)) == [b"k015", b"k02", b"k03"]
    assert keys_of(table.scan_until(0, b"k99", 3)) == [b"k015", b"k02", b"k03"]
    assert rocks.reads == 2
    table.put(1, b"k", b"other partition")
    assert keys_of(table.scan(0, b"", limit=1)) == [b"k015"]


def test_pending_lists_each_changed_key_once_in_key_order(rocks: CountingRocks) -> None:
    fill(rocks, 0, b"base")
    table = BatchTable(rocks)
    assert table.pending(0) == [] and table.dirty() == []
    table.put(0, b"c", b"1")
    table.put(0, b"a", b"1")
    table.put(0, b"c", b"2")  # the last value wins
    table.delete(0, b"base")
    table.put(0, b"b", b"1")
    table.delete(0, b"b")  # put then deleted: a deletion (the base may hold it)
    table.delete(0, b"never")  # no read of RocksDB: a deletion too
    table.delete(0, b"d")
    table.put(0, b"d", b"back")  # deleted then put: a put
    table.put(3, b"x", b"")
    assert table.pending(0) == [
        (b"a", b"1"),
        (b"b", None),
        (b"base", None),
        (b"c", b"2"),
        (b"d", b"back"),
        (b"never", None),
    ]
    assert table.pending(3) == [(b"x", b"")]
    assert table.dirty() == [0, 3]
    assert table.pending(1) == []


def test_flush_applies_one_partition_and_discard_restores_the_base(rocks: CountingRocks) -> None:
    fill(rocks, 0, b"a", b"b")
    fill(rocks, 1, b"a")
    table = BatchTable(rocks)
    table.put(0, b"c", b"3")
    table.delete(0, b"a")
    table.put(1, b"z", b"26")
    table.delete(1, b"a")
    table.flush(0)
    assert rocks.scan(0, b"") == [(b"b", b"vb"), (b"c", b"3")]
    assert table.dirty() == [1]
    table.discard(1)
    assert table.dirty() == [] and table.pending(1) == []
    assert table.scan(1, b"") == [(b"a", b"va")] == rocks.scan(1, b"")
    assert table.get(1, b"z") is None and table.get(1, b"a") == b"va"
    table.flush(1)  # nothing pending: nothing to do
    table.discard(7)


def test_a_failed_flush_applies_nothing_and_keeps_the_batch_pending(rocks: CountingRocks) -> None:
    fill(rocks, 0, b"keep")
    table = BatchTable(rocks)
    table.delete(0, b"keep")
    table.put(0, b"bad", "not bytes")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        table.flush(0)
    assert rocks.scan(0, b"") == [(b"keep", b"vkeep")]
    assert table.dirty() == [0] and len(table.pending(0)) == 2
    table.discard(0)
    assert table.scan(0, b"") == [(b"keep", b"vkeep")]


def test_close_partition_drops_its_batch_and_releases_its_rocksdb(rocks: CountingRocks) -> None:
    table = BatchTable(rocks)
    table.put(0, b"k", b"unflushed")
    table.put(1, b"k", b"kept")
    table.close_partition(0)
    other = rocksdict.Rdict(str(rocks.path(0)), rocksdict.Options(raw_mode=True))
    assert other.get(b"k") is None  # released, and nothing was written
    other.close()
    assert table.get(0, b"k") is None and table.dirty() == [1]
    table.close()
    assert table.dirty() == []
    assert table.get(1, b"k") is None  # dropped too; RocksDB opens again on use


FEW_KEYS = st.binary(max_size=2).map(lambda b: bytes(b"\x00a\xff"[x % 3] for x in b))
"""13 keys: a base of up to 12 holds most of them, so the overlay mostly changes base keys."""
SMALL_LIMITS = st.integers(0, 3)
"""Pages short enough for the overlay's deletions to hide all of a first read."""
BATCH_OPS = st.one_of(
    st.tuples(st.just("put"), PARTITIONS, FEW_KEYS, st.binary(max_size=2)),
    st.tuples(st.just("delete"), PARTITIONS, FEW_KEYS),
    st.tuples(st.just("delete"), PARTITIONS, FEW_KEYS),  # twice as likely: many hide base keys
    st.tuples(st.just("get"), PARTITIONS, FEW_KEYS),
    st.tuples(
        st.just("scan"), PARTITIONS, st.just(b"") | FEW_KEYS, st.none() | FEW_KEYS, SMALL_LIMITS
    ),
    st.tuples(st.just("scan_until"), PARTITIONS, FEW_KEYS, SMALL_LIMITS),
    st.tuples(st.just("drain"), PARTITIONS, FEW_KEYS, SMALL_LIMITS),
    st.tuples(st.just("flush"), PARTITIONS),
    st.tuples(st.just("discard"), PARTITIONS),
)
BASES = st.dictionaries(FEW_KEYS, st.binary(max_size=2), min_size=4, max_size=12)


@settings(max_examples=300, deadline=None)
@given(bases=st.tuples(BASES, BASES), ops=st.lists(BATCH_OPS, min_size=10, max_size=60))
def test_random_batches_over_a_filled_base_answer_like_a_dict(
    bases: tuple[dict[bytes, bytes], dict[bytes, bytes]], ops: list[tuple[object, ...]]
) -> None:
    # The model: the base's dict, and the overlay's (None: deleted); the view applies the second
    # to the first. Keys start in the base (flushed earlier), in the overlay, or in both.
    with tempfile.TemporaryDirectory() as root:
        base = RocksTable(root, "members")
        table = BatchTable(base)
        model, stored = Model(), Model()
        overlay: dict[int, dict[bytes, bytes | None]] = {0: {}, 1: {}}
        for p in (0, 1):
            base.write_batch(p, sorted(bases[p].items()))
            stored.data[p] = dict(bases[p])
            model.data[p] = dict(bases[p])
        try:
            for op in ops:
                match op:
                    case ("put", p, key, value):
                        table.put(p, key, value)
                        model.data[p][key] = overlay[p][key] = value
                    case ("delete", p, key):
                        table.delete(p, key)
                        model.data[p].pop(key, None)
                        overlay[p][key] = None
                    case ("get", p, key):
                        assert table.get(p, key) == model.data[p].get(key), op
                    case ("scan", p, prefix, after, limit):
                        got = table.scan(p, prefix, after=after, limit=limit)
                        assert got == model.scan(p, prefix, after, limit), op
                    case ("scan_until", p, bound, limit):
                        got = table.scan_until(p, bound, limit)
                        assert got == model.scan_until(p, bound, limit), op
                    case ("drain", p, bound, limit):  # a due index taken from the front
                        got = table.scan_until(p, bound, limit)
                        assert got == model.scan_until(p, bound, limit), op
                        for key, _ in got:
                            table.delete(p, key)
                            model.data[p].pop(key)
                            overlay[p][key] = None
                    case ("flush", p):
                        table.flush(p)
                        stored.data[p] = dict(model.data[p])
                        overlay[p].clear()
                    case ("discard", p):
                        table.discard(p)
                        model.data[p] = dict(stored.data[p])
                        overlay[p].clear()
                for p in (0, 1):
                    assert table.pending(p) == sorted(overlay[p].items())
                assert table.dirty() == [p for p in (0, 1) if overlay[p]]
            for p in (0, 1):
                assert table.scan(p, b"", limit=1000) == model.scan(p, b"", None, 1000)
                assert base.scan(p, b"", limit=1000) == stored.scan(p, b"", None, 1000)
                table.flush(p)
                assert base.scan(p, b"", limit=1000) == model.scan(p, b"", None, 1000)
        finally:
            table.close()


def test_sealed_changes_stay_readable_until_flushed_and_new_writes_go_over_them(
    rocks: CountingRocks,
) -> None:
    """A pipelined checkpoint: the sealed changes' changelog is in flight while the next batch
    writes over them; reads see overlay, then sealed, then RocksDB."""
    fill(rocks, 0, b"m:a", b"m:b", b"m:c")
    table = BatchTable(rocks)
    table.put(0, b"m:b", b"sealed")
    table.delete(0, b"m:c")
    table.put(0, b"m:d", b"sealed")
    table.seal()
    assert table.dirty() == [] and table.sealed() == [0]
    table.put(0, b"m:d", b"new")  # over a sealed key
    table.put(0, b"m:c", b"back")  # over a sealed deletion
    table.delete(0, b"m:a")  # over RocksDB
    assert table.pending(0) == [(b"m:a", None), (b"m:c", b"back"), (b"m:d", b"new")]
    expected = [(b"m:b", b"sealed"), (b"m:c", b"back"), (b"m:d", b"new")]
    assert table.scan(0, b"m:") == expected
    assert table.scan(0, b"m:", after=b"m:b", limit=1) == expected[1:2]
    assert table.scan_until(0, b"m:d", 10) == expected[:2]
    assert table.get(0, b"m:b") == b"sealed" and table.get(0, b"m:a") is None
    with pytest.raises(RuntimeError):
        table.seal()  # one checkpoint in flight at a time
    table.flush_sealed(0)  # its changelog was delivered
    assert rocks.scan(0, b"") == [(b"m:a", b"vm:a"), (b"m:b", b"sealed"), (b"m:d", b"sealed")]
    assert table.scan(0, b"m:") == expected  # the overlay still over it
    table.seal()
    table.flush_sealed(0)
    assert rocks.scan(0, b"") == expected
