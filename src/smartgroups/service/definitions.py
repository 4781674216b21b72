"""The definitions service: one total order of commands per space over ``group-changes``.

For every record it decodes (edge checks), applies the command to the space's catalog (the
core's guards), publishes exactly one ``group-change-results`` record, and hands accepted changes
to the member side through the internal fan-out topic (:mod:`.messages`):

* group changes (created, updated, (de)activated, deleted) go to **every** partition, carrying
  the group as it now is and a per-space ``seq`` (duplicates are harmless: the member side keeps
  the highest ``seq``);
* static-membership and blacklist commands go to the one partition that owns the member.

The space's state (catalog, ``seq``, which inputs were applied and what they produced) lives in
the ``catalogs`` table, each group's definition under a key of its own
(:meth:`SpaceState.save`). A re-delivered record is recognised by its offset and re-sends the same
outputs instead of being applied again, so at-least-once delivery neither loses nor doubles a
result. Records found on a partition other than their key's are forwarded to the right
partition of the internal ``commands`` topic and processed there as if they had arrived there.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from itertools import compress
from typing import Any

import orjson

from smartgroups.core import membership
from smartgroups.core.catalog import SpaceCatalog
from smartgroups.core.commands import GroupCreated, parse_command
from smartgroups.core.ids import (
    catalog_group_key,
    catalog_recent_key,
    is_id,
    member_key,
    space_key,
    space_prefix,
)
from smartgroups.core.outputs import command_result, event_cause
from smartgroups.core.partitioning import partition_for
from smartgroups.errors import RuleError
from smartgroups.service.messages import (
    blacklist_message,
    command_message,
    group_message,
    reroute_value,
    set_message,
    unwrap_reroute,
)
from smartgroups.service.ports import Publisher, Record, Table, TopicNames
from smartgroups.wire.decode import DeadLetter, decode_group_change

RECENT_INPUTS = 32
"""Applied inputs per space whose outputs are kept for re-sending after a crash."""

GROUP_EFFECTS = frozenset({*membership.GROUP_EFFECTS, "group_updated"})
"""Effects that change a group: every partition's copy gets it (only lifecycle ones scan)."""
MEMBER_EFFECTS = frozenset(membership.MEMBER_COMMANDS)
"""Effects of a static-membership or blacklist command: the member's partition gets it."""
SET_EFFECTS = frozenset({"segment_set_defined", "segment_set_updated", "segment_set_deleted"})
"""Effects of a segment set command: every partition's copy gets it."""
FANNED_OUT = GROUP_EFFECTS | MEMBER_EFFECTS | SET_EFFECTS

Output = list[Any]
"""An output kept for re-sending: ``[topic role, partition or -1 for every partition, key,
value]``."""

EVERY_PARTITION = -1


