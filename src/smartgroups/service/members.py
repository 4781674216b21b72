"""The members service: member inputs, group copies, backfill scans and ticks, per partition.

Every record of the member-keyed input topics and the internal fan-out topic is handed to
:meth:`MemberService.handle`, one partition at a time and in offset order, so everything about
a member is applied in one order. For each input it loads the member's record, calls the core
(:mod:`smartgroups.core.membership`), stores the record, and publishes the ``membership-changes``
and ``membership-state`` outputs. Fan-out messages are described in :mod:`.messages`.

Exactness under at-least-once delivery: a re-delivered input (its offset already applied for
the member) re-sends the outputs it produced, byte for byte, instead of being applied again; ids
are deterministic and versions alternate, so consumers see each transition once in effect.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from smartgroups.core import membership
from smartgroups.core.ids import group_key, member_key, space_prefix, state_key
from smartgroups.core.membership import Transition
from smartgroups.core.outputs import (
    TIME_CAUSE,
    Cause,
    event_cause,
    membership_change,
    membership_state,
)
from smartgroups.core.partitioning import partition_for
from smartgroups.core.record import MemberRecord, OutboxEntry
from smartgroups.core.space import GroupEntry, SpaceGroups
from smartgroups.core.values import epoch_ms
from smartgroups.service import blacklists, index, reconcile, record_codec, segments
from smartgroups.service.messages import TICK, TICK_KEY, reroute_value, scan_message, unwrap_reroute
from smartgroups.service.ports import Clock, Publisher, Record, Table, TopicNames
from smartgroups.service.scans import (
    JOB_PREFIX,
    TICK_COUNT_KEY,
    ScanJob,
    scan_source,
    tick_source,
)
from smartgroups.wire.decode import DeadLetter, decode_member_input

Change = Callable[[MemberRecord, SpaceGroups, datetime], list[Transition]]
ScanHook = Callable[[int, str, str, bool, int, bool], None]
"""``(partition, space, group_id, first, members_scanned, last)`` of one backfill step."""


@dataclass(frozen=True, slots=True)
class ScanStep:
    """What one :meth:`MemberService.step_scans` did: members ``decided``, and of those the
    ones whose record it ``changed`` (each a record write, its changelog record and its
    outputs: what the next checkpoint has to deliver; the others were left as they were)."""

    decided: int
    changed: int


_DUE_PREFIX_LEN = 20  # "%019d|"


def due_key(due_ms: int, key: bytes) -> bytes:
    """Due-index key: sorts by instant, then member (``0000001700000000000|space:member``)."""
    return b"%019d|" % due_ms + key


class MemberService:
    """Applies one record of the member side's stream (see the module docstring).

    ``members`` holds member records by ``space:member``, ``groups`` each partition's copy of
    its spaces' groups by ``space:group``, ``due`` the due index (:func:`due_key`), ``index``
    (when given) the query indexes (:mod:`smartgroups.service.index`).
    ``scan_chunk`` members are decided per backfill or tick step before live inputs get a turn.
    ``stats`` counts what happened (the worker serves it at ``/stats/``).

    ``keep_outbox``: whether each record remembers the outputs of its latest inputs, to re-send
    them when an input is re-delivered. A caller that persists a member record only after that
    record's outputs are acknowledged (the batch member loop's checkpoint) turns it off: a
    re-delivered input whose record was persisted then had its outputs delivered already.

    ``inline_scans``: backfills run as :class:`~smartgroups.service.scans.ScanJob` s that the
    caller steps (:meth:`step_scans`) between batches, instead of ``scan`` messages through the
    fan-out topic.
    """

    def __init__(
        self,
        *,
        members: Table,
        groups: Table,
        due: Table,
        publisher: Publisher,
        topics: TopicNames,
        clock: Clock,
        scan_chunk: int,
        stats: Counter[str],
        keep_outbox: bool = True,
        inline_scans: bool = False,
        index: Table | None = None,
    ) -> None:
        self.members = members
        self.groups = groups
        self.due = due
        self.publish = publisher
        self.topics = topics
        self.clock = clock
        self.scan_chunk = scan_chunk
        self.stats = stats
        self.keep_outbox = keep_outbox
        self.inline_scans = inline_scans
        self.scans: dict[int, dict[bytes, ScanJob]] = {}  # partition -> jobs by key
        self.index = index
        self.spaces: dict[tuple[int, str], SpaceGroups] = {}
        self._loaded: dict[bytes, GroupEntry] = {}
        """Group copies decoded since the last :meth:`forget`, by their stored bytes: every
        partition keeps a copy of each group, and loading a space on each partition parsed the
        same conditions once per partition (1,000 groups on 4 partitions: 4 % of the worker's
        CPU in a 1,000-group drain). Entries are immutable, so partitions share them."""
        self.on_scan: ScanHook | None = None
        """Told of each backfill step (the worker's progress metrics), if set."""
        self.settled: dict[int, dict[str, int]] = {}
        """Per partition, per input source *of that partition* (``topic#p``, ``scan#p``,
        ``tick#p``), the first offset not yet durably committed (:meth:`settle`). A record
        this service stores drops the outbox entries of inputs below it: they cannot be
        re-delivered, so their outputs need not be kept (records stay small; one input's
        outputs are typically all an outbox holds). Empty (the agent path): outboxes keep
        their age and count bounds only."""

    # -- dispatch ------------------------------------------------------------------------------
    async def handle(self, record: Record) -> None:
        topics = self.topics
        if record.topic == topics.fanout:
            doc = orjson.loads(record.value or b"{}")
            kind = doc.get("k")
            if kind == "reroute":
                await self._input(unwrap_reroute(record), record.partition)
            elif kind == "group":
                await self._group(record, doc)
            elif kind == "scan":
                await self._scan(record, doc)
            elif kind == "command":
                await self._command(record, doc)
            elif kind == "tick":
                await self._tick(record)
            elif kind == "blacklist":
                await blacklists.on_blacklist(self, record, doc)
            elif kind == "set":
                await segments.on_set(self, record, doc)
            elif kind == "set_scan":
                await segments.on_set_scan(self, record, doc)
            elif kind == reconcile.RECONCILE:
                await reconcile.step(self, record, doc)
            return
        if record.key is not None:
            owner = partition_for(record.key, topics.partitions)
            if owner != record.partition:
                await self.publish.send("fanout", record.key, reroute_value(record), owner)
                self.stats["inputs.rerouted"] += 1
                return
        await self._input(record, record.partition)

    def marks(self, partition: int, fanout_next: int | None) -> dict[str, int]:
        """The first offsets of ``partition``'s in-process sources not applied yet, as of now:
        what :meth:`settle` may take once everything applied so far is durable.
        ``fanout_next`` is the next fan-out offset of the partition, when known (scan jobs are
        numbered by fan-out offsets: with none running, every job below it is finished)."""
        marks: dict[str, int] = {}
        count = self.members.get(partition, TICK_COUNT_KEY)
        if count is not None:
            marks[tick_source(partition)] = int(count) + 1
        jobs = self.scans.get(partition)
        if jobs:
            marks[scan_source(partition)] = min(job.offset for job in jobs.values())
        elif fanout_next is not None:
            marks[scan_source(partition)] = fanout_next
        return marks

    def settle(self, partition: int, marks: dict[str, int]) -> None:
        """Everything ``partition`` applied below ``marks`` (source -> first offset not
        applied; sources of ``partition`` only) is durable now: its outputs are delivered, its
        state is in the changelog, its offsets are committed (see :attr:`settled`)."""
        self.settled.setdefault(partition, {}).update(marks)

    def forget(self) -> None:
        """Drop cached group copies and scan jobs (after a rebalance, tables may have been
        rebuilt; :meth:`load_scans` brings a partition's jobs back)."""
        self.spaces.clear()
        self._loaded.clear()
        self.scans.clear()

    # -- member inputs -------------------------------------------------------------------------
    async def _input(self, record: Record, partition: int) -> None:
        logical = self.topics.logical(record.topic)
        decoded = decode_member_input(logical, record.key, record.value)
        if isinstance(decoded, DeadLetter):
            await self.publish.dead_letter(record, decoded)
            return
        change = _change_for(decoded)
        cause = event_cause("event", decoded.id, logical, record.partition, record.offset)
        await self._apply(
            partition, decoded.space, decoded.member_id, record.source, record.offset, change, cause
        )

    async def _command(self, record: Record, doc: dict[str, Any]) -> None:
        effect, group_id, seq = doc["effect"], doc["group_id"], int(doc["seq"])

        def change(rec: MemberRecord, space: SpaceGroups, now: datetime) -> list[Transition]:
            return membership.on_command(rec, space, effect, group_id, seq, now)

        await self._apply(
            record.partition,
            doc["space"],
            doc["member_id"],
            record.source,
            record.offset,
            change,
            doc["cause"],
        )

    # -- definitions and scans -----------------------------------------------------------------
    async def _group(self, record: Record, doc: dict[str, Any]) -> None:
        space_id, effect = doc["space"], doc["effect"]
        entry = GroupEntry.from_json(doc["entry"])
        partition = record.partition
        space = self._space(partition, space_id)
        key = group_key(space_id, entry.group.group_id)
        via = f"{record.source}@{record.offset}"
        if space.apply(entry):
            self.groups.put(partition, key, orjson.dumps({"entry": doc["entry"], "via": via}))
        elif not self._applied_by(partition, key, via):
            # A re-sent copy of a change already applied (the definitions service re-sends after
            # a crash): nothing new. Only a re-delivery of the record that applied it re-scans.
            self.stats["fanout.duplicates"] += 1
            return
        if effect not in membership.GROUP_EFFECTS:
            return
        if effect == "group_created" and entry.group.kind == "static":
            return  # nobody can be in a static group before a command adds them
        if self.inline_scans:
            job = ScanJob(
                space_id, entry.group.group_id, entry.seq, effect, doc["cause"], record.offset
            )
            self.scans.setdefault(partition, {})[job.key] = job
            self.members.put(partition, job.key, job.dumps())
            return
        await self._scan_chunk(record, doc, after=None)

    def _applied_by(self, partition: int, key: bytes, via: str) -> bool:
        stored = self.groups.get(partition, key)
        return stored is not None and orjson.loads(stored).get("via") == via

    async def _scan(self, record: Record, doc: dict[str, Any]) -> None:
        space = self._space(record.partition, doc["space"])
        current = space.get(doc["group_id"])
        if current is None or current.decided_seq != int(doc["seq"]):
            self.stats["scans.abandoned"] += 1
            return  # a newer change of the group superseded this scan
        await self._scan_chunk(record, doc, after=doc["after"].encode())

    async def _scan_chunk(self, record: Record, doc: dict[str, Any], after: bytes | None) -> None:
        space_id, effect = doc["space"], doc["effect"]
        group_id = doc.get("group_id") or doc["entry"]["group"]["group_id"]
        seq = int(doc.get("seq") or doc["entry"]["seq"])
        prefix = space_prefix(space_id)
        chunk = self.members.scan(record.partition, prefix, after=after, limit=self.scan_chunk)

        def change(rec: MemberRecord, space: SpaceGroups, now: datetime) -> list[Transition]:
            return membership.on_group(rec, space, effect, group_id, now)

        await self._decide_scanned(
            record.partition,
            space_id,
            chunk,
            record.source,
            record.offset,
            change,
            doc["cause"],
            rescanned=group_id,
        )
        if self.on_scan is not None:
            self.on_scan(
                record.partition, space_id, group_id, after is None, len(chunk),
                len(chunk) < self.scan_chunk,
            )  # fmt: skip
        if len(chunk) == self.scan_chunk:
            follow = scan_message(space_id, group_id, seq, effect, chunk[-1][0], doc["cause"])
            await self.publish.send("fanout", prefix, follow, record.partition)

    # -- scan jobs (inline_scans) ------------------------------------------------------------
    def load_scans(self, partition: int) -> None:
        """Take up the scan jobs stored on ``partition`` (after it was assigned)."""
        jobs = {key: ScanJob.loads(raw) for key, raw in self._stored_jobs(partition)}
        if jobs:
            self.scans[partition] = jobs

    def _stored_jobs(self, partition: int) -> list[tuple[bytes, bytes]]:
        found: list[tuple[bytes, bytes]] = []
        after: bytes | None = None
        while chunk := self.members.scan(partition, JOB_PREFIX, after=after, limit=1000):
            found += chunk
            after = chunk[-1][0]
        return found

    def scanning(self) -> bool:
        """Whether a scan job has members left to decide."""
        return bool(self.scans)

    async def step_scans(self, budget: int) -> ScanStep:
        """Decide up to ``budget`` members for the scan jobs, oldest job of each partition
        first."""
        done = changed = 0
        for partition in sorted(self.scans):
            jobs = self.scans[partition]
            while jobs and done < budget:
                job = min(jobs.values(), key=lambda j: j.offset)
                decided, written, finished = await self._scan_job(partition, job, budget - done)
                done += decided
                changed += written
                if finished:
                    del jobs[job.key]
                    self.members.delete(partition, job.key)
                else:
                    self.members.put(partition, job.key, job.dumps())
            if not jobs:
                del self.scans[partition]
        return ScanStep(done, changed)

    async def _scan_job(self, partition: int, job: ScanJob, limit: int) -> tuple[int, int, bool]:
        """Decide up to ``limit`` members of ``job`` from its cursor; (decided, changed,
        finished)."""
        if self._space(partition, job.space).get(job.group_id) is None:
            self.stats["scans.abandoned"] += 1
            return 0, 0, True  # the group is gone (its deletion scanned on its own)
        prefix = space_prefix(job.space)
        chunk = self.members.scan(partition, prefix, after=job.after, limit=limit)
        source = scan_source(partition)
        effect, group_id = job.effect, job.group_id

        def change(rec: MemberRecord, space: SpaceGroups, now: datetime) -> list[Transition]:
            return membership.on_group(rec, space, effect, group_id, now)

        changed = await self._decide_scanned(
            partition, job.space, chunk, source, job.offset, change, job.cause, rescanned=group_id
        )
        first, finished = job.after is None, len(chunk) < limit
        if self.on_scan is not None:
            self.on_scan(partition, job.space, group_id, first, len(chunk), finished)
        if chunk:
            job.after = chunk[-1][0]
        return len(chunk), changed, finished

    # -- time ----------------------------------------------------------------------------------
    async def step_due(self, partition: int, limit: int) -> tuple[int, bool]:
        """Decide up to ``limit`` members of ``partition`` whose due instant has come (an
        in-process tick, see :mod:`.scans`); return (decided, caught up)."""
        raw = self.members.get(partition, TICK_COUNT_KEY)
        count = int(raw) + 1 if raw is not None else 1
        now_ms = epoch_ms(self.clock())
        chunk = self.due.scan_until(partition, due_key(now_ms + 1, b""), limit)
        if not chunk:
            return 0, True
        self.members.put(partition, TICK_COUNT_KEY, b"%d" % count)
        await self._decide_due(partition, chunk, tick_source(partition), count)
        return len(chunk), len(chunk) < limit

    async def _tick(self, record: Record) -> None:
        now_ms = epoch_ms(self.clock())
        bound = due_key(now_ms + 1, b"")
        limit = self.scan_chunk  # like a scan: live inputs get a turn in between
        chunk = self.due.scan_until(record.partition, bound, limit)
        await self._decide_due(record.partition, chunk, record.source, record.offset)
        if len(chunk) == limit:
            await self.publish.send("fanout", TICK_KEY, TICK, record.partition)

    async def _decide_scanned(
        self,
        partition: int,
        space_id: str,
        chunk: list[tuple[bytes, bytes]],
        source: str,
        offset: int,
        change: Change,
        cause: Cause,
        *,
        rescanned: str | None = None,
    ) -> int:
        """Apply ``change`` to each member of a scanned slice of ``space_id`` (``chunk``: their
        keys and stored records), as input ``offset`` of ``source``; counted in
        ``scans.members``. Returns how many records changed.

        ``rescanned``: the group that ``change`` re-decides (:func:`membership.on_group`). A
        member whose stored state shows the change would leave it as it is
        (:func:`membership.rescan_changes_nothing`) is skipped without building its record:
        most members of a backfill (counted in ``inputs.noop`` as the full path would)."""
        skip = len(space_prefix(space_id))
        space = self._space(partition, space_id)
        now = self.clock()
        skipped = changed = 0
        for key, raw in chunk:
            if rescanned is not None:
                state = record_codec.stored_state(raw)
                if not state.already_applied(source, offset) and (
                    membership.rescan_changes_nothing(state, space, rescanned, now)
                ):
                    skipped += 1
                    continue
            member_id = key[skip:].decode()
            changed += await self._apply(
                partition, space_id, member_id, source, offset, change, cause, raw=raw
            )
        self.stats["scans.members"] += len(chunk)
        self.stats["inputs.noop"] += skipped
        return changed

    async def _decide_due(
        self, partition: int, chunk: list[tuple[bytes, bytes]], source: str, offset: int
    ) -> None:
        """Decide each member of a slice of the due index (``chunk``), as input ``offset`` of
        ``source``; the consumed index keys go unless still the members' next instants."""
        for key, _ in chunk:
            space_id, _, member_id = key[_DUE_PREFIX_LEN:].decode().partition(":")
            await self._apply(
                partition,
                space_id,
                member_id,
                source,
                offset,
                membership.on_due,
                TIME_CAUSE,
                due_key_done=key,
            )

    # -- the one place a member record changes -------------------------------------------------
    async def _apply(
        self,
        partition: int,
        space_id: str,
        member_id: str,
        source: str,
        offset: int,
        change: Change,
        cause: Cause,
        *,
        raw: bytes | None = None,
        due_key_done: bytes | None = None,
    ) -> bool:
        """Apply one input to one member: decide, write the record, index and due instant,
        send the outputs. False when it changed nothing (nothing written, nothing sent); a
        re-delivered input re-sends what it sent (True)."""
        key = member_key(space_id, member_id)
        if raw is None:
            raw = self.members.get(partition, key)
        rec = record_codec.loads(raw) if raw is not None else MemberRecord()
        if rec.already_applied(source, offset):
            await self._resend(space_id, member_id, rec, rec.outbox_for(source, offset))
            self.stats["inputs.redelivered"] += 1
            return True
        space = self._space(partition, space_id)
        now = self.clock()
        now_ms = epoch_ms(now)
        old_due = rec.next_due_ms()
        indexed = index.before(rec, space) if self.index is not None else None
        transitions = change(rec, space, now)
        outputs = [
            membership_change(space_id, member_id, t, self._entry(space, t.group_id), cause, now_ms)
            for t in transitions
        ]
        outputs += segments.outputs(
            rec, space, space_id, member_id, cause, now_ms, transitions, change
        )
        marks = self.settled.get(partition)
        if marks:
            rec.settle(marks)
        if not self.keep_outbox:
            rec.outbox = []
        elif outputs:
            rec.remember(OutboxEntry(source, offset, now_ms, outputs), lazy=bool(marks))
        self._reschedule(partition, key, old_due, rec.next_due_ms(), due_key_done)
        # loads/dumps round-trip byte for byte: an input without outputs that left the bytes
        # as they were changed nothing, and is not even marked applied
        encoded = record_codec.dumps_applied(rec, source, offset, None if outputs else raw)
        if encoded is None:
            self.stats["inputs.noop"] += 1
            return False
        self.members.put(partition, key, encoded)
        if self.index is not None and indexed is not None:
            index.update(
                self.index, partition, space_id, member_id, space, indexed, rec, transitions
            )
        self.stats["inputs.applied"] += 1
        self.stats["transitions"] += len(transitions)
        for transition in transitions:
            self.stats["transitions." + transition.reason] += 1
        await self._send(space_id, member_id, rec, outputs)
        return True

    def _reschedule(
        self, partition: int, key: bytes, old: int | None, new: int | None, consumed: bytes | None
    ) -> None:
        """Keep the due index in step with the record's next due instant.

        ``consumed`` is the index key a tick is processing: it goes unless it is still the
        member's next due instant.
        """
        new_key = due_key(new, key) if new is not None else None
        stale = {due_key(old, key)} if old is not None else set()
        if consumed is not None:
            stale.add(consumed)
        for index_key in stale - {new_key}:
            self.due.delete(partition, index_key)
        if new_key is not None and new != old:
            self.due.put(partition, new_key, b"")

    async def _send(
        self, space_id: str, member_id: str, rec: MemberRecord, outputs: list[dict[str, Any]]
    ) -> None:
        key = member_key(space_id, member_id)
        outputs, segment_events = segments.split(outputs)
        for event in outputs:
            await self.publish.send("changes", key, orjson.dumps(event))
        for group_id in sorted({e["group_id"] for e in outputs}):
            pair = rec.pairs[group_id]
            value = (
                orjson.dumps(
                    membership_state(space_id, group_id, member_id, pair.version, pair.since_ms)
                )
                if pair.member
                else None
            )
            await self.publish.send("state", state_key(space_id, group_id, member_id), value)
        await segments.send(self.publish, space_id, member_id, rec, segment_events)

    async def _resend(
        self,
        space_id: str,
        member_id: str,
        rec: MemberRecord,
        outputs: list[dict[str, Any]] | None,
    ) -> None:
        """Re-send a re-delivered input's outputs, and the *current* state of those pairs."""
        if outputs:
            await self._send(space_id, member_id, rec, outputs)

    # -- the partition's copy of a space's groups ----------------------------------------------
    def _space(self, partition: int, space_id: str) -> SpaceGroups:
        space = self.spaces.get((partition, space_id))
        if space is None:
            space = SpaceGroups()
            prefix = space_prefix(space_id)
            after: bytes | None = None
            loaded = self._loaded
            while chunk := self.groups.scan(partition, prefix, after=after, limit=1000):
                for _, value in chunk:
                    entry = loaded.get(value)
                    if entry is None:
                        entry = loaded[value] = GroupEntry.from_json(orjson.loads(value)["entry"])
                    space.apply(entry)
                after = chunk[-1][0]
            segments.load(self.groups, partition, space_id, space)
            self.spaces[(partition, space_id)] = space
        return space

    @staticmethod
    def _entry(space: SpaceGroups, group_id: str) -> GroupEntry:
        entry = space.get(group_id)
        assert entry is not None, f"transition for unknown group {group_id}"
        return entry


def _change_for(decoded: Any) -> Change:
    """The core call for one decoded member input."""
    kind = decoded.type
    if kind == "member.upserted":
        patch = decoded.profile.changes()
        return lambda rec, space, now: membership.on_profile(rec, space, patch, now)
    if kind == "member.deleted":
        return membership.on_erase
    if kind in ("property.set", "property.unset"):
        value = getattr(decoded, "value", None)
        pid = decoded.property_id
        return lambda rec, space, now: membership.on_value(rec, space, "property", pid, value, now)
    value = getattr(decoded, "value", None)
    qid = decoded.question_id
    return lambda rec, space, now: membership.on_value(rec, space, "answer", qid, value, now)
