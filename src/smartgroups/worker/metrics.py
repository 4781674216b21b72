"""The worker's Prometheus metrics, served at ``GET /metrics`` (contract section 8).

One :class:`Metrics` per worker (its own ``CollectorRegistry``, so tests can run several apps in
one process), built by the composition root and kept on the
:class:`~smartgroups.worker.runtime.Runtime`. Every name starts with ``smartgroups_``; labels are
low-cardinality only: ``topic`` (the contract's name without the prefix; ``fanout`` and
``commands`` for the internal topics), ``partition``, ``outcome``, ``code``, ``reason``,
``result`` -- never a member, group or space id.

* ``smartgroups_inputs_total{topic, outcome}`` (counter): input records by outcome --
  ``applied``, ``noop``, ``redelivered``, ``rerouted``, ``dead_lettered``;
* ``smartgroups_dead_letters_total{topic, code}`` (counter): dead letters by ``error.code``;
* ``smartgroups_transitions_total{reason}`` (counter): ``member.added`` / ``member.removed``;
* ``smartgroups_commands_total{result, code}`` (counter): ``group-changes`` results,
  ``accepted`` (code ``""``) or ``rejected`` by code;
* ``smartgroups_consumer_lag{topic, partition}`` (gauge): records of an input partition this
  worker owns not yet processed;
* ``smartgroups_latency_seconds`` (histogram): member input record timestamp -> its batch's
  outputs produced;
* ``smartgroups_batch_records``, ``smartgroups_batch_seconds`` (histograms): records per member
  batch and its processing time, checkpoint included;
* ``smartgroups_checkpoint_delivery_seconds`` (histogram): a member checkpoint's outputs and
  changelog records handed to the producer -> the broker's last acknowledgement of them (the
  batch member path);
* ``smartgroups_backfills_in_progress{partition}``, ``smartgroups_backfill_members_scanned``,
  ``smartgroups_backfill_members_total`` (gauges, by partition): the running backfills (scans
  of a space's members), members they decided and will decide in all;
  ``smartgroups_backfills_total`` (counter): backfills finished.

How they are counted, with as little as possible on the hot path:

* The services count outcomes in the worker's ``stats`` counter (served at ``/stats/`` too).
  :class:`Outcomes` turns the counter's growth into ``inputs_total`` by topic: the member loop
  calls it once per partition of a batch (all its records are of one topic), the faust agents
  once per record. ``transitions_total`` and ``commands_total`` are read from ``stats`` when
  scraped (keys ``transitions.{reason}``, ``commands.accepted``, ``commands.rejected.{code}``).
* For the internal ``fanout`` topic, ``inputs_total`` counts the member decisions its messages
  caused (re-routed inputs, backfill steps, ticks, static membership commands), not messages.
* Latency: :meth:`Metrics.batch` (once per member batch, after its checkpoint) observes every
  record of a contract input topic in the batch: from the record's Kafka timestamp to the moment
  the batch's outputs were acknowledged by the broker (produced), whether or not the record
  changed a membership. Records of the internal fan-out topic are not observed (their
  timestamps are the worker's own).
* Lag is computed when scraped: for each input partition this worker owns, the partition's
  high-water mark minus the consumer's position (the next offset handed to the processor).
* Backfill progress: the member service reports each backfill step (:meth:`Backfills.step`);
  the total of a backfill is the number of the space's members on the partition when it starts.
"""

from __future__ import annotations

import asyncio
import time
from bisect import bisect_left
from collections import Counter as Tally
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from smartgroups.core.ids import space_prefix
from smartgroups.worker.topology import Topology

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""Prometheus' text exposition format."""

MEMBER_OUTCOMES = {
    "applied": "inputs.applied",
    "noop": "inputs.noop",
    "redelivered": "inputs.redelivered",
    "rerouted": "inputs.rerouted",
}
"""The member service's ``stats`` keys of each input outcome."""

