"""The condition tree: nodes, ops, and which ops fit which field type (contract section 5).

Nodes are immutable, hashable and compare by value. A :class:`Trigger`'s ``value`` is already
normalised by ``parse_conditions`` so evaluation does no parsing of the rule itself:

====================================  ===========================================================
op                                    ``Trigger.value``
====================================  ===========================================================
``is_set`` ``is_not_set``             None
``eq`` ``neq``                        folded ``str`` (text, select), ``int``/``float``, ``bool``,
                                      or aware UTC ``datetime`` (date)
``in`` ``not_in``                     non-empty ``frozenset`` of one of those scalar kinds
``contains`` … ``ends_with``          folded non-empty ``str``
``email_domain``                      ``frozenset`` of folded domains
``gt`` ``gte`` ``lt`` ``lte``         number or ``datetime``
``between``                           ``(low, high)`` tuple, both numbers or both datetimes
``has_any`` ``has_all`` ``has_none``  ``frozenset`` of folded option ids (exact ids for ``groups``)
``within_*`` ``older_than``           ``timedelta``
====================================  ===========================================================

``Trigger.value_type`` records the field's type as resolved at parse time (None: unknown).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from smartgroups.core.values import ValueType

MAX_DEPTH = 16
"""Deepest allowed nesting, counting every node on the path (a bare trigger has depth 1)."""
MAX_TRIGGERS = 200
"""Most triggers in one tree."""
MAX_LIST_ITEMS = 1000
"""Longest list: ``all``/``any`` children and list values alike."""
MAX_TEXT_CHARS = 1000
"""Longest text in a value (each list item counts on its own)."""

PRESENCE_OPS = frozenset(("is_set", "is_not_set"))
TIME_OPS = frozenset(("within_last", "older_than", "within_next"))
NEGATIVE_OPS: dict[str, str] = {
    "neq": "eq",
    "not_in": "in",
    "not_contains": "contains",
    "has_none": "has_any",
    "is_not_set": "is_set",
}
"""Each negative op and the positive op it is the exact complement of."""

OPS_BY_TYPE: dict[ValueType, frozenset[str]] = {
    "text": frozenset(
        (
            "eq",
            "neq",
            "in",
            "not_in",
            "contains",
            "not_contains",
            "starts_with",
            "ends_with",
            "email_domain",
        )
    ),
    "number": frozenset(("eq", "neq", "in", "not_in", "gt", "gte", "lt", "lte", "between")),
    "boolean": frozenset(("eq", "neq")),
    "date": frozenset(("eq", "neq", "gt", "gte", "lt", "lte", "between")) | TIME_OPS,
    "single_select": frozenset(("eq", "neq", "in", "not_in")),
    "multi_select": frozenset(("has_any", "has_all", "has_none")),
}
"""The ops each type allows besides ``is_set``/``is_not_set``, which fit every type."""

ALL_OPS: frozenset[str] = PRESENCE_OPS.union(*OPS_BY_TYPE.values())

SELECT_OPS = frozenset(("eq", "neq", "in", "not_in", "has_any", "has_all", "has_none"))
"""Ops whose value names option ids when the field is a select."""


class _Node:
    """Base of the nodes: they pickle without their compiled predicate (a closure).

    Each node's ``_compiled`` slot caches its predicate (see ``evaluate.compile_condition``); it
    takes no part in construction, equality, hashing or repr.
    """

    __slots__ = ()

    def __reduce__(self) -> tuple[type, tuple[object, ...]]:
        fields = dataclasses.fields(self)  # type: ignore[arg-type]
        return (type(self), tuple(getattr(self, f.name) for f in fields if f.init))


@dataclass(frozen=True, slots=True)
class Trigger(_Node):
    """``{"field": field, "op": op, "value": value}`` with ``value`` normalised (see module doc)."""

    field: str
    op: str
    value: object = None
    value_type: ValueType | None = None
    _compiled: Any = dataclasses.field(default=None, init=False, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class All(_Node):
    """``{"all": [...]}``: true when every child is (so ``all: []`` is true)."""

    children: tuple[Condition, ...]
    _compiled: Any = dataclasses.field(default=None, init=False, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class AnyOf(_Node):
    """``{"any": [...]}``: true when some child is (so ``any: []`` is false)."""

    children: tuple[Condition, ...]
    _compiled: Any = dataclasses.field(default=None, init=False, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class Not(_Node):
    """``{"not": child}``: true exactly when ``child`` is false."""

    child: Condition
    _compiled: Any = dataclasses.field(default=None, init=False, repr=False, compare=False)


Condition = All | AnyOf | Not | Trigger
"""Any node of a condition tree."""


def triggers_of(cond: Condition) -> list[Trigger]:
    """The triggers of a tree, in document order."""
    if isinstance(cond, Trigger):
        return [cond]
    if isinstance(cond, Not):
        return triggers_of(cond.child)
    return [trigger for child in cond.children for trigger in triggers_of(child)]


def time_fields(cond: Condition) -> frozenset[str]:
    """The fields the time-relative triggers of a tree read (their verdict changes with time)."""
    return frozenset(t.field for t in triggers_of(cond) if t.op in TIME_OPS)


def positive_twin(trigger: Trigger) -> Trigger:
    """``trigger`` with a negative op replaced by the positive op it complements (see
    :data:`NEGATIVE_OPS`); ``trigger`` itself when its op is positive."""
    positive = NEGATIVE_OPS.get(trigger.op)
    if positive is None:
        return trigger
    return Trigger(trigger.field, positive, trigger.value, trigger.value_type)
