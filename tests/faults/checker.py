"""The independent invariant checker: reads the output topics with a plain aiokafka consumer.

It imports no smartgroups code and no other test module: what it knows of the worker is the
wire contract (CONTRACT §2 and §4: topic names, keys, the ``member.added`` / ``member.removed``
shape, the compacted ``membership-state``) and a reference fold of the inputs computed by the
scenario (:mod:`tests.faults.workload`). The invariants are those of
``../shared/notes/reliability.md`` §4, checked on what a downstream consumer sees:

* **I1 state**: the compacted ``membership-state`` view (last value per key) and the final
  membership of the change stream (highest version per pair) both equal the reference fold.
* **I2 no loss**: per (space, group, member) the versions seen are exactly 1..n (a lost
  transition leaves a gap or a wrong final state), and every ``membership-state`` entry agrees
  with the last change of its pair (same version).
* **I3 no effective duplicate**: one content per event id (``at`` aside); raw duplicates (the
  same id again, the same content) are counted and reported, not failed, except when the
  scenario says none are allowed.
* **I4 order**: per pair, in offset order, the first occurrence of each id has a strictly
  greater version than the previous one, ``member.added`` at odd versions, ``member.removed`` at
  even ones (added first, strictly alternating).
* **I5 accounting**: the member path's consumer group has committed every input partition up
  to its end offset (the internal inputs the scenario names too, e.g. the fan-out topic), and
  the dead letters are exactly the poison records sent.
* **I6 commit safety**: :class:`CommitSampler` reads, while the faults happen, the committed
  input offsets and *then* the outputs; every output whose cause is a member input below the
  committed offset seen must already be in that sample (outputs acked before the commit), and
  no partition's committed offset ever goes back (faust #216/#221: no regression).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

Pair = tuple[str, str, str]
MEMBER_INPUTS = ("member-changes", "property-changes", "form-answers")


@dataclass(frozen=True)
class Rec:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]


async def _read(bootstrap: str, topic: str, timeout: float = 30.0) -> list[Rec]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        group_id=None,
        isolation_level="read_committed",
        request_timeout_ms=10_000,
    )
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not tps:
            return []
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        out: list[Rec] = []
        pending = {tp for tp in tps if ends[tp] > 0}
        deadline = time.monotonic() + timeout
        while pending:
            if time.monotonic() > deadline:
                raise TimeoutError(f"could not read {topic} to its end in {timeout}s")
            batch = await consumer.getmany(timeout_ms=300)
            for messages in batch.values():
                out.extend(
                    Rec(m.partition, m.offset, m.key, m.value, tuple(m.headers or ()))
                    for m in messages
                )
            for tp in list(pending):
                if await consumer.position(tp) >= ends[tp]:
                    pending.discard(tp)
        out.sort(key=lambda r: (r.partition, r.offset))
        return out
    finally:
        await consumer.stop()


async def _ends_and_committed(
    bootstrap: str, group: str, topics: list[str]
) -> tuple[dict[tuple[str, int], int], dict[tuple[str, int], int]]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
        raw = await admin.list_consumer_group_offsets(group)
        committed = {(tp.topic, tp.partition): meta.offset for tp, meta in raw.items()}
    finally:
        await admin.close()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        tps = []
        for topic in topics:
            partitions = consumer.partitions_for_topic(topic)
            if not partitions:
                await consumer._client.force_metadata_update()
                partitions = consumer.partitions_for_topic(topic) or set()
            tps += [TopicPartition(topic, p) for p in partitions]
        ends = {(tp.topic, tp.partition): o for tp, o in (await consumer.end_offsets(tps)).items()}
    finally:
        await consumer.stop()
    return ends, committed


def read_topic(bootstrap: str, topic: str) -> list[Rec]:
    """Every record now on ``topic`` (read_committed), in (partition, offset) order."""
    return asyncio.run(_read(bootstrap, topic))


def _committed(bootstrap: str, group: str) -> dict[tuple[str, int], int]:
    async def go() -> dict[tuple[str, int], int]:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5_000)
        await asyncio.wait_for(admin.start(), 10)
        try:
            raw = await asyncio.wait_for(admin.list_consumer_group_offsets(group), 10)
        finally:
            await admin.close()
        return {(tp.topic, tp.partition): meta.offset for tp, meta in raw.items()}

    return asyncio.run(go())


class CommitSampler:
    """I6: in a thread, every ``every`` seconds, read the committed input offsets of ``group``,
    then the ids on ``changes``; keep (committed, ids) samples for :meth:`violations`."""

    def __init__(self, bootstrap: str, group: str, changes: str, every: float = 1.0) -> None:
        self.bootstrap, self.group, self.changes, self.every = bootstrap, group, changes, every
        self.samples: list[tuple[dict[tuple[str, int], int], set[str]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> CommitSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(60)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                committed = _committed(self.bootstrap, self.group)
                ids = {
                    json.loads(r.value)["id"]
                    for r in asyncio.run(_read(self.bootstrap, self.changes, 10))
                    if r.value is not None
                }
            except Exception:  # the broker is down or slow: no sample this time
                continue
            self.samples.append((committed, ids))

    def violations(self, changes: list[dict[str, Any]], prefix: str) -> list[str]:
        """Outputs caused by a member input below an offset committed in some sample, yet
        absent from that sample; and committed offsets that went back between two samples."""
        found = []
        high: dict[tuple[str, int], int] = {}
        for committed, _ in self.samples:
            for tp, offset in committed.items():
                if offset < high.get(tp, -1):
                    found.append(f"commit of {tp} went back from {high[tp]} to {offset}")
                high[tp] = max(offset, high.get(tp, -1))
        for committed, ids in self.samples:
            for event in changes:
                cause = event.get("cause") or {}
                if cause.get("kind") != "event" or event["id"] in ids:
                    continue
                topic = str(cause.get("topic", ""))
                tp = (topic if topic.startswith(prefix) else prefix + topic, cause.get("partition"))
                if tp in committed and int(cause["offset"]) < committed[tp]:
                    found.append(f"{event['id']} (cause {tp}@{cause['offset']} < {committed[tp]})")
        return sorted(set(found))


@dataclass
class Verdict:
    """What the checker found; ``held`` maps I1..I6 to True/False (None: not checked)."""

    held: dict[str, bool | None] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    outputs: int = 0
    raw_duplicates: int = 0
    dead_letters: int = 0

    @property
    def ok(self) -> bool:
        return all(v is not False for v in self.held.values())

    def summary(self) -> str:
        marks = " ".join(
            f"{name}={'-' if v is None else 'ok' if v else 'FAIL'}"
            for name, v in sorted(self.held.items())
        )
        return f"{marks} (outputs {self.outputs}, raw dups {self.raw_duplicates})"


def check(
    bootstrap: str,
    prefix: str,
    member_group: str,
    expected: set[Pair],
    *,
    dead_letters: int = 0,
    sampler: CommitSampler | None = None,
    raw_duplicates_allowed: bool = True,
    internal_inputs: tuple[str, ...] = (),
) -> Verdict:
    """Check I1..I6 on the topics of ``prefix`` against the ``expected`` final memberships."""
    verdict = Verdict()
    change_recs = read_topic(bootstrap, prefix + "membership-changes")
    state_recs = read_topic(bootstrap, prefix + "membership-state")
    letters = read_topic(bootstrap, prefix + "dead-letters")
    changes = [json.loads(r.value) for r in change_recs if r.value is not None]
    verdict.outputs = len(changes)
    verdict.dead_letters = len(letters)

    # I3: one content per id.
    bodies: dict[str, str] = {}
    for event in changes:
        body = json.dumps({k: v for k, v in event.items() if k != "at"}, sort_keys=True)
        if event["id"] in bodies:
            verdict.raw_duplicates += 1
            if bodies[event["id"]] != body:
                verdict.problems.append(
                    f"I3: two contents under {event['id']}: {bodies[event['id']]} then {body}"
                )
        bodies.setdefault(event["id"], body)
    i3 = not any(p.startswith("I3") for p in verdict.problems)
    if not raw_duplicates_allowed and verdict.raw_duplicates:
        verdict.problems.append(f"I3: {verdict.raw_duplicates} raw duplicates where none allowed")
        i3 = False
    verdict.held["I3"] = i3

    # I4: per pair in offset order (records are keyed by member: one partition per pair).
    seen: set[str] = set()
    last: dict[Pair, dict[str, Any]] = {}
    versions: dict[Pair, set[int]] = defaultdict(set)
    i4 = True
    for event in changes:
        pair = (event["space"], event["group_id"], event["member_id"])
        versions[pair].add(event["version"])
        if event["id"] in seen:
            continue
        seen.add(event["id"])
        want = "member.added" if event["version"] % 2 else "member.removed"
        previous = last.get(pair)
        if event["type"] != want or (previous and event["version"] <= previous["version"]):
            i4 = False
            verdict.problems.append(f"I4: {event['id']} {event['type']} after {previous}")
        if not previous or event["version"] > previous["version"]:
            last[pair] = event
    verdict.held["I4"] = i4

    # I2: versions 1..n per pair, and the state topic agrees with each pair's last change.
    i2 = True
    for pair, seen_versions in versions.items():
        if sorted(seen_versions) != list(range(1, len(seen_versions) + 1)):
            i2 = False
            verdict.problems.append(f"I2: {pair} versions {sorted(seen_versions)}")
    compacted: dict[bytes | None, bytes | None] = {}
    for r in state_recs:
        compacted[r.key] = r.value
    state: set[Pair] = set()
    for key, value in compacted.items():
        if value is None:
            continue
        doc = json.loads(value)
        pair = (doc["space"], doc["group_id"], doc["member_id"])
        state.add(pair)
        if key != ":".join(pair).encode():
            i2 = False
            verdict.problems.append(f"I2: state key {key!r} holds {pair}")
        change = last.get(pair)
        if change is None or change["version"] != doc["version"]:
            i2 = False
            verdict.problems.append(f"I2: state {pair} v{doc['version']} vs change {change}")
    verdict.held["I2"] = i2

    # I1: both views equal the reference.
    final = {pair for pair, event in last.items() if event["type"] == "member.added"}
    i1 = final == expected and state == expected
    if not i1:
        verdict.problems.append(
            f"I1: changes missing {sorted(expected - final)[:5]}"
            f" extra {sorted(final - expected)[:5]};"
            f" state missing {sorted(expected - state)[:5]} extra {sorted(state - expected)[:5]}"
        )
    verdict.held["I1"] = i1

    # I5: everything consumed and committed; dead letters exactly the poison sent. Internal
    # inputs keep growing (the worker's ticks): their ends are read first, then must be reached.
    inputs = [prefix + t for t in MEMBER_INPUTS]
    floor: dict[tuple[str, int], int] = {}
    if internal_inputs:
        floor, _ = asyncio.run(_ends_and_committed(bootstrap, member_group, list(internal_inputs)))
        time.sleep(3)
    ends, committed = asyncio.run(
        _ends_and_committed(bootstrap, member_group, inputs + list(internal_inputs))
    )
    ends |= floor
    behind = {
        tp: (committed.get(tp), end)
        for tp, end in ends.items()
        if end and (committed.get(tp, 0) < end if tp in floor else committed.get(tp, 0) != end)
    }
    i5 = not behind and len(letters) == dead_letters
    if not i5:
        verdict.problems.append(
            f"I5: uncommitted {behind}; dead letters {len(letters)} of {dead_letters}"
        )
    verdict.held["I5"] = i5

    # I6: from the samples taken during the faults.
    if sampler is None:
        verdict.held["I6"] = None
    else:
        bad = sampler.violations(changes, prefix)
        verdict.held["I6"] = not bad and bool(sampler.samples)
        if bad:
            verdict.problems.append(f"I6: {bad[:5]}")
        elif not sampler.samples:
            verdict.problems.append("I6: no sample could be taken")
    return verdict
