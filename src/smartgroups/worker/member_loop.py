"""The member path as batches on its own Kafka consumer (``SMARTGROUPS_MEMBER_PATH=batch``).

faust's per-record stream path costs 120 to 270 µs of CPU per record on this machine, against
12 µs for a raw aiokafka consume→produce pipe (``bench/README.md``): whatever the core does, a
member path that is a faust agent cannot pass a few thousand events per second. So the member
path can run as a loop of its own, inside the faust app's lifecycle (a ``mode`` service started
and stopped with the app), with its own consumer group ``{app}-members``, its own producer and
its own RocksDB tables; the definitions agent, the timer and the web server stay faust's.

Each fetched batch (:meth:`MemberLoop._batch`), under :attr:`MemberLoop.lock`: every record,
per partition in offset order, goes to the same
:class:`~smartgroups.service.members.MemberService` the agent uses. State writes go to a
:class:`~smartgroups.worker.batch_table.BatchTable` overlay; outputs join per-partition producer
batches (:mod:`smartgroups.worker.batch_producer`) that wait for the checkpoint.

**Checkpoint** as soon as the loop has caught up with its inputs (a fetch returned fewer
records than it may: so at low and moderate rates after every fetched batch, and outputs leave
milliseconds after their input), and under a backlog every ``SMARTGROUPS_COMMIT_INTERVAL``
(0.1 s) or :data:`CHECKPOINT_RECORDS` records; during a backfill, as soon as the last one is
delivered if live inputs wait in this one, the backfill changing at most
:data:`BACKFILL_CHANGES_PER_CHECKPOINT` member records while a checkpoint is delivered (live
outputs waited for checkpoints swollen with backfill work: p99 483 ms at 1,178 inputs/s); also,
waited for whole, before partitions are revoked and when the worker stops. It is **pipelined**:
sealed (:meth:`MemberLoop._seal`), then finished (:meth:`MemberLoop._finish`) while the loop
already processes the next records:

1. seal: the outputs and one changelog record per key changed since the last checkpoint
   (``{app}-{table}-changelog``, the key's partition; the member records last) are handed to
   the producer together. On one broker they travel in one produce request, so a crash of the
   worker leaves consumers seeing the outputs of exactly the state the changelogs hold (an
   earlier version delivered the outputs first and the records a round trip later: a SIGKILL
   in between let a replay give a transition already seen another cause). The tables' changes
   are sealed (:meth:`~smartgroups.worker.batch_table.BatchTable.seal`): still read by the
   service, under the next records' writes, not yet in RocksDB;
2. finish, once they are delivered (the loop looks between its turns, and waits at most a
   millisecond for records meanwhile): the sealed state is written to RocksDB, one write
   batch per partition, with the changelog offset it reflects;
3. then the input offsets are committed, in the background (:meth:`MemberLoop._commit_next`;
   one commit at a time, the offsets of the checkpoints finished meanwhile go together in the
   next);
4. then member records may drop the outbox entries of the inputs it made durable
   (:meth:`~smartgroups.service.members.MemberService.settle`): those cannot be re-delivered.

One checkpoint is in flight at a time: the next is sealed only after the last is finished, so
on Kafka and in RocksDB checkpoints keep their order, and the records processed meanwhile
exist only in memory (a crash replays them from the committed offsets). What the overlap buys:
the delivery round trip (produce, acks from the replicas) and the offset commit no longer stall
processing (at 1,900 inputs/s, 100 groups: the commit alone held the loop 6 ms per checkpoint).

A crash anywhere leaves RocksDB *behind* the changelog, never ahead of it: on assignment each
partition's tables are brought up to the end of their changelogs from the stored offset (all of
it when the data directory was lost). Inputs after the last committed offset are read again; one
whose member record already applied it re-sends the outputs the record kept (its outbox: the
changelog may have been delivered without the outputs, across brokers), byte for byte; one
whose record did not is applied again, with the same deterministic ids and per-pair versions.

Assignment: one worker owns the same partition number of every topic it reads (the tables are
per partition number; aiokafka's default round robin split them): the query API's assignor
(:func:`smartgroups.worker.peers.address_assignor`), which also carries each worker's HTTP
address.

Rebalances: on revocation the listener waits for the batch in progress (the lock),
checkpoints, then closes the revoked partitions; on assignment it restores the new
ones before the next batch. A record whose processing fails by its own doing is dead-lettered
(``processing_error``); any other failure stops the worker uncommitted, as with the agents
(:func:`smartgroups.worker.edge.blames_record`).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from mode import Service

from smartgroups.errors import Fenced
from smartgroups.service.members import MemberService
from smartgroups.service.ports import Headers, Record, source_name
from smartgroups.wire.deadletter import DeadLetter
from smartgroups.worker import crashpoint, heap
from smartgroups.worker.batch_producer import BATCH_BYTES, BatchProducer, Submission
from smartgroups.worker.batch_table import BatchTable
from smartgroups.worker.edge import blames_record, record_extra, send_dead_letter
from smartgroups.worker.metrics import count_members
from smartgroups.worker.peers import address_assignor, advertised
from smartgroups.worker.rocks import RocksTable
from smartgroups.worker.runtime import Runtime

log = logging.getLogger("smartgroups.members")

MEMBER_TABLES = ("members", "groups", "due", "index")
"""The member path's tables; each has the changelog topic the topology names for it."""

