"""Matching that scales: which groups can a member change affect, and in which order to decide.

:class:`GroupIndex` holds one space's groups (on the worker: per partition; mutable and
incremental) as indexes, never as a list to scan:

* field → ids of the groups whose triggers read it (:meth:`GroupIndex.candidates`);
* group → ids of the groups whose ``groups`` triggers name it (:meth:`GroupIndex.dependents`);
* per group, one :class:`Node`: a topological **rank**, greater than the rank of every group it
  names (:meth:`GroupIndex.rank`), so deciding in rank order sees every named group's final
  verdict; the groups it names; the fields its time-relative triggers read
  (:meth:`GroupIndex.time_fields`); and the compiled conditions of an active smart group;
* per field, the next instant a time-relative trigger changes for a value
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
and conditions into it) and the member's current groups, and returns the flips. With a
:class:`Shortcut`, it decides the common case itself (an active smart group: eligibility and its
compiled conditions) without calling back; where the native extension is built, the whole
cascade runs there (:func:`python_cascade` is its reference, held to the same answers by the
property tests).

Why each group is decided **at most once** per cascade: groups wait in one bucket per rank and
the buckets are taken in increasing rank. A group is only ever queued as a dependent of a group
being decided, so its rank is greater than that group's: it lands in a later bucket. Hence once
the bucket of rank *r* is taken, no group of rank ≤ *r* — in particular none that a group *g* of
rank *r* names — is queued again: every group *g* reads already has its final verdict, and
deciding *g* again could not give another answer.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import NamedTuple

from smartgroups.core.catalog import Group
from smartgroups.core.conditions import Predicate, Trigger, compile_condition
from smartgroups.core.conditions.model import time_fields
from smartgroups.core.extension import NATIVE as _native
from smartgroups.core.extension import check_layout
from smartgroups.core.flips import FieldTriggers, polarities
from smartgroups.core.snapshot import MemberSnapshot

Decide = Callable[[str, frozenset[str]], bool]
"""``decide(group_id, groups_now)``: is the member in ``group_id`` given its current groups?"""

_NO_NAMES: frozenset[str] = frozenset()


class Node(NamedTuple):
    """What deciding one indexed group reads, in one lookup (replaced whole when it changes)."""

    rank: int
    """Topological rank: 0 for a group naming none, else 1 + the highest named rank."""
    names: frozenset[str]
    """The groups its ``groups`` triggers name."""
    time_fields: frozenset[str]
    """The fields its time-relative triggers read."""
    predicate: Predicate | None
    """The compiled conditions of an active smart group; None for any other group."""


check_layout(
    {f"NODE_{name.upper()}": i for i, name in enumerate(Node._fields)}
    | {"NODE_FIELDS": len(Node._fields)}
)


@dataclass(frozen=True, slots=True)
class Shortcut:
    """What lets :func:`cascade` decide an active smart group without calling ``decide``.

    ``member`` is the member's snapshot with ``groups == current``. The caller guarantees, for
    every indexed group whose node has a ``predicate`` and that is not in ``exempt``, and for
    any group set ``g``: ``decide(group_id, g)`` is ``eligible and predicate(member', now)``,
    where ``member'`` is ``member`` with ``groups == g``. The cascade then computes that itself,
    with the updated groups for a group that names a group flipped earlier in the cascade, and
    when ``eligible`` appends the group's id to ``timed`` if the group has time fields (the
    caller's ``decide`` appends the groups it decides itself). (The native cascade still asks
    ``decide`` about a group that sees a flip when its predicate is not a native program; by
    the guarantee, the verdict is the same.)
    """

    member: MemberSnapshot
    now: datetime
    eligible: bool
    exempt: Container[str]
    timed: list[str]


class GroupIndex:
    """The matching indexes over one space's groups; see the module docstring."""

    __slots__ = ("_by_field", "_dependents", "_fields", "_nodes", "_triggers", "_triggers_of")

    def __init__(self) -> None:
        self._by_field: dict[str, set[str]] = {}
        self._fields: dict[str, frozenset[str]] = {}
        self._nodes: dict[str, Node] = {}
        self._dependents: dict[str, set[str]] = {}
        self._triggers: dict[str, FieldTriggers] = {}
        self._triggers_of: dict[str, tuple[Trigger, ...]] = {}

    def __contains__(self, group_id: object) -> bool:
        return group_id in self._nodes

    def __len__(self) -> int:
        return len(self._nodes)

    def add(self, group: Group) -> None:
        """Index ``group`` (replacing a group with the same id)."""
        group_id = group.group_id
        if group_id in self._nodes:
            self.remove(group_id)
        refs = group.references
        fields = frozenset(refs.fields) if refs is not None else _NO_NAMES
        # an empty set is the shared one: the cascade tests nodes' sets for emptiness, and one
        # object stays in the CPU caches where thousands of empty ones would not
        names = frozenset(refs.groups) if refs is not None and refs.groups else _NO_NAMES
        self._fields[group_id] = fields
        for field_name in fields:
            self._by_field.setdefault(field_name, set()).add(group_id)
        for named in names:
            self._dependents.setdefault(named, set()).add(group_id)
        timed, predicate = _NO_NAMES, None
        conditions = group.conditions
        if conditions is not None:
            found = polarities(conditions)
            timed = time_fields(conditions) or _NO_NAMES
            if group.kind == "smart" and group.active:
                predicate = compile_condition(conditions)
            self._triggers_of[group_id] = tuple(found)
            for trigger, polarity in found.items():
                table = self._triggers.get(trigger.field)
                if table is None:
                    table = self._triggers[trigger.field] = FieldTriggers()
                table.add(trigger, group_id, polarity)
        rank = 1 + max((self.rank(n) for n in names), default=-1)
        self._nodes[group_id] = Node(rank, names, timed, predicate)
        self._raise_dependents(group_id)

    def remove(self, group_id: str) -> None:
        """Forget ``group_id`` (no-op if absent). Groups naming it keep their (valid) ranks."""
        node = self._nodes.pop(group_id, None)
        if node is None:
            return
        for field_name in self._fields.pop(group_id):
            users = self._by_field[field_name]
            users.discard(group_id)
            if not users:
                del self._by_field[field_name]
        for named in node.names:
            dependents = self._dependents[named]
            dependents.discard(group_id)
            if not dependents:
                del self._dependents[named]
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
        rose_in: set[str] = set()
        rose_not: set[str] = set()
        fell_in: set[str] = set()
        fell_not: set[str] = set()
        for field_name, (old, new) in changes.items():
            table = self._triggers.get(field_name)
            if table is not None:
                table.spread(old, new, now, rose_in, rose_not, fell_in, fell_not)
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
        node = self._nodes.get(group_id)
        return node.time_fields if node is not None else _NO_NAMES

    def dependents(self, group_id: str) -> frozenset[str]:
        """Ids of the indexed groups whose ``groups`` triggers name ``group_id``."""
        return frozenset(self._dependents.get(group_id, ()))

    def rank(self, group_id: str) -> int:
        """Topological rank: 0 for a group naming none, else 1 + the highest named rank.

        -1 for a group that is not indexed (it names nothing the cascade needs to wait for).
        """
        node = self._nodes.get(group_id)
        return node.rank if node is not None else -1

    def _raise_dependents(self, group_id: str) -> None:
        """Restore ``rank(d) > rank(g)`` downstream of ``group_id`` (ranks only ever rise)."""
        nodes = self._nodes
        limit = len(nodes)
        stack = [group_id]
        while stack:
            current = stack.pop()
            need = nodes[current].rank + 1
            for dependent in self._dependents.get(current, ()):
                node = nodes.get(dependent)
                if node is not None and node.rank < need:
                    if need > limit:
                        raise ValueError(f"'groups' triggers form a cycle through {group_id!r}")
                    nodes[dependent] = node._replace(rank=need)
                    stack.append(dependent)


