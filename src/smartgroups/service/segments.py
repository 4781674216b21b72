"""Segment sets on the member side (contract section 9): copies, resolution, outputs, scans.

Every partition keeps a copy of each space's segment sets next to its groups (in the group
table, under :func:`~smartgroups.core.ids.set_key`), fed by ``set`` fan-out messages in the
definitions' order. The members service calls :func:`outputs` after every change of a member
record (whatever the input: member events, commands, group scans, ticks): it re-resolves the
member's segment in every set of the space and renders one ``segment.changed`` per change,
which the service keeps in the member's outbox with its membership changes, so a re-delivered
input re-sends them (same ids, same versions) like every other output. :func:`send` publishes
them and the current ``segment-state`` of their sets.

A set that is defined, deleted, or whose list of groups changes is resolved for every member of
the space in bounded steps, as a backfill: ``set_scan`` messages the partition sends itself,
abandoned when a newer change of the set arrives (its own scan covers every member again).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

import orjson

from smartgroups.core.ids import member_key, segment_state_key, set_key, set_prefix, space_prefix
from smartgroups.core.membership import Transition
from smartgroups.core.outputs import Cause, segment_change, segment_state
from smartgroups.core.record import MemberRecord
from smartgroups.core.segments import SetEntry, resolve_member
from smartgroups.core.space import SpaceGroups
from smartgroups.service.messages import set_scan_message
from smartgroups.service.ports import Publisher, Record, Table

SEGMENT_EVENT = "segment.changed"


class MemberSide(Protocol):
    """What the set and blacklist steps use of the members service (``MemberService``)."""

    members: Table
    groups: Table
    publish: Publisher
    scan_chunk: int
    stats: Counter[str]

    def _space(self, partition: int, space_id: str) -> SpaceGroups: ...

    async def _apply(
        self,
        partition: int,
        space_id: str,
        member_id: str,
        source: str,
        offset: int,
        change: Callable[[MemberRecord, SpaceGroups, datetime], list[Transition]],
        cause: Cause,
        *,
        raw: bytes | None = None,
        due_key_done: bytes | None = None,
    ) -> bool: ...


def outputs(
    rec: MemberRecord,
    space: SpaceGroups,
    space_id: str,
    member_id: str,
    cause: Cause,
    now_ms: int,
    transitions: list[Transition],
    change: object,
) -> list[dict[str, Any]]:
    """Re-resolve the member's segments; the ``segment.changed`` events of those that changed.

    A segment only changes with a membership (``transitions``) or a set (a set scan, whose
    ``change`` is :func:`_unchanged`): otherwise nothing is resolved.
    """
    sets = space.sets
    if not sets or (not transitions and change is not _unchanged):
        return []
    entries = space.entries
    events = []
    for moved in resolve_member(rec, sets, entries, now_ms):
        group = entries.get(moved.segment) if moved.segment is not None else None
        slug = group.group.slug if group is not None else None
        events.append(
            segment_change(space_id, member_id, moved, sets[moved.set_id], slug, cause, now_ms)
        )
    return events


def split(events: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(membership changes, segment changes) of a record's outputs."""
    if not any(e["type"] == SEGMENT_EVENT for e in events):
        return events, []
    return (
        [e for e in events if e["type"] != SEGMENT_EVENT],
        [e for e in events if e["type"] == SEGMENT_EVENT],
    )


async def send(
    publish: Publisher,
    space_id: str,
    member_id: str,
    rec: MemberRecord,
    events: list[dict[str, Any]],
) -> None:
    """Publish segment changes, then the *current* ``segment-state`` of each set they touch."""
    if not events:
        return
    key = member_key(space_id, member_id)
    for event in events:
        await publish.send("segments", key, orjson.dumps(event))
    for set_id in sorted({e["set_id"] for e in events}):
        current = rec.segments.get(set_id)
        value = None
        if current is not None and current.segment is not None:
            doc = segment_state(
                space_id, set_id, member_id, current.segment, current.version, current.since_ms
            )
            value = orjson.dumps(doc)
        await publish.send("segment_state", segment_state_key(space_id, set_id, member_id), value)


def load(groups: Table, partition: int, space_id: str, space: SpaceGroups) -> None:
    """Install the partition's stored copies of the space's segment sets into ``space``."""
    prefix = set_prefix(space_id)
    after: bytes | None = None
    while chunk := groups.scan(partition, prefix, after=after, limit=1000):
        for _, value in chunk:
            space.apply_set(SetEntry.from_json(orjson.loads(value)["entry"]))
        after = chunk[-1][0]


async def on_set(service: MemberSide, record: Record, doc: dict[str, Any]) -> None:
    """A segment set changed: keep the copy; resolve every member when its groups changed."""
    space_id = doc["space"]
    entry = SetEntry.from_json(doc["entry"])
    set_id = entry.segment_set.set_id
    space = service._space(record.partition, space_id)
    before = space.sets.get(set_id)
    key = set_key(space_id, set_id)
    via = f"{record.source}@{record.offset}"
    if space.apply_set(entry):
        value = orjson.dumps({"entry": doc["entry"], "via": via})
        service.groups.put(record.partition, key, value)
        if (
            before is not None
            and before.deleted == entry.deleted
            and before.segment_set.groups == entry.segment_set.groups
        ):
            return  # a new name or fallback label: no member's segment changes
    else:
        stored = service.groups.get(record.partition, key)
        if stored is None or orjson.loads(stored).get("via") != via:
            service.stats["fanout.duplicates"] += 1
            return
    await _chunk(service, record, space_id, set_id, entry.seq, None, doc["cause"])


async def on_set_scan(service: MemberSide, record: Record, doc: dict[str, Any]) -> None:
    """The next step of a set's resolution, unless a newer change of the set superseded it."""
    space = service._space(record.partition, doc["space"])
    current = space.sets.get(doc["set_id"])
    if current is None or current.seq != int(doc["seq"]):
        service.stats["scans.abandoned"] += 1
        return
    after = doc["after"].encode()
    await _chunk(service, record, doc["space"], doc["set_id"], current.seq, after, doc["cause"])


def _unchanged(rec: MemberRecord, space: SpaceGroups, now: datetime) -> list[Transition]:
    return []  # memberships stay; the service re-resolves the segments after every change


async def _chunk(
    service: MemberSide,
    record: Record,
    space_id: str,
    set_id: str,
    seq: int,
    after: bytes | None,
    cause: Cause,
) -> None:
    prefix = space_prefix(space_id)
    limit = service.scan_chunk
    chunk = service.members.scan(record.partition, prefix, after=after, limit=limit)
    for key, raw in chunk:
        member_id = key[len(prefix) :].decode()
        await service._apply(
            record.partition,
            space_id,
            member_id,
            record.source,
            record.offset,
            _unchanged,
            cause,
            raw=raw,
        )
    service.stats["scans.members"] += len(chunk)
    if len(chunk) == limit:
        follow = set_scan_message(space_id, set_id, seq, chunk[-1][0], cause)
        await service.publish.send("fanout", prefix, follow, record.partition)