MAX_RECORDS = 2000
"""Records per fetched batch at most (``getmany``'s ``max_records``)."""

CHANGELOG_ORDER = ("groups", "due", "index", "members")
"""The order a checkpoint appends the tables' changelog records in: the member records (which
say which inputs they applied, and hold the scan jobs' cursors after the records they scanned)
last."""

SLICE_SECONDS = 0.01
"""How long one loop turn spends on backfills, and on members due, before fetched inputs get
their turn again (live latency stays within a batch and a slice or two)."""

IDLE_POLL_MS = 200
"""How long a fetch waits for records when the loop has nothing else to do."""

DELIVERY_POLL_MS = 1
"""How long a fetch waits for records while a checkpoint is being delivered (then the loop
looks whether the delivery is done): records that arrive meanwhile are processed at once,
instead of after the delivery."""

SESSION_TIMEOUT_MS = 15_000
HEARTBEAT_INTERVAL_MS = 3_000
PAUSE_FENCE_S = (SESSION_TIMEOUT_MS - HEARTBEAT_INTERVAL_MS) / 1000
"""A process paused this long (SIGSTOP, a VM or GC pause: its event loop, heartbeats included,
stood still) may have outlived its group membership: its partitions may belong to another
worker, which replays the same inputs. It sends nothing more (:meth:`MemberLoop._fence`)."""

PAUSE_WATCH_S = 0.5
"""How often the pause watch (:meth:`MemberLoop._watch_pauses`) looks at the clock."""

YIELD_SECONDS = 0.02
"""How long the loop processes a fetched batch before it lets the event loop's other tasks
run (aiokafka's heartbeat, producer and fetcher)."""

STARTUP_WAIT_S = 30.0
"""How long the loop waits at start for the definitions side (faust's consumer and the
``catalogs`` recovery) before it consumes anyway (see :meth:`MemberLoop._await_definitions`)."""

BACKFILL_CHANGES_PER_CHECKPOINT = 125
"""Member records a backfill changes while a checkpoint is being delivered, at most: then the
loop processes live inputs only until the delivery is done, so the next checkpoint, which
carries the live inputs' outputs, stays small enough to be delivered quickly. The members a
backfill decides and leaves as they were do not count: they add nothing to the checkpoint (a
cap of 1,000 members decided, whatever they changed, held a backfill of a group few members
join to one round trip per 1,000 members). Measured on the benchmark's backfill, runs of two
builds one after the other (``docs/decisions.md``): 125 against 250 changes, backfill 16,133
and 16,363 against 17,372 and 16,030 members/s, live p99 93 and 104 against 187 and 191 ms;
60 changes gained nothing on the tail (p99 99 and 140 ms) and cost backfill speed (12,868 and
15,785 members/s); 1,000 changes: p99 284 and 312 ms."""

CHECKPOINT_RECORDS = 50_000
"""Records processed since the last checkpoint that force one (bounds the state held in
memory between checkpoints)."""


def _no_crash(phase: str) -> None:
    """A checkpoint with no applied input is no crash point (F1 counts batches)."""


@dataclass(slots=True)
class _InFlight:
    """A sealed checkpoint, being delivered: what :meth:`MemberLoop._finish` completes."""

    submission: Submission
    offsets: dict[TopicPartition, int]
    marks: dict[int, dict[str, int]]
    measured: list[tuple[dict[TopicPartition, list[Any]], float]]
    crash: Callable[[str], None]


def _settle_heap() -> None:
    """Collect garbage once, then put every object alive out of the collector's reach
    (``gc.freeze``): called when partitions were assigned and restored, before they are served.

    The worker's heap is mostly long-lived (the libraries, compiled groups, caches filled by a
    restore), and CPython's oldest-generation collections walk all of it: at 100 groups they
    paused the loop for 50 to 90 ms, the largest latencies the benchmark saw. Frozen, the
    collections while serving walk only what was made since (7 to 47 ms in the same run). The
    cost: a cycle among frozen objects that becomes garbage is freed at the next assignment's
    collection at the earliest (:func:`gc.unfreeze` first), not before. Then the C heap's free
    memory is returned to the system (:func:`.heap.trim`).
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    heap.trim()  # what the restore read and freed goes back to the system


def _checkpoint_key(table: str) -> bytes:
    """Where a partition's ``checkpoints`` keep the last changelog offset applied to ``table``."""
    return b"changelog-offset:" + table.encode()


