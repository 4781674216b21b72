"""Which triggers on a field flip when its value changes — found through value indexes.

:class:`FieldTriggers` holds the distinct triggers that read one field (shared by every group
that uses the same trigger) and, for each, the groups using it with the trigger's *polarity*
there (positive, or under an odd number of ``not``). Given the field's old and new value,
:meth:`FieldTriggers.flips` yields each trigger whose truth changed and whether it rose,
found without a scan:

* ``gt``/``gte``/``lt``/``lte`` and ``within_last``/``older_than`` — bounds (spans, compared
  with the value's age at ``now``) in a sorted :class:`Column` per kind and op: the flipped ones
  are exactly the bounds between the old and the new value, found by bisection, with no test;
* ``has_any``/``has_none`` on select lists — a bucket per option, and set algebra alone: a
  trigger rises when it names an added option but no removed or kept one;
* ``has_all`` — a bucket per option: triggers naming an option that was added or removed,
  decided on the folded option sets;
* ``eq``/``neq``/``in``/``not_in`` — a bucket per normalised value: the triggers true for a
  value are the buckets of its keys, and the flipped ones the symmetric difference of the old
  value's and the new value's;
* ``between`` — lows and highs in sorted columns: the flipped ranges are those with exactly one
  bound between the two values (those holding the other value when one is not comparable);
* ``contains``/``not_contains``/``starts_with``/``ends_with`` — each target tested on the old
  and the new text, folded once;
* everything else (``email_domain``, ``is_set``, ``groups``, ``within_next``) — tested one by
  one with the evaluator's own test (``trigger_test``).

:meth:`FieldTriggers.flips` yields the flipped triggers one by one (the reference);
:meth:`FieldTriggers.spread`, which matching uses, adds their groups to the sets of their
direction, merging a threshold column's crossed span in one call.

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
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from smartgroups.core.conditions import All, AnyOf, Condition, Not, Trigger
from smartgroups.core.conditions.evaluate import TEXT_HOLDS, Test, trigger_test
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
        "all_options",
        "any_options",
        "entries",
        "keyed",
        "negatives",
        "ranges",
        "scanned",
        "texts",
        "thresholds",
        "timed",
    )

    def __init__(self) -> None:
        self.entries: dict[Trigger, Entry] = {}
        self.negatives = 0  # entries used under a `not` somewhere (non-empty negative_in)
        self.keyed: dict[tuple[str, object], set[Entry]] = {}
        self.any_options: dict[str, set[Entry]] = {}  # has_any (has_none) by option named
        self.all_options: dict[str, set[Entry]] = {}  # has_all by option named
        # contains / starts_with / ends_with: op -> {entry: folded target}
        self.texts: dict[str, dict[Entry, str]] = {}
        # (kind, op) -> sorted column; kind: "n" numbers, "d" instants, "age" the spans of
        # within_last / older_than (compared with the value's age)
        self.thresholds: dict[tuple[str, str], Column] = {}
        # between: kind -> (lows, highs)
        self.ranges: dict[str, tuple[Column, Column]] = {}
        self.scanned: set[Entry] = set()
        self.timed: set[Entry] = set()  # every time-relative entry
        self._offsets: list[timedelta] | None = None  # their breakpoint offsets, sorted

    def __bool__(self) -> bool:
        return bool(self.entries)

    def add(self, trigger: Trigger, group_id: str, polarity: int) -> None:
        entry = self.entries.get(trigger)
        if entry is None:
            twin = positive_twin(trigger)
            entry = Entry(
                trigger, twin, trigger_test(twin), twin is not trigger, breakpoint_offsets(trigger)
            )
            self.entries[trigger] = entry
            self._index(entry, add=True)
        if polarity & POSITIVE:
            entry.positive.add(group_id)
        if polarity & NEGATIVE:
            self.negatives += not entry.negative_in
            entry.negative_in.add(group_id)

    def discard(self, trigger: Trigger, group_id: str) -> None:
        entry = self.entries.get(trigger)
        if entry is None:
            return
        entry.positive.discard(group_id)
        if group_id in entry.negative_in:
            entry.negative_in.discard(group_id)
            self.negatives -= not entry.negative_in
        if entry.positive or entry.negative_in:
            return
        del self.entries[trigger]
        self._index(entry, add=False)

    def _index(self, entry: Entry, *, add: bool) -> None:
        trigger, op, value = entry.trigger, entry.twin.op, entry.twin.value
        if entry.offsets:
            _toggle(self.timed, entry, add)
            self._offsets = None
        if op in _SIDES and trigger.field != "groups":
            kind = "age" if entry.offsets else "d" if isinstance(value, datetime) else "n"
            column = self.thresholds.setdefault((kind, op), Column())
            column.toggle(value, entry, add)
        elif op == "between" and isinstance(value, tuple):
            low, high = value  # low <= high (parse checks it; _range_flips relies on it)
            kind = "d" if isinstance(low, datetime) else "n"
            lows, highs = self.ranges.setdefault(kind, (Column(), Column()))
            lows.toggle(low, entry, add)
            highs.toggle(high, entry, add)
        elif trigger.field != "groups" and op in _KEYED_OPS:
            items = value if isinstance(value, frozenset) else (value,)
            for item in items:
                _toggle(self.keyed.setdefault(_target_key(item), set()), entry, add)
        elif trigger.field != "groups" and op in _OPTION_OPS and isinstance(value, frozenset):
            buckets = self.any_options if op == "has_any" else self.all_options
            for option in value:
                _toggle(buckets.setdefault(option, set()), entry, add)
        elif trigger.field != "groups" and op in TEXT_HOLDS and isinstance(value, str):
            texts = self.texts.setdefault(op, {})
            if add:
                texts[entry] = value
            else:
                del texts[entry]
        else:
            _toggle(self.scanned, entry, add)

    def flips(self, old: object, new: object, now: datetime) -> Iterator[tuple[Entry, bool]]:
        """``(entry, rose)`` for every trigger whose truth at ``now`` differs between ``old``
        and ``new``: by the value indexes alone, except the scanned kinds, which are tested.
        (The reference of :meth:`spread`.)"""
        yield from self._entry_flips(old, new, now)
        for column, start, stop, rose in self._crossings(old, new, now):
            for entry in column.entries[start:stop]:  # (no threshold op is a negative one)
                yield entry, rose

    def spread(
        self,
        old: object,
        new: object,
        now: datetime,
        rose_in: set[str],
        rose_not: set[str],
        fell_in: set[str],
        fell_not: set[str],
    ) -> None:
        """Add the groups of every trigger :meth:`flips` yields to the sets of its direction:
        ``rose_in``/``fell_in`` the groups using it positively, ``rose_not``/``fell_not`` those
        using it under an odd number of ``not``.

        The same answer as :meth:`flips`, found faster: a crossed span of a threshold column
        (most of a date's or a number's flips) merges the group sets stored at its positions
        in one call, with no step per trigger.
        """
        negatives = self.negatives
        for entry, rose in self._entry_flips(old, new, now):
            if rose:
                rose_in |= entry.positive
                if negatives and entry.negative_in:
                    rose_not |= entry.negative_in
            else:
                fell_in |= entry.positive
                if negatives and entry.negative_in:
                    fell_not |= entry.negative_in
        for column, start, stop, rose in self._crossings(old, new, now):
            (rose_in if rose else fell_in).update(*column.positive[start:stop])
            if negatives:
                (rose_not if rose else fell_not).update(*column.negative[start:stop])

    def _entry_flips(self, old: object, new: object, now: datetime) -> Iterator[tuple[Entry, bool]]:
        """:meth:`flips` of every kind but the threshold columns."""
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
        if self.texts:
            yield from self._text_flips(old, new)
        if self.any_options or self.all_options:
            yield from self._option_flips(old, new)
        if self.ranges:
            yield from self._range_flips(old, new)

    def _crossings(
        self, old: object, new: object, now: datetime
    ) -> Iterator[tuple[Column, int, int, bool]]:
        """``(column, start, stop, rose)``: the positions of each threshold column whose
        triggers' truth differs between ``old`` and ``new``, and whether they rose."""
        keys: dict[str, tuple[Any, Any]] = {}
        for (kind, op), column in self.thresholds.items():
            pair = keys.get(kind)
            if pair is None:
                pair = keys[kind] = _sort_keys(kind, old, new, now)
            crossed = column.crossed(_SIDES[op], *pair)
            if crossed is not None:
                yield column, *crossed

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

    def _range_flips(self, old: object, new: object) -> Iterator[tuple[Entry, bool]]:
        """``(entry, rose)`` of each ``between`` whose truth differs (``low ≤ value ≤ high``).

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
                    holding = set(lows.between(None, value))
                    holding.intersection_update(highs.between(value, None))
                    for entry in holding:
                        yield entry, a is None
            elif a != b:
                x, y = (a, b) if a < b else (b, a)
                ends = set(highs.between(x, y, True, False))  # high in [x, y)
                starts = set(lows.between(x, y, False, True))  # low in (x, y]
                for entry in ends ^ starts:
                    yield entry, (entry in starts) == (b == y)

    def _text_flips(self, old: object, new: object) -> Iterator[tuple[Entry, bool]]:
        """``contains``/``starts_with``/``ends_with`` (and ``not_contains``): each target tested
        on the folded old and new text, folded once (a value that is not a text holds none)."""
        a = fold(old) if isinstance(old, str) else None
        b = fold(new) if isinstance(new, str) else None
        if a == b:
            return
        for op, texts in self.texts.items():
            holds = TEXT_HOLDS[op]
            for entry, target in texts.items():
                after = b is not None and holds(b, target)
                if (a is not None and holds(a, target)) != after:
                    yield entry, after != entry.negative

    def _option_flips(self, old: object, new: object) -> Iterator[tuple[Entry, bool]]:
        """``has_any``/``has_all`` (and ``has_none``) triggers whose truth differs, decided on
        the folded option sets (what the evaluator compares; a value that is not a list of
        strings has none, and a trigger names at least one option).

        ``has_any`` by set algebra alone: a trigger rises exactly when it names an added option
        but no removed one and none held throughout, and falls the other way round. ``has_all``
        triggers naming an added or removed option are tested on the two sets.
        """
        before, after = _options(old), _options(new)
        if before == after:
            return
        added, removed = after - before, before - after
        if self.any_options:
            buckets = self.any_options
            rise, fall = _union(buckets, added), _union(buckets, removed)
            if rise or fall:
                held = _union(buckets, before & after)  # true before and after
                for entry in rise - fall - held:
                    yield entry, not entry.negative
                for entry in fall - rise - held:
                    yield entry, entry.negative
        if self.all_options:
            for entry in _union(self.all_options, added | removed):
                target = entry.twin.value
                assert isinstance(target, frozenset)
                is_now = target <= after
                if (target <= before) != is_now:
                    yield entry, is_now != entry.negative

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
            if column is not None:
                found.update(column.between(low, high - _TICK))
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


class Column:
    """One sorted column of bounds, with each bound's entry and the entry's group sets at the
    same position: the triggers of a span of bounds, and their groups, are one slice."""

    __slots__ = ("bounds", "entries", "negative", "positive")

    def __init__(self) -> None:
        self.bounds: list[Any] = []
        self.entries: list[Entry] = []
        self.positive: list[set[str]] = []  # entries[i].positive, the same set
        self.negative: list[set[str]] = []  # entries[i].negative_in, the same set

    def toggle(self, bound: Any, entry: Entry, add: bool) -> None:
        """Insert ``entry`` at ``bound`` (after equal bounds), or remove it."""
        if add:
            at = bisect.bisect_right(self.bounds, bound)
            self.bounds.insert(at, bound)
            self.entries.insert(at, entry)
            self.positive.insert(at, entry.positive)
            self.negative.insert(at, entry.negative_in)
            return
        at = bisect.bisect_left(self.bounds, bound)
        while self.entries[at] is not entry:
            at += 1
        for items in (self.bounds, self.entries, self.positive, self.negative):
            del items[at]

    def span(
        self, low: Any, high: Any, low_inclusive: bool = True, high_inclusive: bool = True
    ) -> tuple[int, int]:
        """The positions ``[start, stop)`` of the bounds between ``low`` and ``high`` (None:
        open); empty (``start >= stop``) when there are none."""
        bounds = self.bounds
        if low is None:
            start = 0
        elif low_inclusive:
            start = bisect.bisect_left(bounds, low)
        else:
            start = bisect.bisect_right(bounds, low)
        if high is None:
            stop = len(bounds)
        elif high_inclusive:
            stop = bisect.bisect_right(bounds, high)
        else:
            stop = bisect.bisect_left(bounds, high)
        return start, stop

    def between(
        self, low: Any, high: Any, low_inclusive: bool = True, high_inclusive: bool = True
    ) -> list[Entry]:
        """The entries whose bound lies between ``low`` and ``high`` (see :meth:`span`)."""
        start, stop = self.span(low, high, low_inclusive, high_inclusive)
        return self.entries[start:stop]

    def crossed(self, side: tuple[bool, bool], old: Any, new: Any) -> tuple[int, int, bool] | None:
        """The positions ``(start, stop)`` of the thresholds whose truth differs between the
        values ``old`` and ``new`` (sort keys, None when never true), and whether they rose;
        None when none can differ.

        A threshold op is true for the bounds on one side of the value (``side``: below or
        above, strictly or not), so the bounds that changed side lie between the two values.
        """
        below, strict = side
        if old is None or new is None:
            value = new if old is None else old
            if value is None:
                return None
            if below:
                start, stop = self.span(None, value, high_inclusive=not strict)
            else:
                start, stop = self.span(value, None, low_inclusive=not strict)
            return start, stop, old is None
        if old == new:
            return None
        low, high = (old, new) if old < new else (new, old)
        # below-strict and above-inclusive: [low, high); the other two: (low, high]
        start, stop = self.span(low, high, below == strict, below != strict)
        return start, stop, (new > old) == below


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


def _sort_keys(kind: str, old: object, new: object, now: datetime) -> tuple[Any, Any]:
    """What the thresholds of ``kind`` compare the old and new value as (None: never true)."""
    if kind != "age":
        return _order_key(old, kind), _order_key(new, kind)
    old_at, new_at = _instant(old), _instant(new)
    return (
        None if old_at is None else now - old_at,
        None if new_at is None else now - new_at,
    )


def _union(buckets: dict[str, set[Entry]], keys: Iterable[str]) -> set[Entry]:
    """The entries of the buckets of ``keys`` (a new set)."""
    found: set[Entry] = set()
    for key in keys:
        bucket = buckets.get(key)
        if bucket:
            found |= bucket
    return found


def _toggle(bucket: set[Entry], entry: Entry, add: bool) -> None:
    if add:
        bucket.add(entry)
    else:
        bucket.discard(entry)
