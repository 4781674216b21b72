"""Condition trees lowered for the native evaluator (the C extension ``_native``).

A tree becomes a flat tuple of nodes in pre-order, each ``(kind, size, key, source, conv, cmp,
negate, target, high)``; ``size`` counts the nodes of the subtree, so an ``all``/``any`` steps
over a child it has decided with no pointer to follow. :func:`program` hands the tuple to
``_native.Program``, which keeps the nodes in one contiguous object and, called with
``(member, now)``, decides the tree with the same short-circuits and the same answers as the
Python predicate of :mod:`smartgroups.core.conditions.evaluate` (the property tests compare the
two, and both with the tests' reference evaluator). Deciding a group then touches that one
object and the values it compares: at thousands of groups, where a Python predicate's function,
code object and constants fall out of the CPU caches between two uses, that is several times
cheaper.

A trigger is lowered as its positive twin plus a ``negate`` bit, with one conversion of the
field value and one comparison, chosen the way ``evaluate.trigger_test`` chooses its test
(by the op and the target's type):

* ``eq``/orderings/``between``/``in`` — the value converted to the target's kind (folded text,
  bool, number but not bool, instant) and compared; a value of another kind is false;
* ``contains``/``starts_with``/``ends_with`` — on the folded text;
* ``within_last``/``older_than``/``within_next`` — ``now`` minus the value's instant, compared
  with the span (``-n <= age <= 0`` for ``within_next``);
* ``has_any``/``has_all`` on a list of options or on ``groups`` — native set tests;
* ``is_set`` and ``email_domain`` — the trigger's own Python test, called from the native code.

The extension is built by ``pip install`` (setup.py). Where it is missing (the package run from
a source tree that was never installed), :data:`AVAILABLE` is False and predicates stay Python
functions: the same answers, more slowly.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import get_args

from smartgroups.core.conditions.model import All, Condition, Not, Trigger, positive_twin
from smartgroups.core.extension import NATIVE as _native
from smartgroups.core.extension import check_layout

AVAILABLE = _native is not None
"""Whether the native evaluator was built (``pip install`` builds it)."""

Node = tuple[int, int, object, int, int, int, int, object, object]
"""``(kind, size, key, source, conv, cmp, negate, target, high)``, as ``_native.c`` reads it."""
Program = Callable[[object, datetime], bool]
TestOf = Callable[[Trigger], Callable[[object, datetime], bool]]

# node kinds, sources, conversions and comparisons: the enums of _native.c
ALL, ANY, NOT, TRIGGER = 0, 1, 2, 3
_SOURCES = {"profile": 0, "property": 1, "answer": 2}
_GROUPS = 3
STR, BOOL, NUM, DATE, OPTIONS_ANY, GROUPS_ANY, GROUPS_ALL, AGE, OPTIONS_ALL, TEST = range(10)
LT, LE, EQ, GT, GE = 0, 1, 2, 4, 5  # Python's rich comparison codes
BETWEEN, IN, CONTAINS, STARTS, ENDS = 6, 7, 8, 9, 10
_COMPARE = {"lt": LT, "lte": LE, "eq": EQ, "gt": GT, "gte": GE}
_TEXT = {"contains": CONTAINS, "starts_with": STARTS, "ends_with": ENDS}
_AGE = {"within_last": LE, "older_than": GT, "within_next": BETWEEN}
_ZERO = timedelta(0)
_UNUSED = 0

check_layout(
    {
        "N_ALL": ALL, "N_ANY": ANY, "N_NOT": NOT, "N_TRIGGER": TRIGGER,
        "S_PROFILE": _SOURCES["profile"], "S_PROPERTY": _SOURCES["property"],
        "S_ANSWER": _SOURCES["answer"], "S_GROUPS": _GROUPS,
        "K_STR": STR, "K_BOOL": BOOL, "K_NUM": NUM, "K_DATE": DATE,
        "K_OPTIONS_ANY": OPTIONS_ANY, "K_GROUPS_ANY": GROUPS_ANY, "K_GROUPS_ALL": GROUPS_ALL,
        "K_AGE": AGE, "K_OPTIONS_ALL": OPTIONS_ALL, "K_TEST": TEST,
        "C_LT": LT, "C_LE": LE, "C_EQ": EQ, "C_GT": GT, "C_GE": GE, "C_BETWEEN": BETWEEN,
        "C_IN": IN, "C_CONTAINS": CONTAINS, "C_STARTS": STARTS, "C_ENDS": ENDS,
        "PROGRAM_NODE_FIELDS": len(get_args(Node)),
    }
)  # fmt: skip


def program(cond: Condition, test_of: TestOf, share: Callable[[object], object]) -> Program:
    """The native program of ``cond`` (requires :data:`AVAILABLE`).

    ``test_of(trigger)`` gives the Python test of a positive trigger the native code has no
    conversion for; ``share(value)`` the one copy of a key or target that predicates share.
    """
    assert _native is not None, "the native evaluator is not built"
    return _native.Program(lower(cond, test_of, share))


def configure(
    fold: Callable[[str], str],
    parse_instant: Callable[[str], datetime | None],
    memo: dict[str, datetime | None],
) -> None:
    """Give the native code the Python helpers it calls: the fold of a text that is not plain
    ASCII, ``parse_instant`` and its memo (looked up first)."""
    if _native is not None:
        _native.configure(fold, parse_instant, memo)


def lower(cond: Condition, test_of: TestOf, share: Callable[[object], object]) -> tuple[Node, ...]:
    """``cond`` as the native code's flat pre-order nodes (see the module docstring)."""
    nodes: list[Node] = []

    def visit(node: Condition) -> None:
        at = len(nodes)
        if isinstance(node, Trigger):
            nodes.append(_trigger(node, test_of, share))
            return
        nodes.append((ALL, 0, None, 0, 0, 0, 0, None, None))  # sized below
        children = (node.child,) if isinstance(node, Not) else node.children
        for child in children:
            visit(child)
        kind = NOT if isinstance(node, Not) else ALL if isinstance(node, All) else ANY
        nodes[at] = (kind, len(nodes) - at, None, 0, 0, 0, 0, None, None)

    visit(cond)
    return tuple(nodes)