def cascade(
    index: GroupIndex,
    start: Iterable[str],
    decide: Decide,
    current: frozenset[str],
    shortcut: Shortcut | None = None,
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
    ``groups_now`` object. With a ``shortcut``, the groups it covers are decided without
    ``decide`` (see :class:`Shortcut`).

    Runs natively where the extension is built; :func:`python_cascade` otherwise, the same.
    """
    if _native is None:
        return python_cascade(index, start, decide, current, shortcut)
    if shortcut is None:
        return _native.cascade(index._nodes, index._dependents, start, decide, current)
    return _native.cascade(
        index._nodes,
        index._dependents,
        start,
        decide,
        current,
        shortcut.member,
        shortcut.now,
        shortcut.eligible,
        shortcut.exempt,
        shortcut.timed,
    )


def python_cascade(
    index: GroupIndex,
    start: Iterable[str],
    decide: Decide,
    current: frozenset[str],
    shortcut: Shortcut | None = None,
) -> list[tuple[str, bool]]:
    """:func:`cascade` in Python: the reference the native cascade is held to."""
    nodes = index._nodes
    dependents = index._dependents
    queued = set(start)
    levels: dict[int, list[tuple[str, Node | None]]] = {}
    for group_id in queued:
        node = nodes.get(group_id)
        levels.setdefault(node.rank if node is not None else -1, []).append((group_id, node))
    flipped: set[str] = set()  # each flip toggles a group relative to `current`
    groups_now = current
    stale = False
    flips: list[tuple[str, bool]] = []
    level, top = (min(levels), max(levels)) if levels else (0, -1)
    while level <= top:
        for group_id, node in levels.pop(level, ()):
            sees_a_flip = bool(
                node is not None and node.names and flipped and not flipped.isdisjoint(node.names)
            )
            if sees_a_flip and stale:
                groups_now = current ^ flipped
                stale = False
            if (
                shortcut is not None
                and node is not None
                and node.predicate is not None
                and group_id not in shortcut.exempt
            ):
                if shortcut.eligible:
                    member = shortcut.member
                    if sees_a_flip:  # (the native cascade reads through instead of rebuilding)
                        member = replace(member, groups=groups_now)
                    verdict = node.predicate(member, shortcut.now)
                    if node.time_fields:
                        shortcut.timed.append(group_id)
                else:
                    verdict = False
            else:
                verdict = decide(group_id, groups_now if sees_a_flip else current)
            if verdict == (group_id in current):  # decided once: current is its membership
                continue
            flipped.add(group_id)
            stale = True
            flips.append((group_id, verdict))
            for dependent in dependents.get(group_id, ()):
                if dependent not in queued:
                    queued.add(dependent)
                    waiting = nodes[dependent]  # rank > level: ranks rise along dependencies
                    levels.setdefault(waiting.rank, []).append((dependent, waiting))
                    top = max(top, waiting.rank)
        level += 1
    return flips
