"""``smartgroups reset``: rewind the app's consumer groups on the input topics (contract §8).

As Kafka Streams' application reset tool does: ``--to-earliest`` (the default) or
``--to-datetime TS`` (the first offset at or after ``TS``, by the broker's offsets-for-times;
the end of the partition when nothing is that recent), on every input topic, or the ones named
by ``--topics`` (contract names, comma-separated). Both of the app's consumer groups move:

* ``{app}`` -- faust's group, which reads ``group-changes`` (and the member topics too with
  ``SMARTGROUPS_MEMBER_PATH=agent``);
* ``{app}-members`` -- the batch member loop's group, which reads the member topics.

A dry run by default: one table row per group, topic and partition -- the committed offset now,
the target, and how many records would be read again. ``--execute`` commits the targets. Either
way it refuses (exit status 2, one line naming the group) while any consumer is in either group:
a running worker would commit its own offsets over the new ones.

Replaying inputs that were applied emits nothing new (contract §4): each member record knows the
offsets it applied and re-sends the outputs it kept, with the same ids and versions.

Decisions where the contract is silent:

* The internal topics (``{app}-fanout``, ``{app}-commands``) do not move: what they carry is
  derived from the inputs, and the replayed inputs produce it again where it is needed.
* A partition the group never committed is shown with ``-`` as its current offset and is moved
  too (with ``auto_offset_reset=earliest`` the worker would start there anyway at earliest).
* A target past the committed offset (``--to-datetime`` in the future of what was read) is
  applied as well: the table shows a negative count, the records that would be skipped.
"""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from smartgroups.cli import connect, groups
from smartgroups.cli.options import add_connection_flags, settings_from
from smartgroups.core.values import parse_instant
from smartgroups.errors import UsageError
from smartgroups.settings import Settings
from smartgroups.wire.topics import GROUP_CHANGES, INPUTS, MEMBER_INPUTS
from smartgroups.worker.topology import Topology


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "reset", help="rewind the app's consumer groups on the input topics (dry run by default)"
    )
    add_connection_flags(parser)
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--to-earliest", action="store_true", help="to the earliest retained record (default)"
    )
    where.add_argument(
        "--to-datetime", metavar="TS", help="to the first record at or after TS (RFC 3339)"
    )
    parser.add_argument(
        "--topics",
        metavar="T,...",
        help=f"input topics to rewind (default all: {','.join(INPUTS)})",
    )
    parser.add_argument("--execute", action="store_true", help="move the offsets (else: dry run)")


@dataclass(frozen=True, slots=True)
class Move:
    """One partition of one group: its committed offset now and where it goes."""

    group: str
    topic: str
    partition: int
    current: int | None
    target: int

    @property
    def reread(self) -> int:
        """Records read again after the move (negative: skipped)."""
        return (self.current if self.current is not None else self.target) - self.target


def parse_topics(text: str | None) -> tuple[str, ...]:
    if text is None:
        return INPUTS
    names = tuple(t.strip() for t in text.split(",") if t.strip())
    wrong = [t for t in names if t not in INPUTS]
    if not names or wrong:
        raise UsageError(
            f"--topics {text}: {', '.join(wrong) or 'no topic'} is not an input topic"
            f" (give some of {', '.join(INPUTS)}, comma-separated)"
        )
    return names


def parse_datetime(text: str) -> int:
    """``TS`` as epoch milliseconds; a :class:`UsageError` when it is not RFC 3339."""
    instant = parse_instant(text)
    if instant is None:
        raise UsageError(
            f"--to-datetime {text}: not an RFC 3339 timestamp (e.g. 2026-12-01T10:00:00Z)"
        )
    return int(instant.astimezone(UTC).timestamp() * 1000)


def run(args: argparse.Namespace) -> int:
    topics = parse_topics(args.topics)
    at_ms = parse_datetime(args.to_datetime) if args.to_datetime is not None else None
    settings = settings_from(args)
    moves = asyncio.run(_reset(settings, topics, at_ms, args.execute))
    print(table(moves))
    when = (
        "the earliest retained offsets"
        if at_ms is None
        else datetime.fromtimestamp(at_ms / 1000, UTC).isoformat().replace("+00:00", "Z")
    )
    total = sum(max(0, m.reread) for m in moves)
    if args.execute:
        print(f"reset {len(moves)} partitions to {when}: {total} records will be read again")
    else:
        print(
            f"dry run: {len(moves)} partitions would move to {when} ({total} records read again);"
            " add --execute to move them"
        )
    return 0


