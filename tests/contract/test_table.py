"""The one contract of :class:`~smartgroups.service.ports.Table`, run against every table.

Every test taking ``table`` (or ``make_table``) runs on
:class:`~smartgroups.service.memory.MemoryTable`, on :class:`~smartgroups.worker.rocks.RocksTable`
in a tmp directory, and on :class:`~smartgroups.worker.batch_table.BatchTable` over one, twice:
``batch`` (every write stays in the overlay, nothing is flushed) and ``batch-flushed`` (each write
is flushed to RocksDB at once), so the overlay alone and the overlay's flush path both answer like
the others (the eventsourcing project's ``tests/persistence.py`` pattern): the services are tested
on the in-memory twin, and this suite is what makes that mean something for the worker's RocksDB.
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
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import rocksdict
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smartgroups.service.memory import MemoryTable
from smartgroups.service.ports import Table
from smartgroups.worker.batch_table import BatchTable
from smartgroups.worker.edge import blames_record
from smartgroups.worker.rocks import RocksTable

MakeTable = Callable[[], Table]


class FlushingTable(BatchTable):
    """A :class:`BatchTable` that flushes each write at once: every read goes through RocksDB."""

    def put(self, partition: int, key: bytes, value: bytes) -> None:
        super().put(partition, key, value)
        self.flush(partition)

    def delete(self, partition: int, key: bytes) -> None:
        super().delete(partition, key)
        self.flush(partition)


@pytest.fixture(params=["memory", "rocks", "batch", "batch-flushed"])
def make_table(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MakeTable]:
    """Makes fresh, empty tables of one kind; RocksDB ones each in a new directory."""
    opened: list[RocksTable] = []
    count = itertools.count()

    def make() -> Table:
        if request.param == "memory":
            return MemoryTable()
        table = RocksTable(tmp_path / f"table{next(count)}", "members")
        opened.append(table)
        if request.param == "batch":
            return BatchTable(table)
        if request.param == "batch-flushed":
            return FlushingTable(table)
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
