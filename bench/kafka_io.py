"""Kafka plumbing for the benchmarks: create topics, preload records, watch a group drain.

Drain throughput is read from the broker, never from logs: :func:`watch_drain` polls the
consumer group's committed offsets (admin ``OffsetFetch``) against the end offsets of its input
topics every ``poll_s`` and returns the commit *change points*. :class:`Drain` turns them into a
rate between the first commit and the commit that reaches the end; both are commit instants, so
the commit lag (up to one commit interval) mostly cancels out.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from bench.procstats import cpu_seconds


async def create_topics(
    bootstrap: str, names: Iterable[str], partitions: int, *, compacted: Iterable[str] = ()
) -> None:
    """Create ``names`` with ``partitions`` each (replication 1); existing ones are kept."""
    compact = set(compacted)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        new = [
            NewTopic(
                n,
                partitions,
                1,
                topic_configs={"cleanup.policy": "compact"} if n in compact else {},
            )
            for n in names
            if n not in existing
        ]
        if new:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(new)
    finally:
        await admin.close()


async def delete_topics_with(bootstrap: str, text: str) -> int:
    """Delete every topic whose name contains ``text`` (a run's id: its topics, the worker's
    changelogs and quix-streams' ones); return how many. A run leaves gigabytes on a broker."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30000)
    await admin.start()
    try:
        names = [n for n in await admin.list_topics() if text in n]
        if names:
            await admin.delete_topics(names)
        return len(names)
    finally:
        await admin.close()


def fast_producer(bootstrap: str, **overrides: object) -> AIOKafkaProducer:
    """A producer tuned for bulk loading (acks=all, 20 ms linger, 512 KiB batches)."""
    options: dict[str, object] = {
        "bootstrap_servers": bootstrap,
        "acks": "all",
        "linger_ms": 20,
        "max_batch_size": 512 * 1024,
        "max_request_size": 4 * 1024 * 1024,
    }
    options.update(overrides)
    return AIOKafkaProducer(**options)


async def preload(bootstrap: str, records: Iterable[tuple[str, bytes, bytes]]) -> int:
    """Produce ``(topic, key, value)`` records (default partitioner) and wait for all acks."""
    producer = fast_producer(bootstrap)
    await producer.start()
    count = 0
    try:
        pending: list[asyncio.Future[object]] = []
        for topic, key, value in records:
            pending.append(await producer.send(topic, value=value, key=key))
            count += 1
            if len(pending) >= 20_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return count


async def end_offsets(bootstrap: str, topics: Iterable[str]) -> dict[TopicPartition, int]:
    """End offset of every partition of ``topics``."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps: list[TopicPartition] = []
        for topic in topics:
            parts = consumer.partitions_for_topic(topic)
            if not parts:
                await consumer._client.force_metadata_update()
                parts = consumer.partitions_for_topic(topic) or set()
            tps.extend(TopicPartition(topic, p) for p in sorted(parts))
        return dict(await consumer.end_offsets(tps)) if tps else {}
    finally:
        await consumer.stop()


async def total_records(bootstrap: str, topics: Iterable[str]) -> int:
    """Sum of end offsets (= records ever written, for topics that were never truncated)."""
    return sum((await end_offsets(bootstrap, topics)).values())


@dataclass
class Drain:
    """Commit change points ``(monotonic seconds, committed events)`` of one drain."""

    total: int
    started: float
    points: list[tuple[float, int]] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    """CPU seconds of the watched process at each point (when a pid was given)."""
    timed_out: bool = False
    baseline: int = 0
    """Committed events when the watch began (the process was ready then)."""
    start_cpu: float | None = None

    LATE_FIRST_COMMIT = 0.25
    """A first commit covering more than this share of the drain came late (a slow first
    flush): timing from it would count that work in no time, so the drain is timed from the
    watch's start instead (at most one commit interval early: an underestimate, never a
    wild overestimate)."""

    def _first(self) -> tuple[float, int, float | None]:
        t0, c0 = self.points[0]
        cpu0 = self.cpu[0] if self.cpu else None
        if c0 - self.baseline > self.LATE_FIRST_COMMIT * (self.total - self.baseline):
            return self.started, self.baseline, self.start_cpu
        return t0, c0, cpu0

    @property
    def done(self) -> bool:
        return bool(self.points) and self.points[-1][1] >= self.total

    @property
    def seconds(self) -> float:
        """Wall time from the first commit (see :data:`LATE_FIRST_COMMIT`) to the last."""
        if len(self.points) < 2:
            return float("nan")
        return self.points[-1][0] - self._first()[0]

    @property
    def rate(self) -> float:
        """Events per second between the first commit and the last (see the module docstring)."""
        if not self.done or len(self.points) < 2:
            return float("nan")
        t0, c0, _ = self._first()
        t1, c1 = self.points[-1]
        return (c1 - c0) / (t1 - t0) if t1 > t0 else float("nan")

    @property
    def cpu_us_per_event(self) -> float:
        """CPU µs per event of the watched process over the same span as :attr:`rate`."""
        cpu0 = self._first()[2] if self.points else None
        if len(self.cpu) < 2 or cpu0 is None or self.measured_events <= 0:
            return float("nan")
        return (self.cpu[-1] - cpu0) * 1e6 / self.measured_events

    @property
    def measured_events(self) -> int:
        return self.points[-1][1] - self._first()[1] if len(self.points) >= 2 else 0


Groups = str | Callable[[str], str]
"""One consumer group, or which group consumes each topic (the batch member path commits the
member topics in a group of its own)."""


async def committed(
    admin: AIOKafkaAdminClient, group: Groups, ends: dict[TopicPartition, int]
) -> int:
    """Committed events over the partitions of ``ends`` (0 where none), each read from the group
    that consumes its topic."""
    by_group: dict[str, list[TopicPartition]] = {}
    for tp in ends:
        by_group.setdefault(group if isinstance(group, str) else group(tp.topic), []).append(tp)
    total = 0
    for name, partitions in by_group.items():
        offsets = await admin.list_consumer_group_offsets(name, partitions=partitions)
        for tp in partitions:
            meta = offsets.get(tp)
            if meta is not None and meta.offset >= 0:
                total += meta.offset
    return total


async def watch_drain(
    bootstrap: str,
    group: Groups,
    ends: dict[TopicPartition, int],
    *,
    timeout_s: float,
    poll_s: float = 0.05,
    baseline: int = 0,
    pid: int | None = None,
) -> Drain:
    """Poll ``group``'s committed offsets until they reach ``ends`` (or ``timeout_s``).

    ``baseline`` is what the group had committed before the drain (its first point); ``pid``,
    when given, is sampled for CPU seconds at every point.
    """
    total = sum(ends.values())
    drain = Drain(total=total, started=time.monotonic(), baseline=baseline)
    if pid is not None:
        drain.start_cpu = cpu_seconds(pid)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    await admin.start()
    try:
        last = baseline
        deadline = drain.started + timeout_s
        while time.monotonic() < deadline:
            try:
                now_committed = await committed(admin, group, ends)
            except KafkaError as exc:  # coordinator not known yet, loading, …
                if not exc.retriable:
                    raise
                await asyncio.sleep(0.2)
                continue
            if now_committed != last:
                drain.points.append((time.monotonic(), now_committed))
                if pid is not None:
                    drain.cpu.append(cpu_seconds(pid))
                last = now_committed
                if now_committed >= total:
                    return drain
            await asyncio.sleep(poll_s)
        drain.timed_out = True
        return drain
    finally:
        await admin.close()


async def set_committed(bootstrap: str, group: str, offsets: dict[TopicPartition, int]) -> None:
    """Commit ``offsets`` for ``group`` (which must have no live members)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        await consumer.commit(dict(offsets.items()))
    finally:
        await consumer.stop()
