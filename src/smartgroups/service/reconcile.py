"""Reconcile: re-decide every member of a scope against the current definitions (contract §8).

``smartgroups reconcile`` sends one :func:`reconcile_message` to **every** partition of the
fan-out topic. On each partition the members service (:func:`step`) scans the partition's
members of the scope (one space, or all of them) in steps of ``scan_chunk`` members, like a
backfill, sending the next step to itself so that live inputs interleave with a long reconcile.
Each member's groups of the scope (one group, or all of its space's) are decided again by the
core (:func:`smartgroups.core.membership.decide`); only the differences are transitions, emitted
with ``cause = {"kind": "reconcile"}`` and applied like any other (versions, state, outbox).

With ``dry`` the decisions are taken on a copy of each member record and thrown away: nothing
is stored or emitted, only counted. Either way the last step of each partition sends a
:func:`report_message` (``k = "reconcile-report"``) to the fan-out topic with the number of
members scanned and the differences per ``space:group``; the members service ignores it and the
CLI reads it to print the result.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

import orjson

from smartgroups.core import membership
from smartgroups.core.ids import space_prefix
from smartgroups.core.membership import Transition
from smartgroups.core.record import MemberRecord
from smartgroups.core.space import SpaceGroups
from smartgroups.service import record_codec
from smartgroups.service.ports import Record

RECONCILE = "reconcile"
REPORT = "reconcile-report"
RECONCILE_CAUSE = {"kind": "reconcile"}


def reconcile_message(
    run: str,
    space: str | None,
    group_id: str | None,
    dry: bool,
    after: str | None = None,
    counts: dict[str, int] | None = None,
    scanned: int = 0,
) -> bytes:
    """A reconcile step: the run id, the scope, and where the previous step stopped."""
    return orjson.dumps(
        {
            "k": RECONCILE,
            "run": run,
            "space": space,
            "group_id": group_id,
            "dry": dry,
            "after": after,
            "counts": counts or {},
            "scanned": scanned,
        }
    )


def report_message(
    run: str, partition: int, dry: bool, scanned: int, counts: dict[str, int]
) -> bytes:
    """What one partition found: members scanned, differences by ``space:group``."""
    return orjson.dumps(
        {
            "k": REPORT,
            "run": run,
            "partition": partition,
            "dry": dry,
            "scanned": scanned,
            "counts": counts,
        }
    )


async def step(service: Any, record: Record, doc: dict[str, Any]) -> None:
    """One reconcile step on ``record``'s partition (see the module docstring); ``service`` is
    the :class:`~smartgroups.service.members.MemberService` that read it (not imported: it
    imports this module)."""
    partition = record.partition
    run, space_id, group_id, dry = doc["run"], doc.get("space"), doc.get("group_id"), doc["dry"]
    prefix = space_prefix(space_id) if space_id else b""
    after = doc["after"].encode() if doc.get("after") else None
    chunk = service.members.scan(partition, prefix, after=after, limit=service.scan_chunk)
    counts: Counter[str] = Counter(doc.get("counts") or {})

    def scope(space: SpaceGroups) -> list[str]:
        return [group_id] if group_id else sorted(space.entries)

    for key, raw in chunk:
        member_space, _, member_id = key.decode().partition(":")
        space = service._space(partition, member_space)
        if dry:
            transitions = membership.decide(
                record_codec.loads(raw), space, scope(space), service.clock()
            )
        else:
            found: list[Transition] = []

            def change(
                rec: MemberRecord,
                space: SpaceGroups,
                now: datetime,
                found: list[Transition] = found,
            ) -> list[Transition]:
                found.extend(membership.decide(rec, space, scope(space), now))
                return found

            await service._apply(
                partition, member_space, member_id, record.source, record.offset, change,
                RECONCILE_CAUSE, raw=raw,
            )  # fmt: skip
            transitions = found
        for transition in transitions:
            counts[f"{member_space}:{transition.group_id}"] += 1
    scanned = int(doc.get("scanned") or 0) + len(chunk)
    service.stats["reconcile.members"] += len(chunk)
    if service.on_scan is not None:  # progress, like a backfill's
        last = len(chunk) < service.scan_chunk
        service.on_scan(
            partition, space_id or "", f"reconcile:{run}", after is None, len(chunk), last
        )
    if len(chunk) == service.scan_chunk:
        follow = reconcile_message(
            run, space_id, group_id, dry, chunk[-1][0].decode(), dict(counts), scanned
        )
        await service.publish.send("fanout", prefix or b"reconcile", follow, partition)
        return
    report = report_message(run, partition, dry, scanned, dict(counts))
    await service.publish.send("fanout", b"reconcile-report", report, partition)