@dataclass(slots=True)
class SpaceState:
    """What the definitions service keeps per space, in the ``catalogs`` table (see
    :meth:`save`): the catalog, ``seq``, which inputs were applied and what they produced."""

    catalog: SpaceCatalog
    seq: int = 0
    created: dict[str, int] = field(default_factory=dict)
    seen: dict[str, int] = field(default_factory=dict)
    recent: list[list[Any]] = field(default_factory=list)
    decided: dict[str, int] = field(default_factory=dict)
    """Per group, the ``seq`` of its last change that re-decides every member (a scan)."""
    versions: dict[str, int] = field(default_factory=dict)
    """Per group, the version of its stored definition (:func:`catalog_group_key`)."""
    numbers: list[int | None] = field(default_factory=list)
    """Per ``recent`` entry, the number it is stored under (:func:`catalog_recent_key`); None
    until saved."""
    version: int = 0
    """The last number given to a stored group definition or ``recent`` entry."""
    written: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    """Per group, the catalog's document that its stored version holds: the catalog keeps one
    document per group until the group changes, so a command writes only what it changed."""
    written_ids: set[int] = field(default_factory=set, compare=False, repr=False)
    """The identities of the documents in :attr:`written` (which keeps them alive), kept as a
    set: deriving it at each save cost 60 µs per command at 1,000 groups."""
    dropped: list[int] = field(default_factory=list, compare=False, repr=False)
    """Numbers of stored ``recent`` entries dropped since the last save."""

    def remember(self, source: str, offset: int, outputs: list[Output]) -> None:
        """Keep an applied input's outputs for re-sending, the newest :data:`RECENT_INPUTS`."""
        self.recent.append([source, offset, outputs])
        self.numbers.append(None)
        while len(self.recent) > RECENT_INPUTS:
            del self.recent[0]
            number = self.numbers.pop(0)
            if number is not None:
                self.dropped.append(number)

    def save(self, table: Table, partition: int, space: str) -> None:
        """Store the state: the definition of each group that changed since the last save
        under a new version of its key, and each new ``recent`` entry under a key of its own;
        then the space's own document (everything else, and which keys are current); then the
        keys it no longer names deleted.

        A space of 1,000 groups was one document of about half a megabyte, and the outputs of
        its last 32 commands (group definitions included) tens of kilobytes more, written to
        RocksDB and to the changelog on every command. In this order, a crash between the
        writes leaves a state that reads back whole: before the space's document is written
        it names the old keys, still there (the command is applied again, and writes the same
        new keys); after it, the stale keys left are unreferenced (:meth:`read` reports them
        for deletion).
        """
        catalog = self.catalog.to_json()
        docs = catalog["groups"]
        stale: list[bytes] = []
        # The documents not written yet, found by identity with set operations: a command
        # changes one group, and a space may have thousands.
        fresh = set(map(id, docs)) - self.written_ids
        for doc in compress(docs, map(fresh.__contains__, map(id, docs))) if fresh else ():
            group_id = doc["group_id"]
            self.version += 1
            table.put(
                partition, catalog_group_key(space, group_id, self.version), orjson.dumps(doc)
            )
            if group_id in self.versions:  # updated
                stale.append(catalog_group_key(space, group_id, self.versions[group_id]))
                self.written_ids.discard(id(self.written[group_id]))
                if doc is docs[-1]:  # installed again (a conditions edit): last in the order
                    del self.versions[group_id]
            self.versions[group_id] = self.version  # else it keeps its place
            self.written[group_id] = doc
            self.written_ids.add(id(doc))
        for group_id in self.versions.keys() - self.catalog.groups.keys():
            stale.append(catalog_group_key(space, group_id, self.versions.pop(group_id)))
            self.written_ids.discard(id(self.written.pop(group_id)))
        catalog["groups"] = self.versions  # in the catalog's order (created last, last)
        for i, number in enumerate(self.numbers):
            if number is None:
                self.version += 1
                table.put(
                    partition,
                    catalog_recent_key(space, self.version),
                    orjson.dumps(self.recent[i]),
                )
                self.numbers[i] = self.version
        stale += [catalog_recent_key(space, number) for number in self.dropped]
        self.dropped = []
        head = {
            "catalog": catalog,
            "seq": self.seq,
            "created": self.created,
            "seen": self.seen,
            "recent": self.numbers,
            "decided": self.decided,
            "version": self.version,
        }
        table.put(partition, space_key(space), orjson.dumps(head))
        for key in stale:
            table.delete(partition, key)

    @classmethod
    def read(cls, table: Table, partition: int, space: str) -> tuple[SpaceState, list[bytes]]:
        """The space's state as :meth:`save` stored it (or as one document, the layout before
        group definitions had keys of their own: the next save moves them), and the keys of
        stored group definitions and outputs it does not name (left by a crash between a save's
        writes: safe to delete). Reads by scans only, so it works outside the partition's agent
        too."""
        key = space_key(space)
        rows = table.scan(partition, key, limit=1)
        if not rows or rows[0][0] != key:
            return cls(SpaceCatalog()), []
        doc = orjson.loads(rows[0][1])
        stored: dict[bytes, bytes] = {}
        after: bytes | None = None
        prefix = space_prefix(space)
        while chunk := table.scan(partition, prefix, after=after, limit=1000):
            stored.update(chunk)
            after = chunk[-1][0]
        groups = doc["catalog"]["groups"]
        if isinstance(groups, list):  # the one-document layout
            docs, versions = groups, {}
        else:
            versions = groups
            docs = [
                orjson.loads(stored.pop(catalog_group_key(space, group_id, version)))
                for group_id, version in versions.items()
            ]
        recent: list[list[Any]] = []
        numbers: list[int | None] = []
        for entry in doc["recent"]:
            if isinstance(entry, list):  # the one-document layout
                recent.append(entry)
                numbers.append(None)
                continue
            recent.append(orjson.loads(stored.pop(catalog_recent_key(space, entry))))
            numbers.append(entry)
        catalog = SpaceCatalog.from_json({**doc["catalog"], "groups": docs})
        state = cls(
            catalog=catalog,
            seq=doc["seq"],
            created=doc["created"],
            seen=doc["seen"],
            recent=recent,
            decided=doc.get("decided", {}),
            versions=versions,
            numbers=numbers,
            version=doc.get("version", 0),
        )
        for group_doc in catalog.to_json()["groups"]:
            if group_doc["group_id"] in versions:
                state.written[group_doc["group_id"]] = group_doc
                state.written_ids.add(id(group_doc))
        return state, sorted(stored)