DEFINITION_OUTCOMES = {
    "applied": ("commands.accepted", "commands.rejected"),
    "redelivered": ("definitions.redelivered",),
    "rerouted": ("definitions.rerouted",),
}
"""The definitions service's ``stats`` keys of each input outcome (a rejected command is applied:
its result is published)."""

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
BATCH_BUCKETS = (1, 10, 50, 100, 250, 500, 1000, 2000)
DELIVERY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
"""A checkpoint's delivery is one produce round trip when all is well: milliseconds."""


def topic_labels(topology: Topology) -> dict[str, str]:
    """The ``topic`` label of each full topic name the worker reads (prefix removed)."""
    labels = {name: topology.logical(name) for name in (*topology.member_inputs,)}
    labels[topology.group_changes] = topology.logical(topology.group_changes)
    labels[topology.fanout] = "fanout"
    labels[topology.commands] = "commands"
    return labels


class Outcomes:
    """Attributes the growth of some ``stats`` keys since the last call to a topic."""

    def __init__(
        self, stats: Mapping[str, int], keys: Mapping[str, Iterable[str]], inputs: Counter
    ) -> None:
        self.stats = stats
        self.keys = {outcome: tuple(names) for outcome, names in keys.items()}
        self.inputs = inputs
        self.last = self._read()

    def _read(self) -> dict[str, int]:
        stats = self.stats
        return {o: sum(stats.get(k, 0) for k in names) for o, names in self.keys.items()}

    def attribute(self, topic: str) -> None:
        """Count what the stats gained since the last call as inputs of ``topic`` (a label)."""
        now = self._read()
        for outcome, value in now.items():
            grown = value - self.last[outcome]
            if grown:
                self.inputs.labels(topic, outcome).inc(grown)
        self.last = now


@dataclass(slots=True)
class Backfill:
    scanned: int = 0
    total: int = 0


@dataclass(slots=True)
class Backfills:
    """The backfills in progress on this worker, by (partition, space, group)."""

    running: dict[tuple[int, str, str], Backfill] = field(default_factory=dict)
    finished: int = 0
    count: Callable[[int, str], int] | None = None
    """How many members of a space a partition holds (set by the member path)."""

    def step(
        self, partition: int, space: str, group_id: str, first: bool, scanned: int, last: bool
    ) -> None:
        """One backfill step of ``scanned`` members; ``first`` starts it, ``last`` ends it."""
        key = (partition, space, group_id)
        backfill = self.running.get(key)
        if first or backfill is None:
            total = self.count(partition, space) if self.count is not None else scanned
            backfill = self.running[key] = Backfill(0, total)
        backfill.scanned += scanned
        backfill.total = max(backfill.total, backfill.scanned)
        if last:
            del self.running[key]
            self.finished += 1

    def drop(self, keep: Callable[[int], bool]) -> None:
        """Forget the backfills of partitions this worker no longer owns."""
        for key in [k for k in self.running if not keep(k[0])]:
            del self.running[key]

    def by_partition(self) -> dict[int, tuple[int, int, int]]:
        """partition -> (backfills running, members scanned, members total)."""
        out: dict[int, tuple[int, int, int]] = {}
        for (partition, _, _), b in self.running.items():
            n, s, t = out.get(partition, (0, 0, 0))
            out[partition] = (n + 1, s + b.scanned, t + b.total)
        return out


class BulkHistogram(Collector):
    """A histogram observed a batch at a time: ``prometheus_client.Histogram.observe`` costs
    about a microsecond per value (a lock and a bucket walk each), which on the member loop's
    hot path would be a few per cent of the work; here a batch's values cost one ``bisect``
    each, and the cumulative buckets are computed when scraped."""

    def __init__(self, name: str, documentation: str, buckets: Sequence[float]) -> None:
        self.name = name
        self.documentation = documentation
        self.bounds = [float(b) for b in buckets]
        self.counts = [0] * (len(self.bounds) + 1)  # the last one is +Inf
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    def observe_ages(self, now_ms: float, stamps_ms: Sequence[float]) -> None:
        """Observe ``now_ms - stamp`` in seconds for every stamp (negative ages count as 0)."""
        bounds, counts = self.bounds, self.counts
        total = 0.0
        for stamp in stamps_ms:
            age = (now_ms - stamp) / 1000.0
            age = max(age, 0.0)
            counts[bisect_left(bounds, age)] += 1
            total += age
        self.sum += total

    def collect(self) -> Iterator[HistogramMetricFamily]:
        family = HistogramMetricFamily(self.name, self.documentation)
        cumulative, buckets = 0, []
        for bound, count in zip([*self.bounds, float("inf")], self.counts, strict=True):
            cumulative += count
            buckets.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
        family.add_metric([], buckets, self.sum)
        yield family


