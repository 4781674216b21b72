"""Matching that scales: which groups can a member change affect, and in which order to decide.

:class:`GroupIndex` holds one space's groups (on the worker: per partition; mutable and
incremental) as indexes, never as a list to scan:

* field → ids of the groups whose triggers read it (:meth:`GroupIndex.candidates`);
* group → ids of the groups whose ``groups`` triggers name it (:meth:`GroupIndex.dependents`);
* a topological **rank** per group: greater than the rank of every group it names
  (:meth:`GroupIndex.rank`), so deciding in rank order sees every named group's final verdict;
* per group, the fields its time-relative triggers read (:meth:`GroupIndex.time_fields`), and
  per field the next instant a time-relative trigger changes for a value
  (:meth:`GroupIndex.next_flip`) and the groups whose triggers changed over an interval
  (:meth:`GroupIndex.elapsed`).

Groups are indexed whether active or not (deciding an inactive group is the caller's business:
it simply has no members), and may be added in any order: a group naming one that is not in the
index yet gets its rank fixed when that one arrives. Only the ``groups`` references of a valid
catalog state are acyclic — the catalog guarantees it, since a group may only name groups that
exist before it and a named group cannot be deleted — so :meth:`GroupIndex.add` raises
``ValueError`` on a cycle instead of looping.

:func:`cascade` re-decides one member's memberships after a change. It takes the start groups
(the candidates), a ``decide(group_id, groups_now)`` callback returning the membership verdict
given the member's current group set (the caller folds eligibility, blacklists, static lists
and conditions into it) and the member's current groups, and returns the flips.

Why each group is decided **at most once** per cascade: groups wait in one bucket per rank and
the buckets are taken in increasing rank. A group is only ever queued as a dependent of a group
being decided, so its rank is greater than that group's: it lands in a later bucket. Hence once
the bucket of rank *r* is taken, no group of rank ≤ *r* — in particular none that a group *g* of
rank *r* names — is queued again: every group *g* reads already has its final verdict, and
deciding *g* again could not give another answer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime

from smartgroups.core.catalog import Group
from smartgroups.core.conditions import Trigger
from smartgroups.core.conditions.model import time_fields
from smartgroups.core.flips import FieldTriggers, polarities

Decide = Callable[[str, frozenset[str]], bool]
"""``decide(group_id, groups_now)``: is the member in ``group_id`` given its current groups?"""

_NO_NAMES: frozenset[str] = frozenset()


class GroupIndex:
    """The matching indexes over one space's groups; see the module docstring."""

    __slots__ = (
        "_by_field",
        "_dependents",
        "_fields",
        "_names",
        "_rank",
        "_time_fields",
        "_triggers",
        "_triggers_of",
    )

    def __init__(self) -> None:
        self._by_field: dict[str, set[str]] = {}
        self._fields: dict[str, frozenset[str]] = {}
        self._names: dict[str, frozenset[str]] = {}
        self._dependents: dict[str, set[str]] = {}
        self._rank: dict[str, int] = {}
        self._time_fields: dict[str, frozenset[str]] = {}
        self._triggers: dict[str, FieldTriggers] = {}
        self._triggers_of: dict[str, tuple[Trigger, ...]] = {}

    def __contains__(self, group_id: object) -> bool:
        return group_id in self._rank

    def __len__(self) -> int:
        return len(self._rank)

    def add(self, group: Group) -> None:
        """Index ``group`` (replacing a group with the same id)."""
        group_id = group.group_id
        if group_id in self._rank:
            self.remove(group_id)
        refs = group.references
        fields = frozenset(refs.fields) if refs is not None else _NO_NAMES
        names = frozenset(refs.groups) if refs is not None else _NO_NAMES
        self._fields[group_id] = fields
        for field_name in fields:
            self._by_field.setdefault(field_name, set()).add(group_id)
        self._names[group_id] = names
        for named in names:
            self._dependents.setdefault(named, set()).add(group_id)
        if group.conditions is not None:
            found = polarities(group.conditions)
            timed = time_fields(group.conditions)
            if timed:
                self._time_fields[group_id] = timed
            self._triggers_of[group_id] = tuple(found)
            for trigger, polarity in found.items():
                table = self._triggers.get(trigger.field)
                if table is None:
                    table = self._triggers[trigger.field] = FieldTriggers()
                table.add(trigger, group_id, polarity)
        self._rank[group_id] = 1 + max(
            (self._rank[n] for n in names if n in self._rank), default=-1
        )
        self._raise_dependents(group_id)

    def remove(self, group_id: str) -> None:
        """Forget ``group_id`` (no-op if absent). Groups naming it keep their (valid) ranks."""
        if self._rank.pop(group_id, None) is None:
            return
        for field_name in self._fields.pop(group_id):
            users = self._by_field[field_name]
            users.discard(group_id)
            if not users:
                del self._by_field[field_name]
        for named in self._names.pop(group_id):
            dependents = self._dependents[named]
            dependents.discard(group_id)
            if not dependents:
                del self._dependents[named]
        self._time_fields.pop(group_id, None)
        for trigger in self._triggers_of.pop(group_id, ()):
            table = self._triggers[trigger.field]
            table.discard(trigger, group_id)
            if not table:
                del self._triggers[trigger.field]

    def candidates(self, changed_fields: Iterable[str]) -> set[str]:
        """Ids of the groups whose triggers read any of ``changed_fields`` (index lookups)."""
        found: set[str] = set()
        for field_name in changed_fields:
            users = self._by_field.get(field_name)
            if users:
                found |= users
        return found

    def affected(
        self,
        changes: Mapping[str, tuple[object, object]],
        current: frozenset[str],
        now: datetime,
    ) -> set[str]:
        """The groups whose verdict a change can flip: a pruned :meth:`candidates`.

        ``changes`` maps each changed field to its ``(old, new)`` value as the member's snapshot
        holds it (None when missing); ``current`` is the member's groups before the change.
        Returns a subset of ``candidates(changes)`` that still holds every group whose verdict
        can differ, given that each group's membership in ``current`` was decided on the old
        values and that no time-relative trigger on a changed field has changed since for its
        old value (the worker's invariant; when one has, add :meth:`elapsed`): a group is kept
        when one of its triggers on a changed field flipped at ``now`` in the direction that can
        change its membership — a rise for a group the member is out of, a fall for one it is
        in, inverted under ``not``. See :mod:`smartgroups.core.flips`.
        """
        # groups using a trigger that rose / fell, positively or under a `not`
        rose_in, rose_not, fell_in, fell_not = set(), set(), set(), set()
        for field_name, (old, new) in changes.items():
            table = self._triggers.get(field_name)
            if table is None:
                continue
            for entry, rose in table.flips(old, new, now):
                if rose:
                    rose_in |= entry.positive
                    if entry.negative_in:
                        rose_not |= entry.negative_in
                else:
                    fell_in |= entry.positive
                    if entry.negative_in:
                        fell_not |= entry.negative_in
        # non-members may join through a rise, members leave through a fall (inverted by `not`)
        found = rose_in - current
        found |= fell_in & current
        found |= rose_not & current
        found |= fell_not - current
        return found

    def elapsed(self, values: Mapping[str, tuple[object, datetime]], now: datetime) -> set[str]:
        """The groups with a time-relative trigger that changed with time alone.

        ``values`` maps a field to ``(value, since)``: every group using a time-relative trigger
        on the field whose truth for ``value`` changes at some instant of ``(since, now]``.
        """
        found: set[str] = set()
        for field_name, (value, since) in values.items():
            table = self._triggers.get(field_name)
            if table is not None:
                for entry in table.elapsed(value, since, now):
                    found |= entry.positive
                    found |= entry.negative_in
        return found

    def next_flip(self, field_name: str, value: object, now: datetime) -> datetime | None:
        """The first instant after ``now`` at which some group's time-relative trigger on
        ``field_name`` changes for ``value`` (None if never): the field's due instant."""
        table = self._triggers.get(field_name)
        return table.next_flip(value, now) if table is not None else None

    def time_fields(self, group_id: str) -> frozenset[str]:
        """The fields the time-relative triggers of ``group_id`` read (empty if none)."""
        return self._time_fields.get(group_id, _NO_NAMES)

    def dependents(self, group_id: str) -> frozenset[str]:
        """Ids of the indexed groups whose ``groups`` triggers name ``group_id``."""
        return frozenset(self._dependents.get(group_id, ()))

    def rank(self, group_id: str) -> int:
        """Topological rank: 0 for a group naming none, else 1 + the highest named rank.

        -1 for a group that is not indexed (it names nothing the cascade needs to wait for).
        """
        return self._rank.get(group_id, -1)

    def _raise_dependents(self, group_id: str) -> None:
        """Restore ``rank(d) > rank(g)`` downstream of ``group_id`` (ranks only ever rise)."""
        limit = len(self._rank)
        stack = [group_id]
        while stack:
            current = stack.pop()
            need = self._rank[current] + 1
            for dependent in self._dependents.get(current, ()):
                rank = self._rank.get(dependent)
                if rank is not None and rank < need:
                    if need > limit:
                        raise ValueError(f"'groups' triggers form a cycle through {group_id!r}")
                    self._rank[dependent] = need
                    stack.append(dependent)


