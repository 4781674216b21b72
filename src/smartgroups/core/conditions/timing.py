"""When a member's verdict can change with time alone.

Only ``within_last``, ``older_than`` and ``within_next`` depend on ``now``. For a member with a
timestamp value ``v`` and a span ``n`` each is constant between these breakpoints (the first
instant at which its verdict differs, at microsecond resolution):

* ``within_last`` (``v ≥ t - n``) turns false at ``v + n + 1µs``;
* ``older_than`` (``v < t - n``) turns true at ``v + n + 1µs``;
* ``within_next`` (``t ≤ v ≤ t + n``) turns true at ``v - n`` and false at ``v + 1µs``.

The tree is therefore constant between consecutive breakpoints, and :func:`next_change` returns
the first future breakpoint at which the tree's verdict really differs from its verdict at
``now``: exact, never early and never late. It assumes the member does not change; in
particular a ``groups`` trigger is read as of now (a cascade is a member change).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from smartgroups.core.conditions.evaluate import compile_condition, reader
from smartgroups.core.conditions.model import TIME_OPS, Condition, Trigger, triggers_of
from smartgroups.core.snapshot import MemberSnapshot
from smartgroups.core.values import parse_instant

_TICK = timedelta(microseconds=1)


def next_change(cond: Condition, member: MemberSnapshot, now: datetime) -> datetime | None:
    """The first instant after ``now`` at which ``cond``'s verdict on ``member`` flips, or None."""
    breakpoints = sorted(
        {
            instant
            for trigger in triggers_of(cond)
            if trigger.op in TIME_OPS
            for instant in _breakpoints(trigger, member)
            if instant > now
        }
    )
    if not breakpoints:
        return None
    predicate = compile_condition(cond)
    verdict = predicate(member, now)
    for instant in breakpoints:
        if predicate(member, instant) != verdict:
            return instant
    return None


def breakpoint_offsets(trigger: Trigger) -> tuple[timedelta, ...]:
    """Where a time-relative trigger's verdict changes, relative to the member's instant ``v``.

    ``within_last``/``older_than`` n: ``n + 1µs``; ``within_next`` n: ``-n`` and ``+1µs`` (see
    the module docstring). Empty for any other trigger.
    """
    span = trigger.value
    if trigger.op not in TIME_OPS or not isinstance(span, timedelta):
        return ()
    if trigger.op == "within_next":
        return (-span, _TICK)
    return (span + _TICK,)


def _breakpoints(trigger: Trigger, member: MemberSnapshot) -> list[datetime]:
    value = reader(trigger.field)(member)
    instant = parse_instant(value) if isinstance(value, str) else None
    if instant is None:
        return []
    shifted = (_shift(instant, offset) for offset in breakpoint_offsets(trigger))
    return [t for t in shifted if t is not None]


def _shift(instant: datetime, delta: timedelta) -> datetime | None:
    """``instant + delta``, or None outside the range of datetime (no such instant occurs)."""
    try:
        return instant + delta
    except OverflowError:
        return None