class _StatsCollector(Collector):
    """``transitions_total`` and ``commands_total`` from the ``stats`` counter, when scraped."""

    def __init__(self, stats: Mapping[str, int], backfills: Backfills) -> None:
        self.stats = stats
        self.backfills = backfills

    def collect(self) -> Iterator[CounterMetricFamily]:
        transitions = CounterMetricFamily(
            "smartgroups_transitions",
            "Membership transitions emitted, by reason",
            labels=["reason"],
        )
        commands = CounterMetricFamily(
            "smartgroups_commands", "group-changes results, by result and code",
            labels=["result", "code"],
        )  # fmt: skip
        for key, value in sorted(self.stats.items()):
            if key.startswith("transitions."):
                transitions.add_metric([key.removeprefix("transitions.")], value)
            elif key == "commands.accepted":
                commands.add_metric(["accepted", ""], value)
            elif key.startswith("commands.rejected."):
                commands.add_metric(["rejected", key.removeprefix("commands.rejected.")], value)
        backfills = CounterMetricFamily("smartgroups_backfills", "Backfills finished")
        backfills.add_metric([], self.backfills.finished)
        yield transitions
        yield commands
        yield backfills


class Metrics:
    """Every series of this worker (see the module docstring)."""

    def __init__(self, topology: Topology, stats: Tally[str]) -> None:
        self.registry = registry = CollectorRegistry(auto_describe=True)
        self.labels = topic_labels(topology)
        self.inputs = Counter(
            "smartgroups_inputs", "Input records by topic and outcome", ["topic", "outcome"],
            registry=registry,
        )  # fmt: skip
        self.dead_letters = Counter(
            "smartgroups_dead_letters", "Dead letters by source topic and code", ["topic", "code"],
            registry=registry,
        )  # fmt: skip
        self.lag = Gauge(
            "smartgroups_consumer_lag", "Records not yet processed, per input partition owned",
            ["topic", "partition"], registry=registry,
        )  # fmt: skip
        self.latency = BulkHistogram(
            "smartgroups_latency_seconds",
            "Input record timestamp to its outputs produced",
            LATENCY_BUCKETS,
        )
        registry.register(self.latency)
        self.batch_records = Histogram(
            "smartgroups_batch_records", "Records per member batch", buckets=BATCH_BUCKETS,
            registry=registry,
        )  # fmt: skip
        self.batch_seconds = Histogram(
            "smartgroups_batch_seconds", "Member batch processing time, checkpoint included",
            buckets=LATENCY_BUCKETS, registry=registry,
        )  # fmt: skip
        self.checkpoint_delivery = Histogram(
            "smartgroups_checkpoint_delivery_seconds",
            "Member checkpoint handed to the producer to acknowledged by the broker",
            buckets=DELIVERY_BUCKETS, registry=registry,
        )  # fmt: skip
        self.backfills_running = Gauge(
            "smartgroups_backfills_in_progress", "Backfills running", ["partition"],
            registry=registry,
        )  # fmt: skip
        self.backfill_scanned = Gauge(
            "smartgroups_backfill_members_scanned", "Members the running backfills decided",
            ["partition"], registry=registry,
        )  # fmt: skip
        self.backfill_total = Gauge(
            "smartgroups_backfill_members_total", "Members the running backfills decide in all",
            ["partition"], registry=registry,
        )  # fmt: skip
        self.backfills = Backfills()
        registry.register(_StatsCollector(stats, self.backfills))
        self.member_outcomes = Outcomes(
            stats, {o: (k,) for o, k in MEMBER_OUTCOMES.items()}, self.inputs
        )
        self.definition_outcomes = Outcomes(stats, DEFINITION_OUTCOMES, self.inputs)
        self._inputs = frozenset(topology.member_inputs)

    def label(self, topic: str) -> str:
        return self.labels.get(topic, topic)

    def member_inputs(self, topic: str) -> None:
        """The member service's outcomes since the last call were of records of ``topic``."""
        self.member_outcomes.attribute(self.label(topic))

    def definition_inputs(self, topic: str) -> None:
        """The definitions service's outcomes since the last call were of ``topic``'s records."""
        self.definition_outcomes.attribute(self.label(topic))

    # -- hooks -----------------------------------------------------------------------------------
    def dead_letter(self, topic: str, code: str) -> None:
        label = self.label(topic)
        self.dead_letters.labels(label, code).inc()
        self.inputs.labels(label, "dead_lettered").inc()

    def batch(self, batch: Mapping[Any, list[Any]], started: float) -> None:
        """One member batch done, checkpoint included: ``started`` is its ``time.monotonic()``
        at start; the records' Kafka timestamps (ms) are measured against the wall clock now."""
        done = time.monotonic()
        now_ms = time.time() * 1000.0
        size = 0
        for tp, messages in batch.items():
            size += len(messages)
            if tp.topic in self._inputs:
                self.latency.observe_ages(now_ms, [m.timestamp for m in messages])
        self.batch_records.observe(size)
        self.batch_seconds.observe(done - started)

    def checkpoint_delivered(self, seconds: float | None) -> None:
        """A member checkpoint was delivered ``seconds`` after it was handed to the producer
        (None: not known, nothing observed)."""
        if seconds is not None:
            self.checkpoint_delivery.observe(seconds)

    # -- scraping --------------------------------------------------------------------------------
    async def refresh(self, consumers: Iterable[Any], owned: Callable[[int], bool]) -> None:
        """Set the gauges computed when scraped: lag of the ``consumers``' partitions (aiokafka
        or faust consumers) and the backfills of partitions still ``owned``."""
        self.lag.clear()
        for consumer in consumers:
            for tp in sorted(consumer.assignment()):
                if tp.topic not in self.labels:
                    continue
                lag = await _lag(consumer, tp)
                if lag is not None:
                    self.lag.labels(self.label(tp.topic), str(tp.partition)).set(lag)
        self.backfills.drop(owned)
        for gauge in (self.backfills_running, self.backfill_scanned, self.backfill_total):
            gauge.clear()
        for partition, (n, scanned, total) in sorted(self.backfills.by_partition().items()):
            p = str(partition)
            self.backfills_running.labels(p).set(n)
            self.backfill_scanned.labels(p).set(scanned)
            self.backfill_total.labels(p).set(total)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


async def _lag(consumer: Any, tp: Any) -> int | None:
    """High-water mark minus position; ``None`` while either is not known yet."""
    try:
        highwater = consumer.highwater(tp)
        position = await asyncio.wait_for(consumer.position(tp), 1.0)
    except Exception:  # TimeoutError included
        return None
    if highwater is None or highwater < 0 or position is None:
        return None
    return max(0, int(highwater) - int(position))


def count_members(members: Any, partition: int, space: str, chunk: int = 10_000) -> int:
    """How many members of ``space`` the ``members`` table holds on ``partition`` (a key scan,
    once per backfill: the backfill itself reads every one of them)."""
    prefix = space_prefix(space) if space else b""  # "": every space (a reconcile of all)
    count, after = 0, None
    while rows := members.scan(partition, prefix, after=after, limit=chunk):
        count += len(rows)
        after = rows[-1][0]
        if len(rows) < chunk:
            break
    return count
