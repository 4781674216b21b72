"""The worker's metrics without a broker: what each hook counts, and the exposition as
Prometheus' own parser reads it (the integration test checks the values of a real scenario)."""

from __future__ import annotations

import time
from collections import Counter
from types import SimpleNamespace
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from smartgroups.settings import Settings
from smartgroups.worker.metrics import Backfills, Metrics, count_members
from smartgroups.worker.topology import Topology

TOPOLOGY = Topology.from_settings(Settings(topic_prefix="p.", partitions=4))


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = metrics.exposition().decode()
    out = {}
    for family in text_string_to_metric_families(text):
        assert family.name.startswith("smartgroups_")
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_outcomes_are_attributed_to_the_topic_of_the_records_that_made_them() -> None:
    stats: Counter[str] = Counter()
    metrics = Metrics(TOPOLOGY, stats)
    stats["inputs.applied"] += 3
    stats["inputs.noop"] += 1
    metrics.member_inputs("p.member-changes")
    stats["inputs.applied"] += 2
    stats["inputs.rerouted"] += 1
    metrics.member_inputs("p.form-answers")
    metrics.member_inputs("p.form-answers")  # nothing new: nothing counted
    stats["commands.accepted"] += 2
    stats["commands.rejected"] += 1
    stats["commands.rejected.group_not_found"] += 1
    stats["definitions.redelivered"] += 4
    metrics.definition_inputs("p.group-changes")
    stats["inputs.applied"] += 7  # members decided by a backfill step
    metrics.member_inputs(TOPOLOGY.fanout)
    metrics.dead_letter("p.property-changes", "schema_error")
    stats["transitions.conditions_met"] += 5
    s = samples(metrics)

    def inputs(topic: str, outcome: str) -> float:
        return s.get(("smartgroups_inputs_total", (("outcome", outcome), ("topic", topic))), 0)

    assert inputs("member-changes", "applied") == 3 and inputs("member-changes", "noop") == 1
    assert inputs("form-answers", "applied") == 2 and inputs("form-answers", "rerouted") == 1
    assert inputs("group-changes", "applied") == 3
    assert inputs("group-changes", "redelivered") == 4
    assert inputs("fanout", "applied") == 7
    assert inputs("property-changes", "dead_lettered") == 1
    dead = (
        "smartgroups_dead_letters_total",
        (("code", "schema_error"), ("topic", "property-changes")),
    )
    assert s[dead] == 1
    assert s[("smartgroups_transitions_total", (("reason", "conditions_met"),))] == 5
    assert s[("smartgroups_commands_total", (("code", ""), ("result", "accepted")))] == 2
    rejected = ("smartgroups_commands_total", (("code", "group_not_found"), ("result", "rejected")))
    assert s[rejected] == 1


def test_a_batch_observes_input_records_only_and_its_size_and_time() -> None:
    from aiokafka import TopicPartition as tp

    metrics = Metrics(TOPOLOGY, Counter())
    now_ms = time.time() * 1000
    batch: dict[Any, list[Any]] = {
        tp("p.member-changes", 0): [
            SimpleNamespace(timestamp=now_ms - 2000),
            SimpleNamespace(timestamp=now_ms - 40),
        ],
        tp(TOPOLOGY.fanout, 0): [SimpleNamespace(timestamp=now_ms)],
    }
    metrics.batch(batch, time.monotonic() - 0.5)
    s = samples(metrics)
    assert s[("smartgroups_latency_seconds_count", ())] == 2
    assert 2.0 <= s[("smartgroups_latency_seconds_sum", ())] < 3.0
    assert s[("smartgroups_latency_seconds_bucket", (("le", "0.025"),))] == 0
    assert s[("smartgroups_latency_seconds_bucket", (("le", "0.05"),))] == 1
    assert s[("smartgroups_batch_records_sum", ())] == 3
    assert s[("smartgroups_batch_seconds_sum", ())] >= 0.5


