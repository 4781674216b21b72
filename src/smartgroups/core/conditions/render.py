"""Turn a tree back into wire JSON.

The output is canonical: texts and option ids folded, lists sorted, instants in UTC as
``YYYY-MM-DDTHH:MM:SS[.ffffff]Z``, durations in the largest unit that expresses them exactly
(else fractional minutes). ``parse_conditions(render(c), schema) == c`` for every parsed ``c``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from smartgroups.core.conditions.model import All, AnyOf, Condition, Not, Trigger
from smartgroups.core.values import format_instant

_UNITS = (("days", timedelta(days=1)), ("hours", timedelta(hours=1)))
_MINUTE = timedelta(minutes=1)


def render(cond: Condition) -> object:
    """The wire JSON (dicts, lists, strings, numbers, booleans) of ``cond``."""
    if isinstance(cond, All):
        return {"all": [render(child) for child in cond.children]}
    if isinstance(cond, AnyOf):
        return {"any": [render(child) for child in cond.children]}
    if isinstance(cond, Not):
        return {"not": render(cond.child)}
    return _trigger(cond)


def _trigger(trigger: Trigger) -> dict[str, object]:
    wire: dict[str, object] = {"field": trigger.field, "op": trigger.op}
    if trigger.value is not None:
        wire["value"] = _value(trigger.value)
    return wire


def _value(value: object) -> object:
    if isinstance(value, datetime):
        return format_instant(value)
    if isinstance(value, timedelta):
        return _duration(value)
    if isinstance(value, tuple):
        return [_value(item) for item in value]
    if isinstance(value, frozenset):
        return sorted(_value(item) for item in value)  # type: ignore[type-var]
    return value


def _duration(span: timedelta) -> dict[str, int | float]:
    for unit, size in _UNITS:
        if span % size == timedelta(0):
            return {unit: span // size}
    if span % _MINUTE == timedelta(0):
        return {"minutes": span // _MINUTE}
    return {"minutes": span / _MINUTE}
