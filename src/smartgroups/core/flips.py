"""Which triggers on a field flip when its value changes — found through value indexes.

:class:`FieldTriggers` holds the distinct triggers that read one field (shared by every group
that uses the same trigger) and, for each, the groups using it with the trigger's *polarity*
there (positive, or under an odd number of ``not``). Given the field's old and new value,
:meth:`FieldTriggers.flips` yields each trigger whose truth changed and whether it rose,
found without a scan:

* ``gt``/``gte``/``lt``/``lte`` and ``within_last``/``older_than`` — bounds (spans, compared
  with the value's age at ``now``) in a sorted column per kind and op: the flipped ones are
  exactly the bounds between the old and the new value, found by bisection, with no test;
* ``has_any``/``has_all``/``has_none`` on select lists — a bucket per option: triggers naming an
  option that was added or removed, decided on the folded option sets;
* ``eq``/``neq``/``in``/``not_in`` — a bucket per normalised value: the triggers true for a
  value are the buckets of its keys, and the flipped ones the symmetric difference of the old
  value's and the new value's;
* ``between`` — lows and highs in sorted columns: the flipped ranges are those with exactly one
  bound between the two values (those holding the other value when one is not comparable);
* everything else (text matching, ``email_domain``, ``is_set``, ``groups``, ``within_next``) —
  tested one by one with the evaluator's own test (``trigger_test``).

Time-relative triggers also change with time alone. :meth:`FieldTriggers.next_flip` gives the
first instant after ``now`` at which any of them changes for a value (a sorted list of
breakpoint offsets and one bisection), and :meth:`FieldTriggers.elapsed` the ones that changed
at some instant of a past interval. So a member's due instants are kept per field, not per group,
and computing one costs a bisection whatever the number of groups.

The property tests check every kind against the evaluator.

Why this is enough for exact matching (:meth:`GroupIndex.affected
<smartgroups.core.matching.GroupIndex.affected>`): ``all``/``any`` are monotone and ``not``
inverts, so a group's conditions can only become true if some trigger rose (positive
polarity) or fell (negative polarity), and only become false through the opposite.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from smartgroups.core.conditions import All, AnyOf, Condition, Not, Trigger
from smartgroups.core.conditions.evaluate import Test, trigger_test
from smartgroups.core.conditions.model import positive_twin
from smartgroups.core.conditions.timing import breakpoint_offsets
from smartgroups.core.values import fold, parse_instant

POSITIVE = 1
"""Polarity bit: the trigger appears under an even number of ``not``."""
NEGATIVE = 2
"""Polarity bit: the trigger appears under an odd number of ``not``."""

_KEYED_OPS = frozenset({"eq", "in"})
_OPTION_OPS = frozenset({"has_any", "has_all"})
_AGE_OPS = frozenset({"within_last", "older_than"})
_COLLECTIONS = (list, tuple, set, frozenset)
_NO_ENTRIES: frozenset[Entry] = frozenset()


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
    """One distinct trigger: its positive twin's test and the groups using it, by polarity.

    ``positive`` holds the groups where it appears under an even number of ``not``,
    ``negative_in`` those where it appears under an odd number (a group may be in both).
    Entries compare and hash by identity, so the value indexes never re-hash a trigger.
    """

    trigger: Trigger
    twin: Trigger
    test: Test
    negative: bool
    serial: int
    offsets: tuple[timedelta, ...]
    positive: set[str] = field(default_factory=set)
    negative_in: set[str] = field(default_factory=set)


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


def _instant(value: object) -> datetime | None:
    return parse_instant(value) if isinstance(value, str) else None


def _order_key(value: object, kind: str) -> Any:
    if kind == "d":
        return _instant(value)
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
        "_offsets",
        "by_serial",
        "entries",
        "keyed",
        "options",
        "ranges",
        "scanned",
        "serial",
        "thresholds",
        "timed",
    )

    def __init__(self) -> None:
        self.entries: dict[Trigger, Entry] = {}
        self.by_serial: dict[int, Entry] = {}
        self.serial = 0
        self.keyed: dict[tuple[str, object], set[Entry]] = {}
        self.options: dict[str, set[Entry]] = {}
        # (kind, op) -> sorted [(bound, entry serial), ...]; kind: "n" numbers, "d" instants,
        # "age" the spans of within_last / older_than (compared with the value's age)
        self.thresholds: dict[tuple[str, str], list[tuple[Any, int]]] = {}
        # between: kind -> (sorted lows, sorted highs), each [(bound, entry serial), ...]
        self.ranges: dict[str, tuple[list[tuple[Any, int]], list[tuple[Any, int]]]] = {}
        self.scanned: set[Entry] = set()
        self.timed: set[Entry] = set()  # every time-relative entry
        self._offsets: list[timedelta] | None = None  # their breakpoint offsets, sorted

    def __bool__(self) -> bool:
        return bool(self.entries)

    def add(self, trigger: Trigger, group_id: str, polarity: int) -> None:
        entry = self.entries.get(trigger)
        if entry is None:
            twin = positive_twin(trigger)
            self.serial += 1
            entry = Entry(
                trigger,
                twin,
                trigger_test(twin),
                twin is not trigger,
                self.serial,
                breakpoint_offsets(trigger),
            )
            self.entries[trigger] = entry
            self._index(entry, add=True)
        if polarity & POSITIVE:
            entry.positive.add(group_id)
        if polarity & NEGATIVE:
            entry.negative_in.add(group_id)

    def discard(self, trigger: Trigger, group_id: str) -> None:
        entry = self.entries.get(trigger)
        if entry is None:
            return
        entry.positive.discard(group_id)
        entry.negative_in.discard(group_id)
        if entry.positive or entry.negative_in:
            return
        del self.entries[trigger]
        self._index(entry, add=False)

    def _index(self, entry: Entry, *, add: bool) -> None:
        trigger, op, value = entry.trigger, entry.twin.op, entry.twin.value
        if add:
            self.by_serial[entry.serial] = entry
        else:
            del self.by_serial[entry.serial]
        if entry.offsets:
            _toggle(self.timed, entry, add)
            self._offsets = None
        if op in _SIDES and trigger.field != "groups":
            kind = "age" if entry.offsets else "d" if isinstance(value, datetime) else "n"
            column = self.thresholds.setdefault((kind, op), [])
            _insort_or_remove(column, (value, entry.serial), add)
        elif op == "between" and isinstance(value, tuple):
            low, high = value  # low <= high (parse checks it; _range_flips relies on it)
            kind = "d" if isinstance(low, datetime) else "n"
            lows, highs = self.ranges.setdefault(kind, ([], []))
            _insort_or_remove(lows, (low, entry.serial), add)
            _insort_or_remove(highs, (high, entry.serial), add)
        elif trigger.field != "groups" and op in _KEYED_OPS:
            items = value if isinstance(value, frozenset) else (value,)
            for item in items:
                _toggle(self.keyed.setdefault(_target_key(item), set()), entry, add)
        elif trigger.field != "groups" and op in _OPTION_OPS and isinstance(value, frozenset):
            for option in value:
                _toggle(self.options.setdefault(option, set()), entry, add)
        else:
            _toggle(self.scanned, entry, add)

    def flips(self, old: object, new: object, now: datetime) -> Iterator[tuple[Entry, bool]]:
        """``(entry, rose)`` for every trigger whose truth at ``now`` differs between ``old``
        and ``new``: by the value indexes alone, except the scanned kinds, which are tested."""
        for entry in self.scanned:
            test = entry.test
            after = test(new, now)
            if test(old, now) != after:
                yield entry, after != entry.negative
        if self.keyed:
            was, is_now = self._keyed_true(old), self._keyed_true(new)
            if was is not is_now:
                for entry in was ^ is_now:
                    yield entry, (entry in is_now) != entry.negative
        if self.options:
            yield from self._option_flips(old, new)
        by_serial = self.by_serial
        if self.ranges:
            for serial, rose in self._range_flips(old, new):
                yield by_serial[serial], rose
        if not self.thresholds:
            return
        keys: dict[str, tuple[Any, Any]] = {}
        for (kind, op), column in self.thresholds.items():
            pair = keys.get(kind)
            if pair is None:
                pair = keys[kind] = _sort_keys(kind, old, new, now)
            crossed = _crossed(column, _SIDES[op], *pair)
            if crossed is not None:
                items, rose = crossed
                for _, serial in items:  # (no threshold op is a negative one)
                    yield by_serial[serial], rose

    def _keyed_true(self, value: object) -> set[Entry] | frozenset[Entry]:
        """The ``eq``/``in`` triggers (positive twins) true for ``value``: those naming one of
        its normalised keys (the evaluator's comparison: folded text, instants, numbers with
        ``1 == 1.0``, booleans apart from numbers)."""
        found: set[Entry] | frozenset[Entry] = _NO_ENTRIES
        for key in _scalar_keys(value):
            bucket = self.keyed.get(key)
            if bucket:
                found = bucket if not found else found | bucket
        return found

    def _range_flips(self, old: object, new: object) -> Iterator[tuple[int, bool]]:
        """``(serial, rose)`` of each ``between`` whose truth differs (``low ≤ value ≤ high``).

        For comparable values x < y, a range holds x but not y exactly when its high lies in
        ``[x, y)`` and its low does not lie in ``(x, y]``, and holds y but not x when its low
        lies in ``(x, y]`` and its high does not lie in ``[x, y)``; a range with both bounds
        inside holds neither. A value of another type holds no range.
        """
        for kind, (lows, highs) in self.ranges.items():
            a, b = _order_key(old, kind), _order_key(new, kind)
            if a is None or b is None:
                value = b if a is None else a
                if value is not None:  # the ranges holding it flip, one way
                    holding = {i for _, i in _span(lows, None, value)}
                    holding.intersection_update(i for _, i in _span(highs, value, None))
                    for serial in holding:
                        yield serial, a is None
            elif a != b:
                x, y = (a, b) if a < b else (b, a)
                ends = {i for _, i in _span(highs, x, y, True, False)}  # high in [x, y)
                starts = {i for _, i in _span(lows, x, y, False, True)}  # low in (x, y]
                for serial in ends ^ starts:
                    yield serial, (serial in starts) == (b == y)

    def _option_flips(self, old: object, new: object) -> Iterator[tuple[Entry, bool]]:
        """``has_any``/``has_all`` (and ``has_none``) triggers naming an added or removed option,
        decided on the folded option sets (what the evaluator compares; a value that is not a
        list of strings has none, and a trigger names at least one option)."""
        before, after = _options(old), _options(new)
        found: set[Entry] = set()
        for option in before ^ after:
            bucket = self.options.get(option)
            if bucket:
                found |= bucket
        for entry in found:
            target = entry.twin.value
            assert isinstance(target, frozenset)
            if entry.twin.op == "has_any":
                was, now_true = not target.isdisjoint(before), not target.isdisjoint(after)
            else:
                was, now_true = target <= before, target <= after
            if was != now_true:
                yield entry, now_true != entry.negative

    def elapsed(self, value: object, since: datetime, now: datetime) -> set[Entry]:
        """The time-relative triggers whose truth for ``value`` changes at an instant of
        ``(since, now]`` (at least once: ``within_next`` may rise and fall back)."""
        instant = _instant(value)
        found: set[Entry] = set()
        if instant is None or not self.timed:
            return found
        low, high = since - instant, now - instant  # breakpoint offsets in (low, high]
        for op in _AGE_OPS:  # one breakpoint, at span + 1µs
            column = self.thresholds.get(("age", op))
            if column:
                found.update(self.by_serial[i] for _, i in _span(column, low, high - _TICK))
        for entry in self.scanned & self.timed:
            if any(low < offset <= high for offset in entry.offsets):
                found.add(entry)
        return found

    def next_flip(self, value: object, now: datetime) -> datetime | None:
        """The first instant after ``now`` at which a time-relative trigger on this field
        changes for ``value``; None if none ever will (or the value is not a timestamp)."""
        instant = _instant(value)
        if instant is None or not self.timed:
            return None
        offsets = self._offsets
        if offsets is None:
            offsets = self._offsets = sorted({o for e in self.timed for o in e.offsets})
        index = bisect.bisect_right(offsets, now - instant)
        if index == len(offsets):
            return None
        try:
            return instant + offsets[index]
        except OverflowError:
            return None


_TICK = timedelta(microseconds=1)


_SIDES: dict[str, tuple[bool, bool]] = {
    # op: (true for bounds below the value?, strictly?) -- e.g. gt: true for bounds < value
    "gt": (True, True),
    "gte": (True, False),
    "lt": (False, True),
    "lte": (False, False),
    "within_last": (False, False),  # age <= span: spans at or above the age
    "older_than": (True, True),  # age > span: spans below the age
}
_FIRST, _LAST = -1, 1 << 62  # serials sort between these


def _sort_keys(kind: str, old: object, new: object, now: datetime) -> tuple[Any, Any]:
    """What the thresholds of ``kind`` compare the old and new value as (None: never true)."""
    if kind != "age":
        return _order_key(old, kind), _order_key(new, kind)
    old_at, new_at = _instant(old), _instant(new)
    return (
        None if old_at is None else now - old_at,
        None if new_at is None else now - new_at,
    )


def _span(
    column: list[tuple[Any, int]],
    low: Any,
    high: Any,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
) -> list[tuple[Any, int]]:
    """The items of a sorted column whose bound lies between ``low`` and ``high`` (None: open)."""
    start = (
        0 if low is None else bisect.bisect_left(column, (low, _FIRST if low_inclusive else _LAST))
    )
    stop = (
        len(column)
        if high is None
        else bisect.bisect_left(column, (high, _LAST if high_inclusive else _FIRST))
    )
    return column[start:stop]


def _crossed(
    column: list[tuple[Any, int]], side: tuple[bool, bool], old: Any, new: Any
) -> tuple[list[tuple[Any, int]], bool] | None:
    """The thresholds whose truth differs between the values ``old`` and ``new`` (sort keys,
    None when never true), and whether they rose; None when none can differ.

    A threshold op is true for the bounds on one side of the value (``side``: below or above,
    strictly or not), so the bounds that changed side lie between the two values.
    """
    below, strict = side
    if old is None or new is None:
        value = new if old is None else old
        if value is None:
            return None
        if below:
            items = _span(column, None, value, high_inclusive=not strict)
        else:
            items = _span(column, value, None, low_inclusive=not strict)
        return items, old is None
    if old == new:
        return None
    low, high = (old, new) if old < new else (new, old)
    # below-strict and above-inclusive: [low, high); the other two: (low, high]
    items = _span(column, low, high, low_inclusive=below == strict, high_inclusive=below != strict)
    return items, (new > old) == below


def _insort_or_remove(column: list[tuple[Any, int]], item: tuple[Any, int], add: bool) -> None:
    if add:
        bisect.insort(column, item)
    else:
        column.pop(bisect.bisect_left(column, item))


def _toggle(bucket: set[Entry], entry: Entry, add: bool) -> None:
    if add:
        bucket.add(entry)
    else:
        bucket.discard(entry)
