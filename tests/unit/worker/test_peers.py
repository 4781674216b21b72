"""The member group's assignor and the owners map the query API routes by."""

from __future__ import annotations

import pytest
from aiokafka.coordinator.protocol import (
    ConsumerProtocolMemberAssignment,
    ConsumerProtocolMemberMetadata,
)

from smartgroups.errors import QueryError
from smartgroups.settings import Settings
from smartgroups.worker.peers import address_assignor, advertised, copartitioned, owners_of

TOPICS = ["a", "b", "fanout"]


class Cluster:
    def __init__(self, partitions: int) -> None:
        self.partitions = partitions

    def partitions_for_topic(self, topic: str) -> set[int]:
        return set(range(self.partitions))


@pytest.mark.parametrize(("workers", "partitions"), [(1, 8), (2, 8), (3, 8), (3, 5), (5, 3)])
def test_every_partition_number_goes_whole_to_one_worker(workers: int, partitions: int) -> None:
    members = {
        f"w{i}": ConsumerProtocolMemberMetadata(0, TOPICS, f"http://h{i}:1".encode())
        for i in range(workers)
    }
    assigned = copartitioned(Cluster(partitions), members)
    owner: dict[int, str] = {}
    for member, assignment in assigned.items():
        numbers = [set(ps) for _, ps in assignment.assignment]
        assert [t for t, _ in assignment.assignment] == sorted(TOPICS)
        assert all(n == numbers[0] for n in numbers)  # the same numbers on every topic
        for p in numbers[0]:
            assert p not in owner
            owner[p] = member
    assert sorted(owner) == list(range(partitions))
    counts = sorted(list(owner.values()).count(m) for m in members)
    assert counts[-1] - counts[0] <= 1


def test_the_assignors_metadata_carries_the_address() -> None:
    assignor = address_assignor("http://10.0.0.7:6066")
    metadata = assignor.metadata(["b", "a"])
    assert metadata.user_data == b"http://10.0.0.7:6066" and metadata.subscription == ["a", "b"]


def _member(address: str, partitions: list[int]) -> dict[str, bytes]:
    metadata = ConsumerProtocolMemberMetadata(0, TOPICS, address.encode()).encode()
    assignment = ConsumerProtocolMemberAssignment(
        0, [(t, partitions) for t in TOPICS], b""
    ).encode()
    return {"member_metadata": metadata, "member_assignment": assignment}


def test_owners_come_from_the_described_group_and_a_rebalance_is_503() -> None:
    group = {
        "state": "Stable",
        "members": [_member("http://x:1", [0, 2]), _member("http://y:2", [1])],
    }
    assert owners_of({"groups": [group]}, "fanout") == {
        0: "http://x:1",
        2: "http://x:1",
        1: "http://y:2",
    }
    with pytest.raises(QueryError) as caught:
        owners_of({"groups": [{**group, "state": "PreparingRebalance"}]}, "fanout")
    assert caught.value.status == 503 and caught.value.retry_after


def test_the_advertised_address() -> None:
    assert advertised(Settings(web_host="10.1.2.3", web_port=7000)) == "http://10.1.2.3:7000"
    assert advertised(Settings(web_host="::1", web_port=7000)) == "http://[::1]:7000"
    assert not advertised(Settings(web_host="0.0.0.0")).startswith("http://0.0.0.0")
