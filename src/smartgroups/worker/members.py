"""The members agent: member inputs, definition fan-out, scans and ticks, one partition at a time.

It consumes the three member-keyed input topics and the internal fan-out topic as one stream
(``concurrency=1``), so everything about a member is applied in one order on one partition.
For each input it loads the member's record, calls the core (:mod:`smartgroups.core.membership`),
stores the record, and sends ``membership-changes`` and ``membership-state`` outputs.

Fan-out messages (``k``):

* ``group`` — a group changed; the partition's copy is updated and, for lifecycle changes, a scan
  of the space's members on this partition starts (``settings.scan_chunk`` per message; the
  rest continues through ``scan`` messages, so live inputs interleave with a long backfill);
* ``command`` — a static-membership or blacklist command for one member;
* ``tick`` — time passed: members whose due instant has come are re-evaluated;
* ``reroute`` — a member input that was produced to the wrong partition, processed here as if
  it had arrived at its key's partition.

Re-delivered inputs (offset already applied for the member) re-send the outputs they produced,
and the pairs' current state, instead of being applied again.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson

from smartgroups.core import membership
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
from smartgroups.wire.decode import DeadLetter, decode_member_input
from smartgroups.worker import record_codec
from smartgroups.worker.edge import (
    Record,
    Sender,
    register_agent,
    reroute_value,
    unwrap_reroute,
)
from smartgroups.worker.runtime import Runtime

Change = Callable[[MemberRecord, SpaceGroups, datetime], list[Transition]]


def due_key(due_ms: int, member_key: bytes) -> bytes:
    """Due-index key: sorts by instant, then member (``0000001700000000000|space:member``)."""
    return b"%019d|" % due_ms + member_key


class MemberHandler:
    """Applies one record of the members agent's stream (see the module docstring)."""

    def __init__(self, runtime: Runtime, sender: Sender) -> None:
        self.rt = runtime
        self.send = sender
        self.spaces: dict[tuple[int, str], SpaceGroups] = {}

    # -- dispatch ------------------------------------------------------------------------------
    async def handle(self, record: Record) -> None:
        topology = self.rt.topology
        if record.topic == topology.fanout:
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
            return
        if record.key is not None:
            owner = partition_for(record.key, topology.partitions)
            if owner != record.partition:
                await self.send.raw("fanout", record.key, reroute_value(record), owner)
                self.rt.stats["inputs.rerouted"] += 1
                return
        await self._input(record, record.partition)

    # -- member inputs -------------------------------------------------------------------------
    async def _input(self, record: Record, partition: int) -> None:
        logical = self.rt.topology.logical(record.topic)
        decoded = decode_member_input(logical, record.key, record.value)
        if isinstance(decoded, DeadLetter):
            await self.send.dead_letter(record, decoded)
            return
        change = _change_for(decoded)
        cause = event_cause("event", decoded.id, logical, record.partition, record.offset)
        source = f"{record.topic}#{record.partition}"
        await self._apply(
            partition, decoded.space, decoded.member_id, source, record.offset, change, cause
        )

    async def _command(self, record: Record, doc: dict[str, Any]) -> None:
        effect, group_id, seq = doc["effect"], doc["group_id"], int(doc["seq"])

        def change(rec: MemberRecord, space: SpaceGroups, now: datetime) -> list[Transition]:
            return membership.on_command(rec, space, effect, group_id, seq, now)

        source = f"{record.topic}#{record.partition}"
        await self._apply(
            record.partition,
            doc["space"],
            doc["member_id"],
            source,
            record.offset,
            change,
            doc["cause"],
        )

    # -- definitions and scans -----------------------------------------------------------------
    async def _group(self, record: Record, doc: dict[str, Any]) -> None:
        space_id, effect = doc["space"], doc["effect"]
        entry = GroupEntry.from_json(doc["entry"])
        space = self._space(record.partition, space_id)
        group_id = entry.group.group_id
        key = f"{space_id}:{group_id}".encode()
        via = f"{record.topic}#{record.partition}@{record.offset}"
        if space.apply(entry):
            self.rt.groups.put(key, orjson.dumps({"entry": doc["entry"], "via": via}))
        elif not self._applied_by(key, via):
            # A re-sent copy of a change already applied (the definitions agent re-sends after
            # a crash): nothing new. Only a re-delivery of the record that applied it re-scans.
            self.rt.stats["fanout.duplicates"] += 1
            return
        if effect not in membership.GROUP_EFFECTS:
            return
        if effect == "group_created" and entry.group.kind == "static":
            return  # nobody can be in a static group before a command adds them
        await self._scan_chunk(record, doc, after=None)

    def _applied_by(self, key: bytes, via: str) -> bool:
        stored = self.rt.groups.get(key)
        return stored is not None and orjson.loads(stored).get("via") == via

    async def _scan(self, record: Record, doc: dict[str, Any]) -> None:
        space = self._space(record.partition, doc["space"])
        current = space.get(doc["group_id"])
        if current is None or current.seq != int(doc["seq"]):
            self.rt.stats["scans.abandoned"] += 1
            return  # a newer change of the group superseded this scan
        await self._scan_chunk(record, doc, after=doc["after"].encode())

    async def _scan_chunk(self, record: Record, doc: dict[str, Any], after: bytes | None) -> None:
        space_id, effect = doc["space"], doc["effect"]
        group_id = doc.get("group_id") or doc["entry"]["group"]["group_id"]
        seq = int(doc.get("seq") or doc["entry"]["seq"])
        prefix = f"{space_id}:".encode()
        chunk = self.rt.members.scan(
            record.partition, prefix, after=after, limit=self.rt.settings.scan_chunk
        )
        source = f"{record.topic}#{record.partition}"

        def change(rec: MemberRecord, space: SpaceGroups, now: datetime) -> list[Transition]:
            return membership.on_group(rec, space, effect, group_id, now)

        for key, raw in chunk:
            member_id = key[len(prefix) :].decode()
            await self._apply(
                record.partition,
                space_id,
                member_id,
                source,
                record.offset,
                change,
                doc["cause"],
                raw=raw,
            )
        self.rt.stats["scans.members"] += len(chunk)
        if len(chunk) == self.rt.settings.scan_chunk:
            follow = {
                "k": "scan",
                "space": space_id,
                "group_id": group_id,
                "seq": seq,
                "effect": effect,
                "after": chunk[-1][0].decode(),
                "cause": doc["cause"],
            }
            await self.send.raw("fanout", prefix, orjson.dumps(follow), record.partition)

    # -- time ----------------------------------------------------------------------------------
    async def _tick(self, record: Record) -> None:
        now_ms = epoch_ms(self.rt.clock())
        bound = due_key(now_ms + 1, b"")
        limit = self.rt.settings.scan_chunk  # like a scan: live inputs get a turn in between
        chunk = self.rt.due.scan_until(record.partition, bound, limit)
        source = f"{record.topic}#{record.partition}"
        for key, _ in chunk:
            member_key = key[20:]
            space_id, _, member_id = member_key.decode().partition(":")
            await self._apply(
                record.partition,
                space_id,
                member_id,
                source,
                record.offset,
                membership.on_due,
                TIME_CAUSE,
                due_key_done=key,
            )
        if len(chunk) == limit:
            await self.send.raw("fanout", b"tick", b'{"k":"tick"}', record.partition)

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
    ) -> None:
        key = f"{space_id}:{member_id}".encode()
        if raw is None:
            raw = self.rt.members.get(key)
        rec = record_codec.loads(raw) if raw is not None else MemberRecord()
        if rec.already_applied(source, offset):
            await self._resend(space_id, member_id, rec, rec.outbox_for(source, offset))
            self.rt.stats["inputs.redelivered"] += 1
            return
        space = self._space(partition, space_id)
        now = self.rt.clock()
        now_ms = epoch_ms(now)
        old_due = rec.next_due_ms()
        transitions = change(rec, space, now)
        outputs = [
            membership_change(space_id, member_id, t, self._entry(space, t.group_id), cause, now_ms)
            for t in transitions
        ]
        if outputs:
            rec.remember(OutboxEntry(source, offset, now_ms, outputs))
        self._reschedule(key, old_due, rec.next_due_ms(), due_key_done)
        if not outputs and record_codec.dumps(rec) == raw:  # loads/dumps round-trip byte for byte
            self.rt.stats["inputs.noop"] += 1
            return
        rec.mark_applied(source, offset)
        self.rt.members.put(key, record_codec.dumps(rec))
        self.rt.stats["inputs.applied"] += 1
        self.rt.stats["transitions"] += len(transitions)
        await self._send(space_id, member_id, rec, outputs)

    def _reschedule(
        self, key: bytes, old: int | None, new: int | None, consumed: bytes | None
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
            self.rt.due.delete(index_key)
        if new_key is not None and new != old:
            self.rt.due.put(new_key, b"")

    async def _send(
        self, space_id: str, member_id: str, rec: MemberRecord, outputs: list[dict[str, Any]]
    ) -> None:
        member_key = f"{space_id}:{member_id}".encode()
        for event in outputs:
            await self.send.raw("changes", member_key, orjson.dumps(event))
        await self._send_state(space_id, member_id, rec, {e["group_id"] for e in outputs})

    async def _send_state(
        self, space_id: str, member_id: str, rec: MemberRecord, group_ids: set[str]
    ) -> None:
        for group_id in sorted(group_ids):
            pair = rec.pairs[group_id]
            state_key = f"{space_id}:{group_id}:{member_id}".encode()
            value = (
                orjson.dumps(
                    membership_state(space_id, group_id, member_id, pair.version, pair.since_ms)
                )
                if pair.member
                else None
            )
            await self.send.raw("state", state_key, value)

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
            prefix = f"{space_id}:".encode()
            after: bytes | None = None
            while chunk := self.rt.groups.scan(partition, prefix, after=after, limit=1000):
                for _, value in chunk:
                    space.apply(GroupEntry.from_json(orjson.loads(value)["entry"]))
                after = chunk[-1][0]
            self.spaces[(partition, space_id)] = space
        return space

    @staticmethod
    def _entry(space: SpaceGroups, group_id: str) -> GroupEntry:
        entry = space.get(group_id)
        assert entry is not None, f"transition for unknown group {group_id}"
        return entry

    def forget(self) -> None:
        """Drop cached group copies (after a rebalance, tables may have been rebuilt)."""
        self.spaces.clear()


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


def register(runtime: Runtime) -> None:
    """Register the members agent on ``runtime.app``."""
    sender = Sender(runtime)
    register_agent(runtime, "member_inputs", "members", MemberHandler(runtime, sender), sender)