class DefinitionsService:
    """Applies one ``group-changes`` record; bad input becomes a result or a dead letter."""

    def __init__(
        self, *, catalogs: Table, publisher: Publisher, topics: TopicNames, stats: Counter[str]
    ) -> None:
        self.catalogs = catalogs
        self.publish = publisher
        self.topics = topics
        self.stats = stats
        self.cache: dict[tuple[int, str], SpaceState] = {}

    async def handle(self, record: Record) -> None:
        topics = self.topics
        partition = record.partition  # where it is processed (and its state kept)
        if record.topic == topics.commands:
            record = unwrap_reroute(record)
        elif record.key is not None:
            owner = partition_for(record.key, topics.partitions)
            if owner != record.partition:
                await self.publish.send("commands", record.key, reroute_value(record), owner)
                self.stats["definitions.rerouted"] += 1
                return
        decoded = decode_group_change(record.key, record.value)
        if isinstance(decoded, DeadLetter):
            await self.publish.dead_letter(record, decoded)
            return
        assert record.key is not None
        state = self._load(partition, decoded.space)
        if state.seen.get(record.source, -1) >= record.offset:
            await self._resend(state, record.source, record.offset)
            self.stats["definitions.redelivered"] += 1
            return
        try:
            outputs = self._apply(state, decoded, record)
        except Exception:
            self.cache.pop((partition, decoded.space), None)
            raise
        state.seen[record.source] = record.offset
        state.remember(record.source, record.offset, outputs)
        state.save(self.catalogs, partition, decoded.space)
        await self._emit(outputs)

    def forget(self) -> None:
        """Drop cached states (after a rebalance, the table may have been rebuilt)."""
        self.cache.clear()

    def _load(self, partition: int, space: str) -> SpaceState:
        state = self.cache.get((partition, space))
        if state is None:
            state, stale = SpaceState.read(self.catalogs, partition, space)
            for key in stale:
                self.catalogs.delete(partition, key)
            self.cache[(partition, space)] = state
        return state

    def _apply(self, state: SpaceState, decoded: Any, record: Record) -> list[Output]:
        space, command_id, command_type = decoded.space, decoded.id, decoded.type
        group_id = decoded.event.get("group_id")
        group_id = group_id if isinstance(group_id, str) and is_id(group_id) else None
        try:
            command = parse_command(decoded.event)
            outcome = state.catalog.apply(command)
        except RuleError as rejection:
            self.stats["commands.rejected"] += 1
            self.stats["commands.rejected." + rejection.code] += 1
            result = command_result(
                space,
                command_id,
                command_type,
                group_id=group_id,
                code=rejection.code,
                message=rejection.message,
            )
            return [["results", None, space, result]]
        result = command_result(
            space,
            command_id,
            command_type,
            group_id=group_id,
            code=None if outcome.accepted else outcome.code,
            message=None if outcome.accepted else outcome.message,
        )
        self.stats["commands.accepted" if outcome.accepted else "commands.rejected"] += 1
        if not outcome.accepted:
            self.stats[f"commands.rejected.{outcome.code}"] += 1
        outputs: list[Output] = [["results", None, space, result]]
        effect = outcome.effect if outcome.accepted else None
        if effect is None or effect not in FANNED_OUT:
            return outputs
        state.seq += 1
        cause = dict(
            event_cause("definition", command_id, "group-changes", record.partition, record.offset)
        )
        if effect in SET_EFFECTS:
            assert outcome.segment_set is not None
            set_entry = {
                "set": outcome.segment_set.to_json(),
                "seq": state.seq,
                "deleted": effect == "segment_set_deleted",
            }
            outputs.append(
                ["fanout", EVERY_PARTITION, space, set_message(space, effect, set_entry, cause)]
            )
        elif effect in GROUP_EFFECTS:
            assert outcome.group is not None
            group_id = outcome.group.group_id
            if effect == "group_created":
                state.created[group_id] = state.seq
                if isinstance(command, GroupCreated) and command.blacklist:
                    blacklist = self._blacklist(space, group_id, command.blacklist, state, cause)
                    outputs.extend(blacklist)
            if effect in membership.GROUP_EFFECTS:
                state.decided[group_id] = state.seq
            entry = {
                "group": outcome.group.to_json(),
                "seq": state.seq,
                "created_seq": state.created.get(group_id, 0),
                "deleted": effect == "group_deleted",
                "decided_seq": state.decided.get(group_id, state.seq),
            }
            if effect == "group_deleted":
                state.created.pop(group_id, None)
                state.decided.pop(group_id, None)
            message = group_message(space, effect, entry, cause)
            outputs.append(["fanout", EVERY_PARTITION, space, message])
        else:
            member_id = decoded.event["member_id"]
            message = command_message(space, member_id, group_id, state.seq, effect, cause)
            key = member_key(space, member_id)
            owner = partition_for(key, self.topics.partitions)
            outputs.append(["fanout", owner, key.decode(), message])
        return outputs

    def _blacklist(
        self, space: str, group_id: str, member_ids: tuple[str, ...], state: SpaceState, cause: Any
    ) -> list[Output]:
        """The blacklist of a created group: one message per owning partition, with the
        group's ``created_seq``, sent before the group's own message (so before its backfill)."""
        by_partition: dict[int, list[str]] = {}
        for member_id in member_ids:
            owner = partition_for(member_key(space, member_id), self.topics.partitions)
            by_partition.setdefault(owner, []).append(member_id)
        return [
            ["fanout", p, space, blacklist_message(space, group_id, state.seq, ids, cause)]
            for p, ids in sorted(by_partition.items())
        ]

    async def _emit(self, outputs: list[Output]) -> None:
        for role, partition, key, value in outputs:
            payload = orjson.dumps(value)
            if partition == EVERY_PARTITION:
                for p in range(self.topics.partitions):
                    await self.publish.send(role, key.encode(), payload, p)
            else:
                await self.publish.send(role, key.encode(), payload, partition)

    async def _resend(self, state: SpaceState, source: str, offset: int) -> None:
        for entry_source, entry_offset, outputs in state.recent:
            if entry_source == source and entry_offset == offset:
                await self._emit(outputs)
                return
