"""Segment sets (contract section 9): an ordered list of groups and a fallback label.

Every member of a space has exactly one segment in each set: the first group of the list, in
order, that is live (exists and is active) and that the member is in, otherwise the fallback
(``None`` here and on the wire). :func:`resolve_member` re-resolves every set of the space for
one member after anything that can change its memberships, and returns one
:class:`SegmentChange` per set whose segment changed, with its ``version`` (1, 2, 3 … per
(set, member), counted in the member record's ``segments``).

Decisions where the contract is silent:

* A member with no record, or whose segment was always the fallback, has no entry: nothing is
  emitted for it until it gets a group of the set.
* **Deleting a set** sends every member whose segment was a group back to the fallback (one
  ``segment.changed`` to ``null`` and a ``segment-state`` tombstone), so the compacted topic
  holds no stale segment; the version counters survive, so a set defined again with the same id
  continues them (ids never collide).
* A member's segments are resolved when its memberships change and when a set's resolution
  reaches it. A deactivated group of the list is skipped by every resolution, even one that
  happens before the deactivation's backfill has removed the member from it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class SegmentSet:
    """A segment set as defined: ``groups`` in order of precedence, the ``fallback`` label."""

    set_id: str
    name: str
    groups: tuple[str, ...]
    fallback: str

    def to_json(self) -> dict[str, Any]:
        return {
            "set_id": self.set_id,
            "name": self.name,
            "groups": list(self.groups),
            "fallback": self.fallback,
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> SegmentSet:
        return cls(doc["set_id"], doc["name"], tuple(doc["groups"]), doc["fallback"])


@dataclass(frozen=True, slots=True)
class SetEntry:
    """One segment set on the member side: the set, the ``seq`` of its last change (lower or
    equal ``seq`` = a duplicate, ignored) and whether it was deleted."""

    segment_set: SegmentSet
    seq: int
    deleted: bool = False
    positions: dict[str, int] = field(init=False, repr=False, compare=False)
    """Each listed group's place in the list (derived)."""

    def __post_init__(self) -> None:
        positions = {g: i for i, g in enumerate(self.segment_set.groups)}
        object.__setattr__(self, "positions", positions)

    def to_json(self) -> dict[str, Any]:
        return {"set": self.segment_set.to_json(), "seq": self.seq, "deleted": self.deleted}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> SetEntry:
        return cls(SegmentSet.from_json(doc["set"]), int(doc["seq"]), bool(doc["deleted"]))


@dataclass(slots=True)
class Segment:
    """A member's segment in one set: the group (None: the fallback), ``version``, since (ms)."""

    segment: str | None
    version: int
    since_ms: int


@dataclass(frozen=True, slots=True)
class SegmentChange:
    """One change of a member's segment in a set."""

    set_id: str
    segment: str | None
    previous: str | None
    version: int


def resolve(entry: SetEntry, live: Mapping[str, Any], member_groups: Sequence[str]) -> str | None:
    """The member's segment in the set of ``entry``: the first listed group that is live
    (``live`` maps a group id to its entry, which has ``live``) and among ``member_groups`` (the
    groups the member is in), else None. Walks whichever of the two lists is shorter."""
    groups = entry.segment_set.groups
    if len(member_groups) < len(groups):
        positions = entry.positions
        best, best_at = None, len(groups)
        for group_id in member_groups:
            at = positions.get(group_id)
            if at is not None and at < best_at:
                group = live.get(group_id)
                if group is not None and group.live:
                    best, best_at = group_id, at
        return best
    member = set(member_groups)
    for group_id in groups:
        if group_id in member:
            group = live.get(group_id)
            if group is not None and group.live:
                return group_id
    return None


def resolve_member(
    member: Any, sets: Mapping[str, SetEntry], groups: Mapping[str, Any], now_ms: int
) -> list[SegmentChange]:
    """Re-resolve every set in ``sets`` for ``member`` (a ``MemberRecord``); update its
    ``segments`` and return the changes, in set id order (deterministic outputs)."""
    changes: list[SegmentChange] = []
    segments: dict[str, Segment] = member.segments
    member_groups = member.pairs.member_of()
    for set_id in sorted(sets):
        entry = sets[set_id]
        target = None if entry.deleted else resolve(entry, groups, member_groups)
        current = segments.get(set_id)
        previous = current.segment if current is not None else None
        if target == previous:
            continue
        version = (current.version if current is not None else 0) + 1
        segments[set_id] = Segment(target, version, now_ms)
        changes.append(SegmentChange(set_id, target, previous, version))
    return changes
