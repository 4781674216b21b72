"""The shapes of the processor's outputs (contract section 4), as plain JSON-ready dicts.

Every function here is deterministic in its arguments: the same transition rendered twice gives
the same bytes once encoded, which is what makes re-sent outputs identical to the originals.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from smartgroups.core.ids import change_id, segment_change_id
from smartgroups.core.membership import Transition
from smartgroups.core.segments import SegmentChange, SetEntry
from smartgroups.core.space import GroupEntry

Cause = Mapping[str, Any]
"""``{"kind": "event"|"definition"|"time", "event_id"?, "topic"?, "partition"?, "offset"?}``."""


def event_cause(kind: str, event_id: str, topic: str, partition: int, offset: int) -> Cause:
    """The cause of transitions produced by one input record (``kind`` event or definition)."""
    return {
        "kind": kind,
        "event_id": event_id,
        "topic": topic,
        "partition": partition,
        "offset": offset,
    }


TIME_CAUSE: Cause = {"kind": "time"}
"""The cause of transitions a time-relative trigger made with no new input."""


def iso_ms(instant_ms: int) -> str:
    """RFC 3339 UTC with milliseconds, e.g. ``2026-11-22T10:00:01.250Z``."""
    seconds, millis = divmod(instant_ms, 1000)
    return f"{_iso_second(seconds)}.{millis:03d}Z"


@lru_cache(maxsize=256)
def _iso_second(seconds: int) -> str:
    """``YYYY-MM-DDTHH:MM:SS`` of an epoch second (outputs of one batch share a few seconds)."""
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")


def group_summary(entry: GroupEntry) -> dict[str, Any]:
    """What consumers need of the group without a lookup: name, kind, slug, resources."""
    group = entry.group
    summary: dict[str, Any] = {"name": group.name, "kind": group.kind}
    if group.slug is not None:
        summary["slug"] = group.slug
    summary["resources"] = [{"type": r.type, "id": r.id} for r in group.resources]
    return summary


def membership_change(
    space: str,
    member_id: str,
    transition: Transition,
    entry: GroupEntry,
    cause: Cause,
    at_ms: int,
) -> dict[str, Any]:
    """A ``member.added`` / ``member.removed`` event; ``id`` is ``space:group:member:version``."""
    group_id = transition.group_id
    return {
        "id": change_id(space, group_id, member_id, transition.version),
        "type": "member.added" if transition.added else "member.removed",
        "space": space,
        "group_id": group_id,
        "member_id": member_id,
        "version": transition.version,
        "reason": transition.reason,
        "at": iso_ms(at_ms),
        "group": group_summary(entry),
        "cause": dict(cause),
    }


def membership_state(
    space: str, group_id: str, member_id: str, version: int, since_ms: int
) -> dict[str, Any]:
    """The compacted ``membership-state`` value while the member is in the group."""
    return {
        "space": space,
        "group_id": group_id,
        "member_id": member_id,
        "version": version,
        "since": iso_ms(since_ms),
    }


def command_result(
    space: str,
    command_id: str,
    command_type: str,
    *,
    group_id: str | None,
    code: str | None,
    message: str | None,
) -> dict[str, Any]:
    """``command.accepted`` (no code) or ``command.rejected`` for one ``group-changes`` record."""
    result: dict[str, Any] = {
        "id": f"{space}:{command_id}:result",
        "type": "command.rejected" if code else "command.accepted",
        "space": space,
        "command_id": command_id,
        "command_type": command_type,
    }
    if group_id is not None:
        result["group_id"] = group_id
    if code:
        result["code"] = code
        if message:
            result["message"] = message
    return result


def segment_change(
    space: str,
    member_id: str,
    change: SegmentChange,
    entry: SetEntry,
    slug: str | None,
    cause: Cause,
    at_ms: int,
) -> dict[str, Any]:
    """A ``segment.changed`` event (contract section 9); ``id`` is ``space:set:member:version``.

    ``slug`` is the new segment group's slug (None for the fallback). ``fallback`` (an addition
    to the contract's fields) is the set's fallback label, so a consumer routes without lookup.
    """
    return {
        "id": segment_change_id(space, change.set_id, member_id, change.version),
        "type": "segment.changed",
        "space": space,
        "set_id": change.set_id,
        "member_id": member_id,
        "version": change.version,
        "segment": change.segment,
        "previous": change.previous,
        "slug": slug,
        "fallback": entry.segment_set.fallback,
        "at": iso_ms(at_ms),
        "cause": dict(cause),
    }


def segment_state(
    space: str, set_id: str, member_id: str, segment: str, version: int, since_ms: int
) -> dict[str, Any]:
    """The compacted ``segment-state`` value while the member's segment is not the fallback."""
    return {
        "space": space,
        "set_id": set_id,
        "member_id": member_id,
        "segment": segment,
        "version": version,
        "since": iso_ms(since_ms),
    }
