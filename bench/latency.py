"""Open-loop latency: send on a fixed schedule, match outputs to inputs, no coordinated omission.

:func:`open_loop` sends pre-generated events at ``rate`` per second for ``seconds``: event *i* is
*intended* at ``t0 + i / rate`` and is sent as soon as that instant has passed, whether or not
the system kept up (a slow system makes the sender late, and that lateness counts against it).
A consumer reads ``membership-changes`` from its end offsets, and every output whose
``cause.event_id`` is one of ours gives one sample per input event (its first output):

* ``e2e`` — consume time minus intended send time (what a downstream service sees);
* ``processing`` — the output's ``at`` (emission time) minus intended send time.

A share of the events are *probes* (:meth:`bench.workload.Workload.probe`) that always change a
membership, so every partition yields samples whatever the mix does. The first ``warmup_s`` of
the schedule is discarded. Probes still unanswered ``grace_s`` after the last send are reported
as ``missing`` (and bound ``max`` from below).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bench.workload import Event


@dataclass
class LatencyResult:
    """Samples (ms) and summary of one open-loop run."""

    rate: float
    seconds: float
    sent: int = 0
    expected: int = 0
    e2e_ms: list[float] = field(default_factory=list)
    processing_ms: list[float] = field(default_factory=list)
    max_send_lag_ms: float = 0.0
    missing: int = 0

    def summary(self) -> dict[str, Any]:
        return {
            "rate_eps": round(self.rate, 1),
            "seconds": self.seconds,
            "sent": self.sent,
            "samples": len(self.e2e_ms),
            "missing_probes": self.missing,
            "max_send_lag_ms": round(self.max_send_lag_ms, 1),
            **percentiles(self.e2e_ms),
            "processing": percentiles(self.processing_ms),
        }


def percentiles(samples: list[float]) -> dict[str, float | None]:
    """p50 / p99 / max (nearest rank) of ``samples`` in ms, rounded to 0.1 ms."""
    if not samples:
        return {"p50": None, "p99": None, "max": None}
    ordered = sorted(samples)

    def rank(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)

    return {"p50": rank(0.50), "p99": rank(0.99), "max": round(ordered[-1], 1)}


def _at_ms(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000


async def _output_consumer(bootstrap: str, topic: str) -> AIOKafkaConsumer:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    parts = consumer.partitions_for_topic(topic)
    if not parts:
        await consumer._client.force_metadata_update()
        parts = consumer.partitions_for_topic(topic) or set()
    tps = [TopicPartition(topic, p) for p in sorted(parts)]
    consumer.assign(tps)
    await consumer.seek_to_end(*tps)
    for tp in tps:  # resolve the end positions now, before anything is sent
        await consumer.position(tp)
    return consumer


async def open_loop(
    bootstrap: str,
    topic_of: Callable[[str], str],
    events: Iterable[Event],
    *,
    rate: float,
    seconds: float,
    probe_ids: set[str],
    warmup_s: float | None = None,
    grace_s: float = 10.0,
    stop: asyncio.Event | None = None,
) -> LatencyResult:
    """Run the schedule (see the module docstring); ``topic_of`` maps logical → full names.

    ``warmup_s`` defaults to 10 % of ``seconds``; a set ``stop`` ends the schedule early.
    """
    warmup = seconds * 0.1 if warmup_s is None else warmup_s
    planned = [(topic_of(e.topic), e.key, e.value["id"], orjson.dumps(e.value)) for e in events]
    planned = planned[: int(rate * seconds)]
    result = LatencyResult(rate=rate, seconds=seconds, sent=len(planned))
    intended: dict[str, float] = {}
    seen: set[str] = set()
    consumer = await _output_consumer(bootstrap, topic_of("membership-changes"))
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
    await producer.start()
    done_sending = asyncio.Event()
    warm_until = 0.0
    sent_probes: set[str] = set()

    async def consume() -> None:
        while True:
            batches = await consumer.getmany(timeout_ms=50)
            now_ms = time.time() * 1000
            for messages in batches.values():
                for msg in messages:
                    doc = orjson.loads(msg.value)
                    eid = (doc.get("cause") or {}).get("event_id")
                    sent_ms = intended.get(eid)
                    if sent_ms is None or eid in seen:
                        continue
                    seen.add(eid)
                    if sent_ms >= warm_until:
                        result.e2e_ms.append(now_ms - sent_ms)
                        result.processing_ms.append(_at_ms(doc["at"]) - sent_ms)
            if done_sending.is_set() and sent_probes <= seen:
                return

    reader = asyncio.create_task(consume())
    try:
        start_wall = time.time() + 0.2
        start_mono = time.monotonic() + 0.2
        warm_until = (start_wall + warmup) * 1000
        for i, (topic, key, eid, value) in enumerate(planned):
            if stop is not None and stop.is_set():
                result.sent = i
                break
            due = start_mono + i / rate
            delay = due - time.monotonic()
            if delay > 0.001:
                await asyncio.sleep(delay)
            lag = (time.monotonic() - due) * 1000
            result.max_send_lag_ms = max(result.max_send_lag_ms, lag)
            intended[eid] = (start_wall + i / rate) * 1000
            await producer.send(topic, value=value, key=key)
        await producer.flush()
        sent_probes.update(probe_ids & intended.keys())
        done_sending.set()
        result.expected = len(sent_probes)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(reader), grace_s)
        missing = sent_probes - seen
        result.missing = len(missing)
        if missing:  # unanswered probes: at least this late
            floor = time.time() * 1000 - min(intended[e] for e in missing)
            result.e2e_ms.append(floor)
    finally:
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
        await producer.stop()
        await consumer.stop()
    return result
