"""The group definitions of one space as the member side sees them.

Every member partition keeps its own copy of each space's groups, fed by the definitions fan-out
in the order the definitions agent accepted them. Each copy is a :class:`GroupEntry`: the group,
the ``seq`` of the last definition change applied to it (the ``group-changes`` offset; changes
with a lower or equal ``seq`` are duplicates and ignored) and the ``created_seq`` of the
``group.created`` that made it. Static-membership and blacklist commands older than
``created_seq`` belong to an earlier group that had the same id, so they are void: deleting and
re-creating a group never resurrects its old members.

:class:`SpaceGroups` pairs the entries with the :class:`~smartgroups.core.matching.GroupIndex`
that finds candidate groups for changed fields.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from smartgroups.core.catalog import Group
from smartgroups.core.conditions import Predicate, compile_condition
from smartgroups.core.conditions.model import time_fields
from smartgroups.core.matching import GroupIndex
from smartgroups.core.segments import SetEntry

_NONE: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class GroupEntry:
    """One group of a space on the member side (see the module docstring).

    Derived once, so that deciding a member reads one object per group: ``live`` (exists and
    is active: members can be in it), ``predicate`` (the compiled conditions of a smart group;
    None for a static group or one without conditions) and ``time_fields`` (the fields its
    time-relative triggers read).
    """

    group: Group
    seq: int
    created_seq: int
    deleted: bool = False
    decided_seq: int = -1
    """The ``seq`` of the group's last change that re-decides every member (created, edited,
    (de)activated, deleted): a backfill scan of another ``seq`` is stale. -1: ``seq``."""
    live: bool = field(init=False, repr=False, compare=False)
    predicate: Predicate | None = field(init=False, repr=False, compare=False)
    time_fields: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.decided_seq < 0:
            object.__setattr__(self, "decided_seq", self.seq)
        group = self.group
        conditions = group.conditions if group.kind == "smart" else None
        object.__setattr__(self, "live", not self.deleted and group.active)
        predicate = compile_condition(conditions) if conditions is not None else None
        object.__setattr__(self, "predicate", predicate)
        timed = time_fields(conditions) if conditions is not None else _NONE
        object.__setattr__(self, "time_fields", timed)

    def __reduce__(self) -> tuple[type, tuple[object, ...]]:
        """Pickles and copies without the derived fields (a native predicate does not pickle)."""
        return (
            type(self),
            (self.group, self.seq, self.created_seq, self.deleted, self.decided_seq),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "group": self.group.to_json(),
            "seq": self.seq,
            "created_seq": self.created_seq,
            "deleted": self.deleted,
            "decided_seq": self.decided_seq,
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> GroupEntry:
        return cls(
            group=Group.from_json(doc["group"]),
            seq=int(doc["seq"]),
            created_seq=int(doc["created_seq"]),
            deleted=bool(doc["deleted"]),
            decided_seq=int(doc.get("decided_seq", -1)),
        )


class SpaceGroups:
    """The member side's groups of one space, with the matching index over the existing ones."""

    __slots__ = ("entries", "index", "sets")

    def __init__(self) -> None:
        self.entries: dict[str, GroupEntry] = {}
        self.index = GroupIndex()
        self.sets: dict[str, SetEntry] = {}  # segment sets by id, deleted ones included

    def apply_set(self, entry: SetEntry) -> bool:
        """Install a segment set's change unless one with the same or a later ``seq`` is in."""
        set_id = entry.segment_set.set_id
        current = self.sets.get(set_id)
        if current is not None and current.seq >= entry.seq:
            return False
        self.sets[set_id] = entry
        return True

    def apply(self, entry: GroupEntry) -> bool:
        """Install ``entry`` unless a change with the same or a later ``seq`` is already in.

        Returns whether anything changed.
        """
        group_id = entry.group.group_id
        current = self.entries.get(group_id)
        if current is not None and current.seq >= entry.seq:
            return False
        if current is not None and not current.deleted:
            self.index.remove(group_id)
        self.entries[group_id] = entry
        if not entry.deleted:
            try:
                self.index.add(entry.group)
            except ValueError:
                # ranks only rise as groups are edited; should they outgrow the index, rank
                # afresh (the catalog keeps the references acyclic, so this always succeeds)
                self.index = GroupIndex()
                for live in self.entries.values():
                    if not live.deleted:
                        self.index.add(live.group)
        return True

    def get(self, group_id: str) -> GroupEntry | None:
        """The entry of ``group_id``, deleted or not, if this side has ever seen it."""
        return self.entries.get(group_id)

    def smart_groups(self) -> list[str]:
        """Ids of the live smart groups (evaluated when a member becomes eligible)."""
        return [g for g, e in self.entries.items() if e.live and e.group.kind == "smart"]
