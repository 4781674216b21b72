"""Backfills and due-time checks run in process, their progress kept beside the member records.

When a group is created, activated, deactivated or deleted, every member of its space on the
partition must be decided again for it. On the batch member path that is a :class:`ScanJob`,
stepped by the member loop between fetched batches (a bounded number of members each time, so
live inputs keep their turn), instead of a chain of ``scan`` messages through the fan-out topic
(one Kafka round trip per step, which held backfills to a few thousand members per second).

A job lives in the partition's *members* table under :func:`job_key` -- a key that sorts after
every member key (``0xff`` never starts a space id), so it reaches the members changelog after
the member records the same checkpoint changed on that partition: a job whose cursor reached
the changelog implies the records it scanned are there too (one partition of one topic keeps
its order). A job is keyed by group, so a newer change of the group replaces it (the older one
is abandoned); a job ends when its scan reaches the end of the space.

Every member a job decides is applied as input ``offset`` (the fan-out offset of the group
change) of the source :func:`scan_source`: one source per partition, whose offsets only grow as
jobs start in fan-out order, so a member already decided by a job (before a crash) is
recognised and not decided twice.

Due-time checks (contract section 5) work the same way on that path: every
``SMARTGROUPS_TICK_INTERVAL`` the loop decides the members whose due instant has come, a slice
at a time, instead of a ``tick`` message through the fan-out. Each slice is input number *n* of
the source :func:`tick_source`, *n* counted per partition under :data:`TICK_COUNT_KEY` (after the
member keys too).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from smartgroups.core.ids import group_key
from smartgroups.service.ports import source_name

JOB_PREFIX = b"\xffscan:"
"""Members-table keys of scan jobs (after every ``space:member`` key)."""


def job_key(space: str, group_id: str) -> bytes:
    """The members-table key of the scan job of ``group_id`` in ``space``."""
    return JOB_PREFIX + group_key(space, group_id)


TICK_COUNT_KEY = b"\xfftick"
"""Members-table key of the partition's count of due-time slices."""


def tick_source(partition: int) -> str:
    """The input source a partition's due-time slices apply members as."""
    return source_name("tick", partition)


def scan_source(partition: int) -> str:
    """The input source a partition's scan jobs apply members as."""
    return source_name("scan", partition)


@dataclass(slots=True)
class ScanJob:
    """One backfill: decide ``group_id`` again for every member of ``space`` after ``after``."""

    space: str
    group_id: str
    seq: int
    effect: str
    cause: Any
    offset: int
    after: bytes | None = None

    @property
    def key(self) -> bytes:
        return job_key(self.space, self.group_id)

    def dumps(self) -> bytes:
        return orjson.dumps(
            {
                "space": self.space,
                "group_id": self.group_id,
                "seq": self.seq,
                "effect": self.effect,
                "cause": self.cause,
                "offset": self.offset,
                "after": None if self.after is None else self.after.decode(),
            }
        )

    @classmethod
    def loads(cls, raw: bytes) -> ScanJob:
        doc = orjson.loads(raw)
        after = doc["after"]
        return cls(
            doc["space"],
            doc["group_id"],
            int(doc["seq"]),
            doc["effect"],
            doc["cause"],
            int(doc["offset"]),
            None if after is None else after.encode(),
        )
