"""Our partitioner must place every key exactly where Kafka clients do."""

import pytest
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from hypothesis import given
from hypothesis import strategies as st

from smartgroups.core.extension import NATIVE
from smartgroups.core.partitioning import murmur2, partition_for, python_partition_for


@given(st.binary(max_size=64))
def test_murmur2_matches_aiokafka(data: bytes) -> None:
    # aiokafka returns the same 32 bits unsigned; Java (and we) return them signed.
    assert murmur2(data) & 0xFFFFFFFF == aiokafka_murmur2(data) & 0xFFFFFFFF


@given(st.binary(max_size=80), st.integers(min_value=1, max_value=1024))
def test_partition_matches_the_default_partitioner(raw: bytes, partitions: int) -> None:
    expected = DefaultPartitioner()(raw, list(range(partitions)), list(range(partitions)))
    assert partition_for(raw, partitions) == expected  # native when built
    assert python_partition_for(raw, partitions) == expected


@pytest.mark.skipif(NATIVE is None, reason="runs where the native extension is loaded")
def test_the_native_partitioner_refuses_what_it_cannot_place() -> None:
    with pytest.raises(ValueError):
        partition_for(b"k", 0)
    with pytest.raises(TypeError):
        partition_for("k", 4)  # type: ignore[arg-type]


def test_known_java_vectors() -> None:
    # Values from Kafka's own UtilsTest (murmur2 of these strings).
    assert murmur2(b"21") == -973932308
    assert murmur2(b"foobar") == -790332482
    assert murmur2(b"a-little-bit-long-string") == -985981536
    assert murmur2(b"a-little-bit-longer-string") == -1486304829
    assert murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8") == -58897971
    assert murmur2(b"abc") == 479470107