def test_a_checkpoint_delivery_is_observed_when_known() -> None:
    metrics = Metrics(TOPOLOGY, Counter())
    metrics.checkpoint_delivered(0.003)
    metrics.checkpoint_delivered(None)  # an answer still missing: nothing to observe
    s = samples(metrics)
    assert s[("smartgroups_checkpoint_delivery_seconds_count", ())] == 1
    assert s[("smartgroups_checkpoint_delivery_seconds_bucket", (("le", "0.0025"),))] == 0
    assert s[("smartgroups_checkpoint_delivery_seconds_bucket", (("le", "0.005"),))] == 1


class Members:
    """A members table of one partition: keys ``space:member``."""

    def __init__(self, keys: list[bytes]) -> None:
        self.keys = sorted(keys)

    def scan(self, partition: int, prefix: bytes, after: bytes | None, limit: int) -> list[Any]:
        rows = [k for k in self.keys if k.startswith(prefix) and (after is None or k > after)]
        return [(k, b"") for k in rows[:limit]]


def test_count_members_counts_one_space_in_chunks() -> None:
    table = Members([b"a:%d" % i for i in range(25)] + [b"ab:1", b"b:1"])
    assert count_members(table, 0, "a", chunk=10) == 25
    assert count_members(table, 0, "b", chunk=10) == 1
    assert count_members(table, 0, "c", chunk=10) == 0


async def test_backfill_progress_by_partition_until_done_or_moved_away() -> None:
    backfills = Backfills(count=lambda partition, space: 250)
    backfills.step(0, "s", "g", first=True, scanned=100, last=False)
    backfills.step(0, "s", "g", first=False, scanned=100, last=False)
    backfills.step(1, "s", "h", first=True, scanned=100, last=False)
    assert backfills.by_partition() == {0: (1, 200, 250), 1: (1, 100, 250)}
    backfills.step(0, "s", "g", first=False, scanned=50, last=True)
    assert backfills.by_partition() == {1: (1, 100, 250)} and backfills.finished == 1
    backfills.step(1, "s", "h", first=True, scanned=100, last=False)  # restarted: from zero
    assert backfills.by_partition() == {1: (1, 100, 250)}

    metrics = Metrics(TOPOLOGY, Counter())
    metrics.backfills = backfills
    await metrics.refresh([], owned=lambda partition: True)
    s = samples(metrics)
    assert s[("smartgroups_backfill_members_scanned", (("partition", "1"),))] == 100
    assert s[("smartgroups_backfill_members_total", (("partition", "1"),))] == 250
    await metrics.refresh([], owned=lambda partition: partition != 1)
    assert ("smartgroups_backfills_in_progress", (("partition", "1"),)) not in samples(metrics)


async def test_lag_is_the_high_water_mark_less_the_position_of_owned_input_partitions() -> None:
    class Consumer:
        def assignment(self) -> set[Any]:
            return {tp("p.member-changes", 2), tp("p.group-changes", 0), tp("other", 0)}

        def highwater(self, partition: Any) -> int:
            return 10

        async def position(self, partition: Any) -> int:
            return 7

    from aiokafka import TopicPartition as tp

    metrics = Metrics(TOPOLOGY, Counter())
    await metrics.refresh([Consumer()], owned=lambda p: True)
    s = samples(metrics)
    lag = {k[1]: v for k, v in s.items() if k[0] == "smartgroups_consumer_lag"}
    assert lag == {
        (("partition", "2"), ("topic", "member-changes")): 3,
        (("partition", "0"), ("topic", "group-changes")): 3,
    }


def test_no_label_names_an_id() -> None:
    metrics = Metrics(TOPOLOGY, Counter({"transitions.manual": 1, "commands.accepted": 1}))
    metrics.dead_letter("p.member-changes", "decode_error")
    names = {name for (_, labels) in samples(metrics) for name, _ in labels}
    assert names <= {"topic", "partition", "code", "reason", "result", "outcome", "le"}
