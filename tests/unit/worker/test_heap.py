"""The worker returns the C heap's free memory to the system when idle (``worker/heap.py``)."""

from __future__ import annotations

import platform

import pytest

from smartgroups.worker import heap

glibc = pytest.mark.skipif(
    platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's (the worker's Linux)"
)


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@glibc
def test_trim_returns_freed_memory_that_malloc_kept() -> None:
    # 600-byte values (a member record's size) come from malloc's arena; one allocated after
    # them stays alive, so the arena's top cannot shrink on its own when they are freed.
    values = [bytes(600) + i.to_bytes(4, "big") for i in range(150_000)]
    keep = bytes(600) + b"last"
    before = rss_mb()
    del values
    freed = rss_mb()
    assert heap.trim()
    after = rss_mb()
    assert freed - after > 0.5 * 150_000 * 600 / 2**20, (before, freed, after)
    assert keep.endswith(b"last")
