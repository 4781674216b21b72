"""Kafka's default partitioner (murmur2), so every component agrees on where a key lives.

Java clients, aiokafka's ``DefaultPartitioner`` and librdkafka with ``partitioner=murmur2_random``
all place a non-null key at ``(murmur2(key) & 0x7fffffff) % partitions``. The worker uses this to
spot records produced to the wrong partition and to address the partition that owns a key.
"""

from __future__ import annotations

from smartgroups.core.extension import NATIVE

_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's 32-bit murmur2 hash of ``data`` (seed ``0x9747b28c``), as a signed int."""
    length = len(data)
    h = (0x9747B28C ^ length) & _MASK
    end = length - (length & 3)
    for i in range(0, end, 4):
        k = data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24)
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    rest = length & 3
    if rest == 3:
        h ^= data[end + 2] << 16
    if rest >= 2:
        h ^= data[end + 1] << 8
    if rest >= 1:
        h ^= data[end]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def python_partition_for(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner gives ``key`` among ``partitions``."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


partition_for = NATIVE.partition if NATIVE is not None else python_partition_for
"""The partition Kafka's default partitioner gives ``key`` among ``partitions`` (the native
extension's, when loaded: it runs for every input and output record; the same answers as
:func:`python_partition_for`, tested)."""