def cascade(
    index: GroupIndex,
    start: Iterable[str],
    decide: Decide,
    current: frozenset[str],
) -> list[tuple[str, bool]]:
    """Decide ``start`` and whatever their flips cascade into; return the flips in order.

    Groups are decided in rank order, each at most once (see the module docstring). A group
    whose verdict differs from its membership in ``current`` flips, and the groups naming it
    are queued. Returns ``(group_id, now_member)`` for every flip, in the order decided.

    ``decide(group_id, groups_now)`` gets the member's groups *as far as that group can see
    them*: for a group whose triggers name a group that has flipped, ``current`` updated by the
    flips so far (exact for every group it names); for any other group, ``current`` itself (the
    groups it reads, if any, are as in ``current``; not rebuilding the set on every flip keeps a
    member in thousands of groups cheap). Callers may key caches (e.g. snapshots) on the
    ``groups_now`` object.
    """
    rank = index._rank
    names = index._names
    dependents = index._dependents
    queued = set(start)
    levels: dict[int, list[str]] = {}
    for group_id in queued:
        level_of = rank.get(group_id, -1)
        bucket = levels.get(level_of)
        if bucket is None:
            levels[level_of] = [group_id]
        else:
            bucket.append(group_id)
    flipped: set[str] = set()  # each flip toggles a group relative to `current`
    groups_now = current
    stale = False
    flips: list[tuple[str, bool]] = []
    level, top = (min(levels), max(levels)) if levels else (0, -1)
    while level <= top:
        for group_id in levels.pop(level, ()):
            named = names.get(group_id)
            if named and flipped and not flipped.isdisjoint(named):
                if stale:
                    groups_now = current ^ flipped
                    stale = False
                verdict = decide(group_id, groups_now)
            else:
                verdict = decide(group_id, current)
            if verdict == (group_id in current):  # decided once: current is its membership
                continue
            flipped.add(group_id)
            stale = True
            flips.append((group_id, verdict))
            for dependent in dependents.get(group_id, ()):
                if dependent not in queued:
                    queued.add(dependent)
                    level_of = rank[dependent]  # > level: ranks rise along dependencies
                    levels.setdefault(level_of, []).append(dependent)
                    top = max(top, level_of)
        level += 1
    return flips
