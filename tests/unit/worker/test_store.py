"""The faust table adapter's scans: a partition's keys in order, faust's own offset key left out."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from rocksdict import Options, Rdict

from smartgroups.worker.store import PartitionTable


def test_scans_skip_faust_offset_key_only_not_keys_that_start_like_it(tmp_path: Path) -> None:
    db = Rdict(str(tmp_path / "p0"), Options(raw_mode=True))
    try:
        for key in (b"__faust\0offset__", b"__faust", b"__faust:g1:00000000000000000001", b"a"):
            db.put(key, b"v")
        faust_table = SimpleNamespace(data=SimpleNamespace(_db_for_partition=lambda p: db))
        table = PartitionTable(faust_table)
        # A space whose id starts with "__faust" keeps its document and its groups' keys.
        assert [k for k, _ in table.scan(0, b"__faust")] == [
            b"__faust", b"__faust:g1:00000000000000000001",
        ]  # fmt: skip
        assert [k for k, _ in table.scan_until(0, b"b", 10)] == [
            b"__faust", b"__faust:g1:00000000000000000001", b"a",
        ]  # fmt: skip
    finally:
        db.close()
