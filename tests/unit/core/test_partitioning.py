"""Our partitioner must place every key exactly where Kafka clients do."""

from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from hypothesis import given
from hypothesis import strategies as st

from smartgroups.core.partitioning import murmur2, partition_for


@given(st.binary(max_size=64))
def test_murmur2_matches_aiokafka(data: bytes) -> None:
    # aiokafka returns the same 32 bits unsigned; Java (and we) return them signed.
    assert murmur2(data) & 0xFFFFFFFF == aiokafka_murmur2(data) & 0xFFFFFFFF


@given(st.text(max_size=40), st.integers(min_value=1, max_value=64))
def test_partition_matches_the_default_partitioner(key: str, partitions: int) -> None:
    raw = key.encode()
    expected = DefaultPartitioner()(raw, list(range(partitions)), list(range(partitions)))
    assert partition_for(raw, partitions) == expected


def test_known_java_vectors() -> None:
    # Values from Kafka's own UtilsTest (murmur2 of these strings).
    assert murmur2(b"21") == -973932308
    assert murmur2(b"foobar") == -790332482
    assert murmur2(b"a-little-bit-long-string") == -985981536
    assert murmur2(b"a-little-bit-longer-string") == -1486304829
    assert murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8") == -58897971
    assert murmur2(b"abc") == 479470107
