"""Evaluate a condition tree on a member at an instant.

A tree is compiled once (cached on the node). Where the native evaluator is built (``pip
install`` builds it; see :mod:`~smartgroups.core.conditions.native`), the compiled form is a
native program: the tree lowered to a flat array of nodes that C code walks with the same
short-circuits and the same answers. Otherwise, and as the reference the property tests hold
the native code to, it is one Python function (:func:`python_predicate`) whose body is the tree
as a single short-circuit expression: the common tests (text, number, boolean and date
comparisons, ``in``) are written inline and the others call their compiled test. Only names and
placeholders are generated: every field key, target value and test becomes a constant of the
function's code object in place of its placeholder, never source text. Predicates share one
namespace (the few helpers they call), and equal keys and values are shared across predicates
(and programs): with thousands of groups, deciding one touches little memory of its own.
Evaluation is total: whatever the snapshot holds, it returns a bool and never raises (``now``
must be aware).

Semantics (contract section 5, and decisions where it is silent):

* A missing value, or one of the wrong type, makes every positive op false; the negative ops
  (``neq`` ``not_in`` ``not_contains`` ``has_none`` ``is_not_set``) are exact complements.
* Text and select values compare folded (``values.fold``); ``groups`` ids compare exactly.
* Numbers are ``int``/``float`` but never ``bool``; ``1 == 1.0``.
* Dates are strings that ``values.parse_instant`` reads; they compare as instants.
* A list value (multi-select, tags) counts only when every item is a string; ``eq``/``in`` on a
  list is false.
* ``is_set``: present, not null, and of the field's type (a text may be empty; a list must be
  non-empty). With an unknown type, any non-null value but an empty list.
* ``email_domain``: the text after the last ``@`` equals a domain or ends with ``.`` + domain.
* ``within_last`` n: value ≥ now - n (a future value is within the last n, as the contract
  says literally); ``older_than`` n: value < now - n; ``within_next`` n: now ≤ value ≤ now + n.
"""

from __future__ import annotations

import builtins
import sys
import warnings
from collections.abc import Callable
from datetime import datetime, timedelta
from operator import ge, gt, le, lt
from types import CodeType, FunctionType
from typing import Any, cast

from smartgroups.core.conditions import native
from smartgroups.core.conditions.model import All, Condition, Not, Trigger, positive_twin
from smartgroups.core.snapshot import MemberSnapshot
from smartgroups.core.values import fold, instant_memo, parse_instant

Predicate = Callable[[MemberSnapshot, datetime], bool]
"""A compiled condition: ``predicate(member, now) -> bool``."""
Test = Callable[[object, datetime], bool]
"""A compiled trigger test on one field value."""
Reader = Callable[[MemberSnapshot], object]
"""Reads the value of one field from a snapshot (None when missing)."""

_ZERO = timedelta(0)
# Tuples, not unions: isinstance on a tuple is several times faster.
_NUMBERS = (int, float)
_COLLECTIONS = (list, tuple, frozenset, set)
_SETS = (frozenset, set)
_ORDERINGS = {"gt": gt, "gte": ge, "lt": lt, "lte": le}


def evaluate(cond: Condition, member: MemberSnapshot, now: datetime) -> bool:
    """Whether ``cond`` holds for ``member`` at ``now``."""
    return compile_condition(cond)(member, now)


def compile_condition(cond: Condition) -> Predicate:
    """The predicate of ``cond``, compiled on first use and cached on the node.

    Identical trees share one predicate (a process-wide memo keyed by the tree's repr, which
    tells ``True`` from ``1``, unlike equality; emptied when it reaches :data:`_SHARED_MAX`
    trees): every partition of a worker holds its own copy of a space's groups, and compiling
    each once is enough.
    """
    compiled: Predicate | None = cond._compiled
    if compiled is None:
        key = repr(cond)
        compiled = _SHARED.get(key)
        if compiled is None:
            if len(_SHARED) >= _SHARED_MAX:
                _SHARED.clear()
            compiled = _SHARED[key] = _compile(cond)
        object.__setattr__(cond, "_compiled", compiled)
    return compiled