def group_topics(topology: Topology, topics: tuple[str, ...]) -> dict[str, list[str]]:
    """The full input topic names each consumer group of the app may read, among ``topics``
    (the member topics in both: the agent member path reads them in ``{app}``)."""
    prefix = topology.group_changes[: -len(GROUP_CHANGES)]
    members = [prefix + t for t in topics if t in MEMBER_INPUTS]
    app = [prefix + t for t in topics if t == GROUP_CHANGES]
    return {topology.app_id: app + members, topology.member_group: members}


def readers(topology: Topology, committed: dict[str, dict[Any, int | None]]) -> dict[str, set[str]]:
    """Which groups read each topic: those that committed on it; for a topic none did,
    ``group-changes`` is faust's group's and a member topic the member loop's (the default)."""
    out: dict[str, set[str]] = {}
    for group_id, offsets in committed.items():
        for tp, offset in offsets.items():
            if offset is not None:
                out.setdefault(tp.topic, set()).add(group_id)
    for offsets in committed.values():
        for tp in offsets:
            alone = topology.app_id if tp.topic == topology.group_changes else topology.member_group
            out.setdefault(tp.topic, {alone})
    return out


async def _reset(
    settings: Settings, topics: tuple[str, ...], at_ms: int | None, execute: bool
) -> list[Move]:
    topology = Topology.from_settings(settings)
    plan = group_topics(topology, topics)
    async with connect.kafka_session(settings) as session:
        admin = await groups.admin_client(settings, session)
        consumer = None
        try:
            busy = {g: n for g, n in (await groups.members(admin, list(plan))).items() if n}
            if busy:
                described = ", ".join(f"{g} has {n} consumer(s)" for g, n in busy.items())
                raise UsageError(
                    f"the app's workers are running ({described})"
                    " (stop every `smartgroups worker` of the app first, then reset)"
                )
            consumer = await groups.reader(settings, session)
            every = sorted({t for names in plan.values() for t in names})
            tps = await groups.partitions(consumer, every, session)
            targets = await _targets(consumer, tps, at_ms)
            now = {
                group_id: await groups.committed(
                    admin, group_id, [tp for tp in tps if tp.topic in names]
                )
                for group_id, names in plan.items()
            }
            read_by = readers(topology, now)
            moves = [
                Move(group_id, tp.topic, tp.partition, offset, targets[tp])
                for group_id, offsets in now.items()
                for tp, offset in offsets.items()
                if group_id in read_by[tp.topic]
            ]
            if execute:
                for group_id in plan:
                    offsets = {
                        _tp(m.topic, m.partition): m.target for m in moves if m.group == group_id
                    }
                    await groups.commit(settings, session, group_id, offsets)
            return moves
        finally:
            if consumer is not None:
                await connect.stop(consumer)
            await connect.stop(admin)


def _tp(topic: str, partition: int) -> Any:
    from aiokafka import TopicPartition

    return TopicPartition(topic, partition)


async def _targets(consumer: Any, tps: list[Any], at_ms: int | None) -> dict[Any, int]:
    beginnings = await consumer.beginning_offsets(tps)
    if at_ms is None:
        return {tp: int(beginnings[tp]) for tp in tps}
    ends = await consumer.end_offsets(tps)
    found = await consumer.offsets_for_times(dict.fromkeys(tps, at_ms))
    return {tp: int(found[tp].offset) if found.get(tp) is not None else int(ends[tp]) for tp in tps}


def table(moves: list[Move]) -> str:
    """The dry run's table: group, topic, partition, current, target, records read again."""
    header = ("group", "topic", "partition", "current", "target", "reread")
    rows = [
        (
            m.group,
            m.topic,
            str(m.partition),
            "-" if m.current is None else str(m.current),
            str(m.target),
            str(m.reread),
        )
        for m in moves
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = []
    for row in [header, *rows]:
        cells = [
            cell.ljust(w) if i < 2 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)