def _trigger(trigger: Trigger, test_of: TestOf, share: Callable[[object], object]) -> Node:
    twin = positive_twin(trigger)
    negate = int(twin is not trigger)
    source, _, key = trigger.field.partition(".")
    if source in _SOURCES:
        where, shared_key = _SOURCES[source], share(key)
    else:
        where, shared_key = _GROUPS, None
    conv, cmp = _conversion(twin)
    target = twin.value
    if conv == AGE and cmp == BETWEEN:  # within_next n: -n <= now - value <= 0
        assert isinstance(target, timedelta)
        target = (-target, _ZERO)
    if conv == TEST:
        return (TRIGGER, 1, shared_key, where, TEST, _UNUSED, negate, test_of(twin), None)
    if cmp == BETWEEN:
        assert isinstance(target, tuple)
        low, high = share(target[0]), share(target[1])
        return (TRIGGER, 1, shared_key, where, conv, cmp, negate, low, high)
    return (TRIGGER, 1, shared_key, where, conv, cmp, negate, share(target), None)


def _conversion(trigger: Trigger) -> tuple[int, int]:
    """``(conv, cmp)`` for a positive trigger, as ``evaluate.trigger_test`` chooses its test."""
    op, target = trigger.op, trigger.value
    if op == "is_set":
        return TEST, _UNUSED
    if trigger.field == "groups":
        return {"has_any": (GROUPS_ANY, _UNUSED), "has_all": (GROUPS_ALL, _UNUSED)}.get(
            op, (TEST, _UNUSED)
        )
    if op in ("has_any", "has_all"):
        return (OPTIONS_ANY if op == "has_any" else OPTIONS_ALL), _UNUSED
    if op in _TEXT:
        return STR, _TEXT[op]
    if op in _AGE:
        return AGE, _AGE[op]
    if op == "in" and isinstance(target, frozenset):
        return _kind(next(iter(target))), IN
    if op == "between" and isinstance(target, tuple):
        return _kind(target[0]), BETWEEN
    if op in _COMPARE:
        return _kind(target), _COMPARE[op]
    return TEST, _UNUSED


def _kind(sample: object) -> int:
    """The conversion for a target of ``sample``'s type (``evaluate._converter``'s choice)."""
    if isinstance(sample, str):
        return STR
    if isinstance(sample, bool):
        return BOOL
    if isinstance(sample, datetime):
        return DATE
    return NUM