_SHARED: dict[str, Predicate] = {}
_SHARED_MAX = 100_000


def _compile(cond: Condition) -> Predicate:
    """The native program of ``cond`` where the evaluator is built, else its Python function."""
    if native.AVAILABLE:
        return native.program(cond, trigger_test, _shared)
    return python_predicate(cond)


def python_predicate(cond: Condition) -> Predicate:
    """The Python function deciding ``cond`` (uncached; the native program's reference)."""
    emitter = _Emitter()
    body = emitter.emit(cond)
    reads = "".join(f"    {name} = member.{attr}\n" for name, attr in emitter.sources.items())
    source = f"def predicate(member, now):\n{reads}    return {body}\n"
    with warnings.catch_warnings():
        # tests are called through their placeholders, which the compiler warns is calling a str
        warnings.simplefilter("ignore", SyntaxWarning)
        module = compile(source, "<conditions>", "exec")
    code = next(c for c in module.co_consts if isinstance(c, CodeType))
    bound = emitter.bound
    consts = tuple(bound.get(c, c) if isinstance(c, str) else c for c in code.co_consts)
    return cast(Predicate, FunctionType(code.replace(co_consts=consts), _GLOBALS, "predicate"))


_SOURCES = {
    "profile": ("R", "profile"),
    "property": ("P", "properties"),
    "answer": ("A", "answers"),
}
"""Field source -> (local name in a predicate, MemberSnapshot attribute)."""
_INLINE_ORDERINGS = {"eq": "==", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


class _Emitter:
    """Writes a condition tree as one Python expression over generated names (see module doc)."""

    def __init__(self) -> None:
        self.bound: dict[str, object] = {}  # placeholder literal -> the object it stands for
        self.sources: dict[str, str] = {}  # local name -> MemberSnapshot attribute
        self.count = 0

    def name(self, prefix: str) -> str:
        """A fresh local name."""
        self.count += 1
        return f"{prefix}{self.count}"

    def const(self, value: object) -> str:
        """A placeholder literal that the compiled code holds ``value`` in place of.

        Values become constants of the code object (loaded without a lookup). Field keys are
        interned and equal values shared across predicates, so dictionary lookups hit on
        identity and thousands of predicates touch one copy of each value.
        """
        self.count += 1
        placeholder = f"\ue000{self.count}"
        self.bound[placeholder] = _shared(value)
        return repr(placeholder)

    def emit(self, cond: Condition) -> str:
        if isinstance(cond, Trigger):
            return self.trigger(cond)
        if isinstance(cond, Not):
            return f"(not {self.emit(cond.child)})"
        parts = [self.emit(child) for child in cond.children]
        if not parts:  # an empty `all` holds, an empty `any` does not
            return "True" if isinstance(cond, All) else "False"
        return "(" + (" and " if isinstance(cond, All) else " or ").join(parts) + ")"

    def read(self, field: str) -> str:
        source, _, key = field.partition(".")
        if source not in _SOURCES:
            return "member.groups"
        local, attr = _SOURCES[source]
        self.sources[local] = attr
        return f"{local}.get({self.const(key)})"

    def trigger(self, trigger: Trigger) -> str:
        twin = positive_twin(trigger)
        read = self.read(trigger.field)
        expr = None if trigger.field == "groups" else self.inline(twin, read)
        if expr is None:
            expr = f"{self.const(trigger_test(twin))}({read}, now)"
        return f"(not {expr})" if twin is not trigger else expr

    def inline(self, trigger: Trigger, read: str) -> str | None:
        """The test of a common positive trigger as an expression, or None (call the test)."""
        op, target = trigger.op, trigger.value
        v = self.name("v")
        first = f"({v} := {read})"
        if op == "in" and isinstance(target, frozenset):
            sample = next(iter(target))
            c = self.const(target)
            if isinstance(sample, str):
                return f"(isinstance({first}, str) and F({v}) in {c})"
            if isinstance(sample, bool):
                return f"(isinstance({first}, bool) and {v} in {c})"
            return f"(isinstance({first}, NUM) and not isinstance({v}, bool) and {v} in {c})"
        if op == "between" and isinstance(target, tuple):
            low, high = self.const(target[0]), self.const(target[1])
            if isinstance(target[0], datetime):
                d = self.name("d")
                return (
                    f"(isinstance({first}, str) and ({d} := PI({v})) is not None"
                    f" and {low} <= {d} <= {high})"
                )
            return (
                f"(isinstance({first}, NUM) and not isinstance({v}, bool)"
                f" and {low} <= {v} <= {high})"
            )
        compare = _INLINE_ORDERINGS.get(op)
        if compare is None:
            return None
        c = self.const(target)
        if isinstance(target, str):
            return f"(isinstance({first}, str) and F({v}) {compare} {c})"
        if isinstance(target, bool):
            return f"(isinstance({first}, bool) and {v} {compare} {c})"
        if isinstance(target, datetime):
            d = self.name("d")
            return (
                f"(isinstance({first}, str) and ({d} := PI({v})) is not None and {d} {compare} {c})"
            )
        if isinstance(target, int | float):
            return f"(isinstance({first}, NUM) and not isinstance({v}, bool) and {v} {compare} {c})"
        return None


def reader(field: str) -> Reader:
    """The reader of a field name (``profile.x``, ``property.x``, ``answer.x`` or ``groups``)."""
    source, _, key = field.partition(".")
    if source == "profile":
        return lambda member: member.profile.get(key)
    if source == "property":
        return lambda member: member.properties.get(key)
    if source == "answer":
        return lambda member: member.answers.get(key)
    return lambda member: member.groups


def trigger_test(trigger: Trigger) -> Test:
    """The test of a *positive* trigger on a field value (its negative twin negates it)."""
    op, target = trigger.op, trigger.value
    if op == "is_set":
        return _is_set(trigger)
    if trigger.field == "groups":
        return _group_test(op, target)
    if op in ("has_any", "has_all"):
        return _options_test(op, target)
    if op == "email_domain":
        return _email_domain(target)
    if op in TEXT_HOLDS:
        return _text_test(op, target)
    if op in ("within_last", "older_than", "within_next"):
        return _time_test(op, target)
    if op == "in":
        assert isinstance(target, frozenset)
        return _in_test(target)
    return _compare_test(op, target)


def _folded(value: str) -> str:
    return value.lower() if value.isascii() else fold(value)


def _is_num(value: object) -> bool:
    return isinstance(value, _NUMBERS) and not isinstance(value, bool)


def _is_set(trigger: Trigger) -> Test:
    vtype = trigger.value_type
    if trigger.field == "groups" or vtype == "multi_select":
        return lambda v, now: bool(_folded_list(v))
    if vtype in ("text", "single_select"):
        return lambda v, now: isinstance(v, str)
    if vtype == "number":
        return lambda v, now: _is_num(v)
    if vtype == "boolean":
        return lambda v, now: isinstance(v, bool)
    if vtype == "date":
        return lambda v, now: isinstance(v, str) and parse_instant(v) is not None
    return lambda v, now: v is not None and not (isinstance(v, _COLLECTIONS) and len(v) == 0)


def _folded_list(value: object) -> frozenset[str] | None:
    """The folded items of a list of strings (sets of strings too), None for any other value."""
    if not isinstance(value, _COLLECTIONS):
        return None
    items: set[str] = set()
    for item in value:
        if not isinstance(item, str):
            return None
        items.add(_folded(item))
    return frozenset(items)


def _group_test(op: str, target: object) -> Test:
    assert isinstance(target, frozenset)
    if op == "has_any":
        return lambda v, now: isinstance(v, _SETS) and not target.isdisjoint(v)
    return lambda v, now: isinstance(v, _SETS) and target <= v


def _options_test(op: str, target: object) -> Test:
    assert isinstance(target, frozenset)
    if op == "has_any":

        def has_any(v: object, now: datetime) -> bool:
            if not isinstance(v, _COLLECTIONS):
                return False
            found = False
            for item in v:
                if not isinstance(item, str):
                    return False
                if not found:
                    found = (item.lower() if item.isascii() else fold(item)) in target
            return found

        return has_any

    def has_all(v: object, now: datetime) -> bool:
        items = _folded_list(v)
        return items is not None and target <= items

    return has_all


def _email_domain(target: object) -> Test:
    assert isinstance(target, frozenset)
    domains: frozenset[str] = target
    suffixes = tuple(f".{domain}" for domain in sorted(domains))

    def email_domain(v: object, now: datetime) -> bool:
        if not isinstance(v, str):
            return False
        at, _, domain = _folded(v).rpartition("@")
        return bool(at) and (domain in domains or domain.endswith(suffixes))

    return email_domain


TEXT_HOLDS: dict[str, Callable[[str, str], bool]] = {
    "contains": str.__contains__,
    "starts_with": str.startswith,
    "ends_with": str.endswith,
}
"""``holds(folded_text, target)`` of each text op (its target is folded when parsed)."""


def _text_test(op: str, target: object) -> Test:
    assert isinstance(target, str)
    holds = TEXT_HOLDS[op]
    return lambda v, now: isinstance(v, str) and holds(_folded(v), target)


def _time_test(op: str, span: object) -> Test:
    assert isinstance(span, timedelta)

    def age(v: object, now: datetime) -> timedelta | None:
        instant = parse_instant(v) if isinstance(v, str) else None
        return None if instant is None else now - instant

    if op == "within_last":

        def within_last(v: object, now: datetime) -> bool:
            elapsed = age(v, now)
            return elapsed is not None and elapsed <= span

        return within_last
    if op == "older_than":

        def older_than(v: object, now: datetime) -> bool:
            elapsed = age(v, now)
            return elapsed is not None and elapsed > span

        return older_than

    def within_next(v: object, now: datetime) -> bool:
        elapsed = age(v, now)
        return elapsed is not None and -span <= elapsed <= _ZERO

    return within_next


def _in_test(target: frozenset[object]) -> Test:
    sample = next(iter(target))
    if isinstance(sample, str):
        return lambda v, now: isinstance(v, str) and _folded(v) in target
    if isinstance(sample, bool):
        return lambda v, now: isinstance(v, bool) and v in target
    return lambda v, now: _is_num(v) and v in target


def _compare_test(op: str, target: object) -> Test:
    """``eq``, the orderings and ``between`` on a scalar kind chosen by the target's type."""
    convert = _converter(target[0] if isinstance(target, tuple) else target)
    if op == "eq":
        return lambda v, now: (c := convert(v)) is not None and c == target
    if op == "between":
        assert isinstance(target, tuple)
        low, high = target
        return lambda v, now: (c := convert(v)) is not None and low <= c <= high
    compare: Callable[[Any, Any], bool] = _ORDERINGS[op]
    return lambda v, now: (c := convert(v)) is not None and compare(c, target)


def _converter(sample: object) -> Callable[[object], object]:
    """Turns a field value into the target's kind, or None when it is of another type."""
    if isinstance(sample, str):
        return lambda v: _folded(v) if isinstance(v, str) else None
    if isinstance(sample, bool):
        return lambda v: v if isinstance(v, bool) else None
    if isinstance(sample, datetime):
        return lambda v: parse_instant(v) if isinstance(v, str) else None
    return lambda v: v if _is_num(v) else None


_GLOBALS: dict[str, object] = {
    "__builtins__": builtins,
    "F": _folded,
    "PI": parse_instant,
    "NUM": _NUMBERS,
}
"""The one namespace of every predicate: the helpers it calls, never a trigger's value."""

native.configure(_folded, parse_instant, instant_memo())


_VALUES: dict[tuple[type, object], object] = {}
_VALUES_MAX = 100_000


def _shared(value: object) -> object:
    """One copy of each equal value (per type, so ``True`` stays apart from ``1``).

    Strings are interned; frozensets, instants, spans and numbers go through a memo that starts
    afresh at :data:`_VALUES_MAX` values; anything else (a compiled test) is its own copy.
    """
    if isinstance(value, str):
        return sys.intern(value)
    if not isinstance(value, frozenset | datetime | timedelta | int | float):
        return value
    key = (type(value), value)
    found = _VALUES.get(key)
    if found is None:
        if len(_VALUES) >= _VALUES_MAX:
            _VALUES.clear()
        found = _VALUES[key] = value
    return found
