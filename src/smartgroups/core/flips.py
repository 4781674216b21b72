"""Which triggers on a field flip when its value changes — found through value indexes.

:class:`FieldTriggers` holds the distinct triggers that read one field (shared by every group
that uses the same trigger) and, for each, the groups using it with the trigger's *polarity*
there (positive, or under an odd number of ``not``). Given the field's old and new value,
:meth:`FieldTriggers.flips` yields each trigger whose truth changed and whether it rose. It
tests only a superset of the triggers that can have flipped, found without a scan:

* ``eq``/``neq``/``in``/``not_in`` — a bucket per normalised value: only triggers naming the old
  or the new value can flip;
* ``gt``/``gte``/``lt``/``lte``/``between`` — thresholds in sorted order: only thresholds
  between the old and the new value can flip (all of them when one side is not comparable);
* ``has_any``/``has_all``/``has_none`` on select lists — a bucket per option: only triggers
  naming an option that was added or removed can flip;
* everything else (text matching, ``email_domain``, ``is_set``, ``groups``) — tested one by one;
* time-relative triggers are reported on *every* change of the field (:meth:`always`): even
  when their truth now is unchanged, when they will flip has changed.

Every candidate is confirmed with the evaluator's own test (``trigger_test``), so the buckets
only have to be a superset; the property tests check that against the evaluator.

Why this is enough for exact matching (:meth:`GroupIndex.affected
<smartgroups.core.matching.GroupIndex.affected>`): ``all``/``any`` are monotone and ``not``
inverts, so a group's conditions can only become true if some trigger rose (positive
polarity) or fell (negative polarity), and only become false through the opposite.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from smartgroups.core.conditions import TIME_OPS, All, AnyOf, Condition, Not, Trigger
from smartgroups.core.conditions.evaluate import Test, trigger_test
from smartgroups.core.conditions.model import NEGATIVE_OPS
from smartgroups.core.values import fold, parse_instant

POSITIVE = 1
"""Polarity bit: the trigger appears under an even number of ``not``."""
NEGATIVE = 2
"""Polarity bit: the trigger appears under an odd number of ``not``."""

_KEYED_OPS = frozenset({"eq", "in"})
_ORDER_OPS = frozenset({"gt", "gte", "lt", "lte", "between"})
_OPTION_OPS = frozenset({"has_any", "has_all"})
_COLLECTIONS = (list, tuple, set, frozenset)


def polarities(cond: Condition) -> dict[Trigger, int]:
    """Every distinct trigger of ``cond`` with its polarity bits (both if it appears both ways)."""
    found: dict[Trigger, int] = {}
    stack: list[tuple[Condition, int]] = [(cond, POSITIVE)]
    while stack:
        node, polarity = stack.pop()
        if isinstance(node, Trigger):
            found[node] = found.get(node, 0) | polarity
        elif isinstance(node, Not):
            stack.append((node.child, NEGATIVE if polarity == POSITIVE else POSITIVE))
        elif isinstance(node, All | AnyOf):
            stack.extend((child, polarity) for child in node.children)
    return found


@dataclass(slots=True, eq=False)
class Entry:
    """One distinct trigger: its positive twin's test and the groups using it (polarity bits).

    Entries compare and hash by identity, so the value indexes never re-hash a trigger.
    """

    trigger: Trigger
    twin: Trigger
    test: Test
    negative: bool
    serial: int
    users: dict[str, int] = field(default_factory=dict)


def _scalar_keys(value: object) -> list[tuple[str, object]]:
    """The normalised keys a member value can equal a trigger value under (kind-tagged)."""
    if isinstance(value, bool):
        return [("b", value)]
    if isinstance(value, int | float):
        return [("n", value)]
    if isinstance(value, str):
        keys: list[tuple[str, object]] = [("s", fold(value))]
        instant = parse_instant(value)
        if instant is not None:
            keys.append(("d", instant))
        return keys
    return []


def _target_key(value: object) -> tuple[str, object]:
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, datetime):
        return ("d", value)
    if isinstance(value, str):
        return ("s", value)
    return ("n", value)


def _order_key(value: object, kind: str) -> Any:
    if kind == "d":
        return parse_instant(value) if isinstance(value, str) else None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    return None


def _options(value: object) -> frozenset[str]:
    """Folded items of a list of strings; empty for anything else (as the evaluator sees it)."""
    if not isinstance(value, _COLLECTIONS) or not all(isinstance(v, str) for v in value):
        return frozenset()
    return frozenset(fold(v) for v in value)


class FieldTriggers:
    """The distinct triggers reading one field, indexed by value (see the module docstring)."""

    __slots__ = (
        "always",
        "by_serial",
        "entries",
        "keyed",
        "options",
        "ordered",
        "scanned",
        "serial",
    )

    def __init__(self) -> None:
        self.entries: dict[Trigger, Entry] = {}
        self.keyed: dict[tuple[str, object], set[Entry]] = {}
        self.options: dict[str, set[Entry]] = {}
        # kind ("n" numbers, "d" instants) -> sorted [(threshold, entry serial), ...]
        self.ordered: dict[str, list[tuple[Any, int]]] = {}
        self.by_serial: dict[int, Entry] = {}
        self.serial = 0
        self.scanned: set[Entry] = set()
        self.always: set[Entry] = set()

    def __bool__(self) -> bool:
        return bool(self.entries)

    def add(self, trigger: Trigger, group_id: str, polarity: int) -> None:
        entry = self.entries.get(trigger)
        if entry is None:
            positive = NEGATIVE_OPS.get(trigger.op)
            twin = trigger
            if positive is not None:
                twin = Trigger(trigger.field, positive, trigger.value, trigger.value_type)
            self.serial += 1
            entry = Entry(trigger, twin, trigger_test(twin), positive is not None, self.serial)
            self.entries[trigger] = entry
            self._index(entry, add=True)
        entry.users[group_id] = entry.users.get(group_id, 0) | polarity

    def discard(self, trigger: Trigger, group_id: str) -> None:
        entry = self.entries.get(trigger)
        if entry is None or entry.users.pop(group_id, None) is None or entry.users:
            return
        del self.entries[trigger]
        self._index(entry, add=False)

    def _index(self, entry: Entry, *, add: bool) -> None:
        trigger, op, value = entry.trigger, entry.twin.op, entry.twin.value
        if op in TIME_OPS:
            _toggle(self.always, entry, add)
        elif trigger.field != "groups" and op in _KEYED_OPS:
            items = value if isinstance(value, frozenset) else (value,)
            for item in items:
                _toggle(self.keyed.setdefault(_target_key(item), set()), entry, add)
        elif trigger.field != "groups" and op in _OPTION_OPS and isinstance(value, frozenset):
            for option in value:
                _toggle(self.options.setdefault(option, set()), entry, add)
        elif op in _ORDER_OPS:
            bounds = value if isinstance(value, tuple) else (value,)
            kind = "d" if isinstance(bounds[0], datetime) else "n"
            column = self.ordered.setdefault(kind, [])
            for bound in bounds:
                item = (bound, entry.serial)
                if add:
                    bisect.insort(column, item)
                else:
                    column.pop(bisect.bisect_left(column, item))
            if add:
                self.by_serial[entry.serial] = entry
            else:
                del self.by_serial[entry.serial]
        else:
            _toggle(self.scanned, entry, add)

    def candidates(self, old: object, new: object) -> set[Entry]:
        """A superset of the triggers (time-relative ones aside) whose truth differs."""
        found = set(self.scanned)
        if self.keyed:
            for key in (*_scalar_keys(old), *_scalar_keys(new)):
                bucket = self.keyed.get(key)
                if bucket:
                    found |= bucket
        if self.options:
            for option in _options(old) ^ _options(new):
                bucket = self.options.get(option)
                if bucket:
                    found |= bucket
        for kind, column in self.ordered.items():
            low, high = _order_key(old, kind), _order_key(new, kind)
            if low is None or high is None:
                found.update(self.by_serial[i] for _, i in column)
                continue
            if high < low:
                low, high = high, low
            start = bisect.bisect_left(column, (low, -1))
            for bound, serial in column[start:]:
                if bound > high:
                    break
                found.add(self.by_serial[serial])
        return found

    def flips(self, old: object, new: object, now: datetime) -> Iterator[tuple[Entry, bool]]:
        """``(entry, rose)`` for every trigger whose truth differs between ``old`` and ``new``."""
        for entry in self.candidates(old, new):
            test = entry.test
            after = test(new, now)
            if test(old, now) != after:
                yield entry, after != entry.negative

    def always_entries(self) -> Iterator[Entry]:
        """The time-relative triggers: their groups are re-decided on any change of the field."""
        return iter(self.always)


def _toggle(bucket: set[Entry], entry: Entry, add: bool) -> None:
    if add:
        bucket.add(entry)
    else:
        bucket.discard(entry)