class BatchPublisher:
    """The service's :class:`~smartgroups.service.ports.Publisher` on the loop's own producer:
    records join per-partition batches (:class:`~smartgroups.worker.batch_producer.BatchProducer`),
    handed to the producer and checked at the checkpoint."""

    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime
        self.names = runtime.topology.roles()
        self.batches: BatchProducer  # set when the loop starts

    async def send(
        self,
        role: str,
        key: bytes | None,
        value: bytes | None,
        partition: int | None = None,
        headers: Headers | None = None,
    ) -> None:
        await self.batches.append(self.names[role], key, value, partition, headers)

    async def dead_letter(self, record: Record, letter: DeadLetter) -> None:
        await send_dead_letter(self, self.rt, record, letter)


class MemberLoop(Service, ConsumerRebalanceListener):  # type: ignore[misc]
    """The member path's consumer loop (see the module docstring)."""

    def __init__(self, runtime: Runtime, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rt = runtime
        settings, topology = runtime.settings, runtime.topology
        root = settings.data_dir / "members"  # beside faust's own v1/ directory
        self.tables = {name: BatchTable(RocksTable(root, name)) for name in MEMBER_TABLES}
        self.checkpoints = RocksTable(root, "checkpoints")
        self.sources = (*topology.member_inputs, topology.fanout)
        self.lock = asyncio.Lock()
        self.assigned: set[int] = set()
        self.ready: set[int] = set()
        self.rebalancing = True
        self.offsets: dict[TopicPartition, int] = {}
        self.uncommitted = 0  # records processed since the last checkpoint
        self.live = 0  # of those, input records (not backfill or due-time steps)
        self.backfilled = 0  # member records changed by backfills since the last checkpoint
        self.untrimmed = 0  # records processed since the C heap was last trimmed (heap.trim)
        self.inflight: _InFlight | None = None  # the checkpoint being delivered
        self.awake_at = time.monotonic()  # the pause watch's last turn (see _fence)
        self.paused: float | None = None  # the longest pause seen, once past PAUSE_FENCE_S
        self.committing: asyncio.Task[None] | None = None  # finished checkpoints' offsets
        self.finished_offsets: dict[TopicPartition, int] = {}  # of finished checkpoints
        self.unsettled: dict[int, dict[str, int]] = {}  # their marks (MemberService.settle)
        self.commit_crash: Callable[[str], None] = _no_crash
        self.measured: list[tuple[dict[TopicPartition, list[Any]], float]] = []  # for metrics
        self.interval = settings.commit_interval
        self.checkpointed_at = time.monotonic()
        self.next_tick = 0.0  # the first loop turn checks the members due
        self.ticking = False  # a due-time check has slices left
        self.consumer: AIOKafkaConsumer  # made when the loop starts (see on_start)
        self.producer: AIOKafkaProducer
        self.publisher = BatchPublisher(runtime)
        self.service = MemberService(
            members=self.tables["members"],
            groups=self.tables["groups"],
            due=self.tables["due"],
            publisher=self.publisher,
            topics=topology,
            clock=runtime.clock,
            scan_chunk=settings.scan_chunk,
            stats=runtime.stats,
            inline_scans=True,  # backfills are stepped here, between fetched batches
            index=self.tables["index"],
        )
        runtime.metrics.backfills.count = lambda p, space: count_members(
            self.tables["members"], p, space
        )
        self.service.on_scan = runtime.metrics.backfills.step

    # -- lifecycle (mode) ----------------------------------------------------------------------
    async def on_start(self) -> None:
        # aiokafka's clients bind to the running loop: they are made here, not in __init__.
        settings, topology = self.rt.settings, self.rt.topology
        options = settings.kafka_client_options()
        self.consumer = AIOKafkaConsumer(
            **options,
            group_id=topology.member_group,
            # Co-partitioned: a worker owns partition N of every input and the fan-out, since
            # the tables are per partition number. aiokafka's default (round robin over all
            # topic-partitions) gave member-changes-1 to one worker and property-changes-1 to
            # another, both writing partition 1's state (issue 19, F6/F7).
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=SESSION_TIMEOUT_MS,
            heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS,
            max_partition_fetch_bytes=4 << 20,
            # whole partition numbers per worker, and its HTTP address for the query API
            partition_assignment_strategy=(address_assignor(advertised(settings)),),
        )
        self.producer = AIOKafkaProducer(
            **options,
            acks="all",
            enable_idempotence=True,
            linger_ms=5,
            max_batch_size=BATCH_BYTES,
        )
        self.publisher.batches = self.batches = BatchProducer(self.producer)
        self.awake_at = time.monotonic()  # the pause watch counts from the start
        await self.producer.start()
        self.consumer.subscribe(list(self.sources), listener=self)
        await self.consumer.start()

    async def on_stop(self) -> None:
        async with self.lock:  # the batch in progress finishes first
            if self.ready and not self.rt.failure:
                try:
                    await self._checkpoint()
                except Exception as exc:  # stopping anyway: the next start replays it
                    log.warning("members: last checkpoint failed (%s); replayed on start", exc)
            await self.consumer.stop()  # leaves the group: the partitions move at once
            await self.producer.stop()
            for table in self.tables.values():
                table.close()
            self.checkpoints.close()

    async def _await_definitions(self) -> None:
        """Wait, at start, until the definitions side is ready: faust joined its group and
        restored the ``catalogs`` (at most :data:`STARTUP_WAIT_S`; a definitions side that does
        not come up shows in ``/v1/health`` then, while members are processed anyway).

        Both start in one event loop. Measured (``make bench``, 10 groups, 30,000 inputs
        waiting): the loop working through its backlog, yielding every
        :data:`YIELD_SECONDS`, stretched faust's start from 0.7 to 1.0 s to 4.7 s (each of its
        round trips waited for a yield), so the definitions agent, the query API's reads of
        definitions and ``/v1/health`` came seconds late. Meanwhile the member tables are
        restored: the consumer joins and the listener restores without this loop."""
        app = self.rt.app
        started = time.monotonic()
        deadline = started + STARTUP_WAIT_S
        while not (app.tables.actives_ready and not app.rebalancing):
            if self.should_stop:
                return
            if time.monotonic() >= deadline:
                log.warning(
                    "members: the definitions side is not ready after %.0f s; consuming anyway",
                    STARTUP_WAIT_S,
                )
                return
            await asyncio.sleep(0.01)
        log.info(
            "members: the definitions side is ready (%.2f s); consuming",
            time.monotonic() - started,
        )

    @Service.task
    async def _run(self) -> None:
        await self._await_definitions()
        while not self.should_stop:
            # With a backfill to step, ask only for what is already fetched; with a checkpoint
            # being delivered, wait a millisecond at most (new records or the delivery,
            # whichever comes first, get the next turn); with work uncommitted, ask for what
            # is fetched: nothing means the loop caught up with its inputs.
            busy = self.service.scanning() and not self._scans_wait()
            due = self.ticking or time.monotonic() >= self.next_tick
            if busy or due:
                wait_ms = 0
            elif self.inflight is not None:
                wait_ms = DELIVERY_POLL_MS
            else:
                wait_ms = 0 if self.uncommitted else IDLE_POLL_MS
            try:
                batch = await self.consumer.getmany(timeout_ms=wait_ms, max_records=MAX_RECORDS)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.should_stop:  # the consumer was stopped under the fetch: shutting down
                    return
                await self._halt("the member path could not fetch", exc)
                return
            if not batch and wait_ms == IDLE_POLL_MS:
                self._idle()
            async with self.lock:
                if batch and not await self._batch(batch):
                    return
                if busy and not await self._step_scans():
                    return
                if due and not await self._step_due():
                    return
                # Caught up: the fetch returned less than it could (a backlog fills it).
                caught_up = sum(len(m) for m in batch.values()) < MAX_RECORDS
                idle = caught_up and not self.service.scanning() and not self.ticking
                # The checkpoint in flight is finished once delivered; the next one is sealed
                # only after it (one at a time).
                finish = self.inflight is not None and self.inflight.submission.done()
                if finish and not await self._try(self._finish):
                    return
                if self._checkpoint_due(idle=idle) and not await self._try(self._seal):
                    return
                if self._commit_waiting() and not await self._try(self._commit_next):
                    return  # a commit failed
            # A fetch that finds records buffered returns without yielding: one event-loop turn
            # here lets the producer send and read the checkpoint's delivery (and the fetcher
            # fetch) while the loop works through a backlog.
            await asyncio.sleep(0)

    # -- one batch -----------------------------------------------------------------------------
    async def _batch(self, batch: dict[TopicPartition, list[Any]]) -> bool:
        """Process one fetched batch and hand its outputs to the producer; False when the worker
        must stop. Called under :attr:`lock`."""
        started = yielded = time.monotonic()
        for tp, messages in batch.items():
            if tp.partition not in self.ready:
                continue  # revoked since the fetch: its new owner reads it
            for message in messages:
                if time.monotonic() - yielded >= YIELD_SECONDS:
                    # A batch of 2,000 records at 1,000 groups takes seconds: the heartbeats,
                    # the producer and the fetcher get a turn (a starved heartbeat lost the
                    # group membership). The lock stays held: queries still read between
                    # batches.
                    await asyncio.sleep(0)
                    yielded = time.monotonic()
                record = Record.from_message(message)
                try:
                    await self.service.handle(record)
                except Exception as exc:
                    if not blames_record(exc):
                        await self._halt(f"could not process {record.coordinates()}", exc)
                        return False
                    log.exception(
                        "members: failed on %s", record.coordinates(), extra=record_extra(record)
                    )
                    await self.publisher.dead_letter(
                        record,
                        DeadLetter("processing_error", "the processor failed on this record"),
                    )
            self.offsets[tp] = messages[-1].offset + 1
            self.uncommitted += len(messages)
            self.live += len(messages)
            self.untrimmed += len(messages)
            self.rt.metrics.member_inputs(tp.topic)
        self.rt.stats["batches"] += 1
        self.measured.append((batch, started))  # measured when its outputs are delivered
        return True

    def _idle(self) -> None:
        """A whole fetch wait brought nothing and nothing waits for a checkpoint: return the C
        heap's free memory to the system if records were processed since the last time
        (:mod:`.heap`)."""
        if self.untrimmed >= heap.TRIM_AFTER_RECORDS and heap.trim():
            self.untrimmed = 0
            self.rt.stats["heap.trims"] += 1

    async def _step_scans(self) -> bool:
        """Decide backfill members for at most :data:`SLICE_SECONDS`, in steps of at most
        ``SMARTGROUPS_SCAN_CHUNK`` members; False when the worker must stop.

        The event loop's other tasks get a turn after each step: a checkpoint's delivery takes
        several turns of the producer's and the fetcher's tasks (send, read the answer, resolve
        the futures), and one turn per slice stretched it, which live inputs waited for during
        a backfill (two runs each: live p50 94 and 93 → 83 and 80 ms; p99 within the noise)."""
        deadline = time.monotonic() + SLICE_SECONDS
        try:
            while self.service.scanning():
                step = await self.service.step_scans(self.rt.settings.scan_chunk)
                self.uncommitted += step.decided
                self.untrimmed += step.decided
                self.backfilled += step.changed
                if not step.decided or time.monotonic() >= deadline or self._scans_wait():
                    break
                await asyncio.sleep(0)
        except Exception as exc:
            await self._halt("could not step a backfill", exc)
            return False
        return True

    async def _step_due(self) -> bool:
        """Decide the members whose due instant has come (an in-process tick every
        ``SMARTGROUPS_TICK_INTERVAL``) for at most :data:`SLICE_SECONDS`, partition by
        partition in steps of at most ``SMARTGROUPS_SCAN_CHUNK``; the rest at the next turns.
        False when the worker must stop."""
        deadline = time.monotonic() + SLICE_SECONDS
        caught_up = True
        try:
            for partition in sorted(self.ready):
                done = False
                while not done and time.monotonic() < deadline:
                    decided, done = await self.service.step_due(
                        partition, self.rt.settings.scan_chunk
                    )
                    self.uncommitted += decided
                caught_up = caught_up and done
        except Exception as exc:
            await self._halt("could not decide the members due", exc)
            return False
        self.ticking = not caught_up
        if caught_up:
            self.next_tick = time.monotonic() + self.rt.settings.tick_interval
        return True

    # -- checkpoint ----------------------------------------------------------------------------
    def _checkpoint_due(self, *, idle: bool) -> bool:
        """Whether to seal a checkpoint now: something is uncommitted and the loop is idle or
        the interval has passed, and the last checkpoint is finished; or the state held in
        memory reached its bound (then the seal waits for the last checkpoint). While one is
        being delivered the loop goes on processing rather than wait for it."""
        if not self.uncommitted:
            return False
        if self.uncommitted >= CHECKPOINT_RECORDS:
            return True
        return self.inflight is None and (
            idle
            # during a backfill live inputs do not wait for the interval: their outputs go
            # with the next checkpoint as soon as the last one is delivered
            or (self.live > 0 and self.service.scanning())
            or time.monotonic() - self.checkpointed_at >= self.interval
        )

    def _scans_wait(self) -> bool:
        """Whether backfills wait for the checkpoint being delivered (see
        :data:`BACKFILL_CHANGES_PER_CHECKPOINT`)."""
        return self.inflight is not None and self.backfilled >= BACKFILL_CHANGES_PER_CHECKPOINT

    async def _try(self, step: Callable[[], Awaitable[None]]) -> bool:
        """Run a checkpoint step; on failure stop the worker and return False."""
        try:
            await step()
        except Exception as exc:
            await self._halt("could not checkpoint", exc)
            return False
        return True

    async def _try_checkpoint(self) -> bool:
        return await self._try(self._checkpoint)

    async def _checkpoint(self) -> None:
        """A whole checkpoint, waited for: the one in flight finished, then everything since
        sealed and finished (before partitions are revoked, and when the worker stops)."""
        if self.inflight is not None:
            await self._finish()
        await self._seal()
        await self._finish()
        await self._commit_all()

    async def _seal(self) -> None:
        """Begin a checkpoint of everything processed since the last one (see the module
        docstring), without waiting for it: the outputs and one changelog record per changed
        key of every table are handed to the producer together (on one broker: one produce
        request), the tables' changes sealed (readable, not yet in RocksDB) and the offsets
        and marks kept for :meth:`_finish`. The loop goes on processing meanwhile. The
        checkpoint in flight, if any, is finished first: one at a time, in order.
        """
        self._fence()
        if self.inflight is not None:
            await self._finish()
        crash = crashpoint.reached if self.offsets else _no_crash  # F1's test hook (tests only)
        crash("begun")
        marks = self._marks()
        for name in CHANGELOG_ORDER:
            await self._send_changelog(name)
        submission = await self.batches.submit()
        for table in self.tables.values():
            table.seal()
        crash("sealed")
        self.inflight = _InFlight(submission, dict(self.offsets), marks, self.measured, crash)
        self.offsets.clear()
        self.measured = []
        self.uncommitted = self.live = self.backfilled = 0
        self.checkpointed_at = time.monotonic()

    async def _finish(self) -> None:
        """Finish the checkpoint in flight:

        1. wait until its outputs and changelogs are delivered;
        2. then write its sealed state to RocksDB, one write batch per partition, with the
           changelog offset it reflects (RocksDB is never ahead of the changelog);
        3. then commit its input offsets, in the background (:meth:`_commit_next`): the loop
           goes on meanwhile (an offset commit is a round trip that held the loop 6 ms per
           checkpoint, measured); one commit at a time, the offsets of checkpoints finished
           meanwhile going together in the next.

        RocksDB written before the offsets are committed is safe: a crash in between replays
        inputs that the records show applied, and their outbox re-sends their outputs.
        ``outputs`` and ``members`` are one crash point now (F1's names for the former two
        deliveries).
        """
        inflight = self.inflight
        if inflight is None:
            return
        self._fence()
        crash = inflight.crash
        await inflight.submission.delivered()
        crash("outputs")
        crash("members")
        self.rt.metrics.checkpoint_delivered(inflight.submission.delivery_seconds())
        for batch, started in inflight.measured:  # latency: input timestamps to delivery
            self.rt.metrics.batch(batch, started)
        for name, table in self.tables.items():
            topic = self.rt.topology.changelog(name)
            for partition in table.sealed():
                table.flush_sealed(partition)
                crash("stored")
                offset = inflight.submission.last_offset(topic, partition)
                if offset is not None:
                    self._store_offset(name, partition, offset)
        self.inflight = None
        self.finished_offsets.update(inflight.offsets)
        for partition, marks in inflight.marks.items():
            self.unsettled.setdefault(partition, {}).update(marks)
        if inflight.offsets:
            self.commit_crash = crash
        await self._commit_next()
        self.rt.stats["checkpoints"] += 1

    async def _commit_next(self) -> None:
        """Start committing the offsets of the finished checkpoints, unless a commit is in
        progress: then they wait for the next call, and go together (commits keep their
        order; at high rates one commit covers several checkpoints). Raises the failure of
        the commit that ended."""
        if self.committing is not None:
            if not self.committing.done():
                return
            await self._committed()
        if self.finished_offsets or self.unsettled:
            offsets, self.finished_offsets = self.finished_offsets, {}
            marks, self.unsettled = self.unsettled, {}
            crash, self.commit_crash = self.commit_crash, _no_crash
            self.committing = asyncio.ensure_future(self._commit(offsets, marks, crash))

    def _commit_waiting(self) -> bool:
        """Whether a commit ended (its failure to raise) or offsets wait for one."""
        if self.committing is not None:
            return self.committing.done()
        return bool(self.finished_offsets or self.unsettled)

    async def _commit(
        self,
        offsets: dict[TopicPartition, int],
        marks: dict[int, dict[str, int]],
        crash: Callable[[str], None],
    ) -> None:
        """Commit a finished checkpoint's input offsets; then records may drop the outbox
        entries of the inputs it made durable
        (:meth:`~smartgroups.service.members.MemberService.settle`): those cannot be
        re-delivered."""
        if offsets:
            await self.consumer.commit(offsets)
        crash("committed")
        for partition, settled in marks.items():
            self.service.settle(partition, settled)

    async def _committed(self) -> None:
        """Wait for the offset commit in progress, if any; raise its failure."""
        task, self.committing = self.committing, None
        if task is not None:
            await task

    async def _commit_all(self) -> None:
        """Commit every finished checkpoint's offsets now, and wait."""
        await self._committed()
        await self._commit_next()
        await self._committed()

    @Service.task
    async def _watch_pauses(self) -> None:
        """Note a pause of the whole process (the event loop stood still) of
        :data:`PAUSE_FENCE_S` or more."""
        self.awake_at = time.monotonic()
        while not self.should_stop:
            await asyncio.sleep(PAUSE_WATCH_S)
            now = time.monotonic()
            gap = now - self.awake_at - PAUSE_WATCH_S
            self.awake_at = now
            if gap >= PAUSE_FENCE_S:
                self.paused = max(self.paused or 0.0, gap)

    def _fence(self) -> None:
        """Raise :class:`~smartgroups.errors.Fenced` when this worker may no longer own its
        partitions: the group dropped it (its generation is gone), or the process was paused
        :data:`PAUSE_FENCE_S` or more (seen by the pause watch, or now: the watch has not run
        for that long, the loop having resumed first). A paused worker that resumed would
        otherwise seal what it processed before the pause and send it after the new owner's
        outputs: on the compacted ``membership-state``, an older state over a newer one (F7).
        It stops instead; its partitions' owner replays what it processed. A broker outage
        does not fence: the event loop runs on. (A checkpoint already handed to the producer
        when the pause began still leaves: the known limit in ``docs/reliability.md``.)"""
        stalled = time.monotonic() - self.awake_at - PAUSE_WATCH_S
        if self.paused is not None or stalled >= PAUSE_FENCE_S:
            pause = max(self.paused or 0.0, stalled)
            raise Fenced(f"the process was paused {pause:.1f} s: the group may have moved on")
        if self._generation_lost():
            raise Fenced("the consumer group dropped this worker")

    def _generation_lost(self) -> bool:
        """Whether aiokafka reset the group generation (the member was dropped: its heartbeat or
        commit was refused), i.e. the partitions were lost rather than revoked."""
        coordinator = getattr(self.consumer, "_coordinator", None)  # aiokafka has no public API
        return coordinator is not None and getattr(coordinator, "generation", 0) < 0

    def _marks(self) -> dict[int, dict[str, int]]:
        """Per ready partition, the first offset of each of its sources not applied yet (the
        inputs' next offsets, the scan jobs' and due ticks' counters): once this checkpoint is
        durable, records may drop the outbox entries below them
        (:meth:`~smartgroups.service.members.MemberService.settle`)."""
        marks: dict[int, dict[str, int]] = {p: {} for p in self.ready}
        for tp, offset in self.offsets.items():
            if tp.partition in marks:
                marks[tp.partition][source_name(tp.topic, tp.partition)] = offset
        fanout = self.rt.topology.fanout
        for partition, own in marks.items():
            source = source_name(fanout, partition)
            fanout_next = own.get(source, self.service.settled.get(partition, {}).get(source))
            own.update(self.service.marks(partition, fanout_next))
        return marks

    async def _send_changelog(self, name: str) -> None:
        """One changelog record per key of ``name`` changed since the last checkpoint."""
        table, topic = self.tables[name], self.rt.topology.changelog(name)
        for partition in table.dirty():
            for key, value in table.pending(partition):
                await self.batches.append(topic, key, value, partition)

    # -- changelog offsets and restore ---------------------------------------------------------
    def _stored_offset(self, table: str, partition: int) -> int:
        raw = self.checkpoints.get(partition, _checkpoint_key(table))
        return int(raw) if raw is not None else -1

    def _store_offset(self, table: str, partition: int, offset: int) -> None:
        self.checkpoints.put(partition, _checkpoint_key(table), str(offset).encode())

    async def _restore(self, partitions: Iterable[int]) -> None:
        """Bring each partition's tables to the end of their changelogs: every changelog
        partition behind is read at once (one assignment), so a restore costs one fetch round
        trip however many tables and partitions it covers."""
        reader = AIOKafkaConsumer(
            **self.rt.settings.kafka_client_options(),
            group_id=None,
            enable_auto_commit=False,
            max_partition_fetch_bytes=4 << 20,
        )
        await reader.start()
        started = time.monotonic()
        try:
            tables = {
                TopicPartition(self.rt.topology.changelog(name), partition): (name, partition)
                for partition in sorted(partitions)
                for name in self.tables
            }
            fresh = {partition: self._open_or_wipe(partition) for partition in sorted(partitions)}
            ends = await reader.end_offsets(list(tables)) if tables else {}
            behind = {}
            for tp, (name, partition) in tables.items():
                # A table with no files restores from the changelog's start, whatever was stored.
                start = 0 if name in fresh[partition] else self._stored_offset(name, partition) + 1
                if start > ends[tp]:
                    await self._reseed(name, self.tables[name], partition, ends[tp])
                elif start < ends[tp]:
                    behind[tp] = start
            reader.assign(list(behind))
            for tp, start in behind.items():
                reader.seek(tp, start)
            restored = dict.fromkeys(behind, 0)
            pending = set(behind)
            while pending:
                fetched = await reader.getmany(*pending, timeout_ms=1000, max_records=10_000)
                for tp, messages in fetched.items():
                    if messages:
                        name, partition = tables[tp]
                        self._apply_changelog(name, partition, messages)
                        restored[tp] += len(messages)
                        crashpoint.reached(crashpoint.RESTORE)  # F2's test hook (tests only)
                for tp in list(pending):
                    if await reader.position(tp) >= ends[tp]:
                        pending.discard(tp)
            for tp, count in restored.items():
                name, partition = tables[tp]
                log.info("restored %d %s records of partition %d", count, name, partition)
                self.rt.stats["restored.records"] += count
            if behind:
                self.rt.stats["restore.ms"] += math.ceil((time.monotonic() - started) * 1000)
        finally:
            await reader.stop()

    def _apply_changelog(self, name: str, partition: int, messages: list[Any]) -> None:
        self.tables[name].base.replay(partition, [(m.key, m.value) for m in messages])
        self._store_offset(name, partition, messages[-1].offset)

    def _open_or_wipe(self, partition: int) -> set[str]:
        """Open ``partition``'s RocksDBs; return the tables that start empty (no files on disk:
        restored from the changelog's start, whatever the checkpoint says).

        A RocksDB that does not open because a file is damaged (RocksDB's ``Corruption: …``;
        any other error, say a lock held by another process, stops the worker) gets the partition's
        tables and checkpoints wiped and rebuilt from the changelogs' start (issue 19, F4), rather
        than a crash at every start or, worse, an empty table RocksDB made in place of a lost
        ``CURRENT`` file that the checkpoint would take as up to date.
        """
        stores = [*(t.base for t in self.tables.values()), self.checkpoints]
        fresh = {name for name, t in self.tables.items() if not t.base.exists(partition)}
        try:
            for store in stores:
                store.open(partition)
        except Exception as exc:
            if not str(exc).startswith("Corruption"):
                raise  # a lock held by another process, a full disk: not ours to wipe
            log.error(
                "members: the RocksDB of partition %d does not open (%s): wiping it; its tables "
                "are rebuilt from the changelogs",
                partition,
                " ".join(str(exc).split())[:200],
            )
            for store in stores:
                store.wipe(partition)
            self.rt.stats["rocksdb.wiped"] += 1
            return set(self.tables)
        return fresh

    async def _reseed(self, name: str, table: BatchTable, partition: int, end: int) -> None:
        """The changelog ends below the offset the local state reflects: it was deleted and
        created again, or truncated (faust #158, issue 19 F17). The local state is then the only
        full copy: write it to the changelog again (every key of the partition, in key order),
        so a later restore on any worker finds it, instead of crashing or dropping it."""
        stored = self._stored_offset(name, partition)
        log.warning(
            "members: changelog %s partition %d ends at offset %d, below the stored offset %d "
            "(deleted or truncated): writing the partition's local state to it again",
            self.rt.topology.changelog(name),
            partition,
            end,
            stored,
        )
        topic = self.rt.topology.changelog(name)
        after: bytes | None = None
        count = 0
        while True:
            chunk = table.base.scan(partition, b"", after=after, limit=1000)
            if not chunk:
                break
            for key, value in chunk:
                await self.batches.append(topic, key, value, partition)
            count += len(chunk)
            after = chunk[-1][0]
        submission = await self.batches.submit()
        await submission.delivered()
        last = submission.last_offset(topic, partition) if count else None
        self._store_offset(name, partition, last if last is not None else end - 1)
        self.rt.stats["changelog.reseeded"] += count

    # -- rebalances (aiokafka's listener) ------------------------------------------------------
    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        self.rebalancing = True
        async with self.lock:  # a batch in progress finishes its checkpoint first
            gone = {tp.partition for tp in revoked}
            if self.ready and self._generation_lost():  # lost, not revoked: send nothing
                await self._halt("lost its partitions", Fenced("the group dropped this worker"))
                return
            if self.ready and not await self._try_checkpoint():
                return
            for partition in gone:
                for table in self.tables.values():
                    table.close_partition(partition)
                self.checkpoints.close_partition(partition)
            self.ready -= gone
            self.assigned -= gone
            self.service.forget()

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        async with self.lock:
            partitions = {tp.partition for tp in assigned}
            self.assigned = partitions
            try:
                await self._restore(partitions - self.ready)
            except Exception as exc:
                await self._halt("could not restore the member tables", exc)
                return
            self.ready = set(partitions)
            self.service.forget()
            for partition in sorted(partitions):
                self.service.load_scans(partition)
            self.rebalancing = False
            _settle_heap()
            log.info("members: ready on partitions %s", sorted(partitions))

    # -- health --------------------------------------------------------------------------------
    def memory(self) -> dict[str, int]:
        """Bytes RocksDB holds in memory for the member path's tables, by table and kind
        (``rocksdb.members.memtables``, …; see :meth:`RocksTable.memory`)."""
        tables = {name: table.base for name, table in self.tables.items()}
        tables["checkpoints"] = self.checkpoints
        return {
            f"rocksdb.{name}.{kind}": size
            for name, table in tables.items()
            for kind, size in table.memory().items()
        }

    def not_ready(self) -> str | None:
        """Why the assigned partitions are not all processed now (None when they are)."""
        return "rebalancing" if self.rebalancing or self.ready != self.assigned else None

    # -- failure ---------------------------------------------------------------------------------
    async def _halt(self, what: str, exc: BaseException) -> None:
        """Stop the worker: nothing past the last checkpoint is committed (see the module
        docstring); ``/v1/health`` reports why until the process exits."""
        detail = " ".join(str(exc).split()).rstrip(".")
        self.rt.failure = f"members {what}: {type(exc).__name__}" + (
            f": {detail}" if detail else ""
        )
        log.critical(
            "stopping the worker: %s. Nothing after the last checkpoint is committed; "
            "it is processed when the worker starts again.",
            self.rt.failure,
        )
        self.rt.exit_within()
        await self.rt.app.crash(exc)
