"""Validate wire conditions (contract section 5) into a normalised tree.

Every rejection is a ``RuleError`` whose message starts with a JSON pointer to the offending
part (``/all/1/any/0/value: …``; ``/`` is the root). Codes: ``unknown_reference`` when a field
names a property or question that is not defined, or a ``groups`` trigger names a group the
schema does not have; ``invalid`` for everything else. Decisions where the contract is silent:

* ``all: []`` is true and ``any: []`` is false (vacuous truth); both are accepted.
* A node is exactly one of ``{"all": [...]}``, ``{"any": [...]}``, ``{"not": node}`` or a
  trigger with the keys ``field``, ``op`` and (only where the op takes one) ``value``; any other
  key is rejected, so a misspelt key never silently changes a rule. ``is_set``/``is_not_set``
  accept a missing or null ``value``.
* Values must have the field's type: text for ``text``, a finite number (not a boolean) for
  ``number``, a boolean for ``boolean``, a timestamp for ``date``, an option id for selects.
  When the type is unknown (``FieldSpec.value_type`` None) the value's own JSON type decides.
* Option ids of a select field with known options must be among them (folded); an unknown option
  is ``invalid`` (``unknown_reference`` is kept to properties, questions and groups).
* Lists (``in``, ``not_in``, ``has_*``, ``email_domain``) are non-empty, hold at most
  ``MAX_LIST_ITEMS`` items, all of one kind; ``between`` is ``[low, high]`` with low ≤ high.
* ``contains``/``not_contains``/``starts_with``/``ends_with`` need a non-empty text.
* ``email_domain`` domains are dot-separated non-empty labels without ``@`` or white space.
* Durations are ``{"minutes"|"hours"|"days": n}`` with exactly one key and ``n`` a finite
  number ≥ 0 (fractions allowed), at most ``MAX_DURATION``.
* Depth counts every node on a path (a bare trigger has depth 1).
* ``is_set``/``is_not_set`` on ``groups`` are ``invalid``: they would read every group, the new
  one and those created after it included, so memberships could depend on themselves (a cycle;
  a group may only name groups that exist before it). ``has_any``/``has_none`` name the groups.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from smartgroups.core.conditions.model import (
    ALL_OPS,
    MAX_DEPTH,
    MAX_LIST_ITEMS,
    MAX_TEXT_CHARS,
    MAX_TRIGGERS,
    OPS_BY_TYPE,
    PRESENCE_OPS,
    TIME_OPS,
    All,
    AnyOf,
    Condition,
    Not,
    Trigger,
)
from smartgroups.core.fields import PROFILE_FIELDS, FieldSchema, FieldSpec
from smartgroups.core.ids import is_id
from smartgroups.core.values import ValueType, fold, parse_instant
from smartgroups.errors import RuleError

MAX_DURATION = timedelta(days=36_525)
"""Longest duration of a time-relative op (about a century)."""

_DOMAIN = re.compile(r"[^\s@.]+(?:\.[^\s@.]+)*")
_DURATION_UNITS = ("minutes", "hours", "days")
_TRIGGER_KEYS = frozenset(("field", "op", "value"))
_TEXT_OPS = frozenset(("contains", "not_contains", "starts_with", "ends_with"))
_ORDER_OPS = frozenset(("gt", "gte", "lt", "lte"))

Number = int | float
Scalar = str | int | float | bool | datetime


def parse_conditions(raw: object, schema: FieldSchema) -> Condition:
    """The validated, normalised tree of the wire conditions ``raw``; raises ``RuleError``."""
    parser = _Parser(schema)
    return parser.node(raw, "", 1)


def _fail(path: str, why: str, code: str = "invalid") -> RuleError:
    return RuleError(code, f"{path or '/'}: {why}")


def _show(value: object) -> str:
    """A short quotation of a rejected value for a message."""
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


@dataclass(slots=True)
class _Parser:
    schema: FieldSchema
    triggers: int = 0

    def node(self, raw: object, path: str, depth: int) -> Condition:
        if depth > MAX_DEPTH:
            raise _fail(path, f"conditions nest deeper than {MAX_DEPTH} levels")
        if not isinstance(raw, dict):
            raise _fail(path, "a condition must be an object")
        for key in ("all", "any", "not"):
            if key in raw:
                if len(raw) != 1:
                    others = ", ".join(sorted(str(k) for k in raw if k != key))
                    raise _fail(path, f"'{key}' cannot be combined with other keys ({others})")
                return self.combinator(key, raw[key], f"{path}/{key}", depth)
        return self.trigger(raw, path)

    def combinator(self, key: str, raw: object, path: str, depth: int) -> Condition:
        if key == "not":
            return Not(self.node(raw, path, depth + 1))
        items = _list(raw, path, allow_empty=True)
        children = tuple(self.node(item, f"{path}/{i}", depth + 1) for i, item in enumerate(items))
        return All(children) if key == "all" else AnyOf(children)

    def trigger(self, raw: dict[object, object], path: str) -> Trigger:
        unknown = sorted(str(key) for key in raw if key not in _TRIGGER_KEYS)
        if unknown:
            raise _fail(path, f"unknown key(s) {', '.join(map(_show, unknown))}")
        self.triggers += 1
        if self.triggers > MAX_TRIGGERS:
            raise _fail(path, f"more than {MAX_TRIGGERS} triggers")
        if "field" not in raw:
            raise _fail(path, "expected 'all', 'any', 'not' or a trigger with a 'field'")
        if "op" not in raw:
            raise _fail(path, "a trigger needs an 'op'")
        field, spec = self.field(raw["field"], f"{path}/field")
        op = raw["op"]
        if not isinstance(op, str) or op not in ALL_OPS:
            raise _fail(f"{path}/op", f"unknown op {_show(op)}")
        vtype = spec.value_type
        allowed = OPS_BY_TYPE.get(vtype, frozenset()) if vtype is not None else ALL_OPS
        if op not in PRESENCE_OPS and op not in allowed:
            raise _fail(f"{path}/op", f"op '{op}' does not apply to {vtype} field '{field}'")
        value_path = f"{path}/value"
        if op in PRESENCE_OPS and field == "groups":
            raise _fail(
                f"{path}/op",
                f"op '{op}' cannot read 'groups': it would depend on every group, this one "
                "included; name the groups with has_any or has_none",
            )
        if op in PRESENCE_OPS:
            if raw.get("value") is not None:
                raise _fail(value_path, f"op '{op}' takes no value")
            return Trigger(field, op, None, vtype)
        if "value" not in raw:
            raise _fail(value_path, f"op '{op}' needs a value")
        value = _Value(field, spec, value_path, self.schema).parse(op, raw["value"])
        return Trigger(field, op, value, vtype)

    def field(self, raw: object, path: str) -> tuple[str, FieldSpec]:
        if not isinstance(raw, str):
            raise _fail(path, "the field must be a text")
        builtin = PROFILE_FIELDS.get(raw)
        if builtin is not None:
            return raw, builtin
        source, _, ident = raw.partition(".")
        kinds = {"property": "property", "answer": "question"}
        if source not in kinds or not is_id(ident):
            raise _fail(path, f"unknown field {_show(raw)}")
        spec = self.schema.resolve(raw)
        if spec is None:
            raise _fail(path, f"{kinds[source]} {_show(ident)} is not defined", "unknown_reference")
        return raw, spec


@dataclass(frozen=True, slots=True)
class _Value:
    """Parses the value of one trigger on a field of the given spec."""

    field: str
    spec: FieldSpec
    path: str
    schema: FieldSchema

    def parse(self, op: str, raw: object) -> object:
        if op in ("eq", "neq"):
            return self.scalar(raw, self.path)
        if op in ("in", "not_in"):
            items = _list(raw, self.path, allow_empty=False)
            values = [self.scalar(item, f"{self.path}/{i}") for i, item in enumerate(items)]
            _same_kind(values, self.path)
            return frozenset(values)
        if op in _TEXT_OPS:
            text = _text(raw, self.path)
            if not text:
                raise _fail(self.path, f"op '{op}' needs a non-empty text")
            return fold(text)
        if op == "email_domain":
            return frozenset(self.each(raw, _domain))
        if op in _ORDER_OPS:
            return self.ordered(raw, self.path)
        if op == "between":
            return self.between(raw)
        if op in TIME_OPS:
            return _duration(raw, self.path)
        return frozenset(self.each(raw, self.member_option))

    def each(self, raw: object, item: Callable[[object, str], str]) -> list[str]:
        items = _list(raw, self.path, allow_empty=False)
        return [item(value, f"{self.path}/{i}") for i, value in enumerate(items)]

    def scalar(self, raw: object, path: str) -> Scalar:
        vtype: ValueType | None = self.spec.value_type
        if vtype == "text":
            return fold(_text(raw, path))
        if vtype == "single_select":
            return self.option(raw, path)
        if vtype == "number":
            return _number(raw, path)
        if vtype == "boolean":
            if not isinstance(raw, bool):
                raise _fail(path, "expected true or false")
            return raw
        if vtype == "date":
            return _instant(raw, path)
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str):
            return fold(_text(raw, path))
        if isinstance(raw, int | float):
            return _number(raw, path)
        raise _fail(path, "expected a text, a number or a boolean")

    def ordered(self, raw: object, path: str) -> Number | datetime:
        if self.spec.value_type == "number":
            return _number(raw, path)
        if self.spec.value_type == "date" or isinstance(raw, str):
            return _instant(raw, path)
        if isinstance(raw, int | float) and not isinstance(raw, bool):
            return _number(raw, path)
        raise _fail(path, "expected a number or a timestamp")

    def between(self, raw: object) -> tuple[Number, Number] | tuple[datetime, datetime]:
        if not isinstance(raw, list) or len(raw) != 2:
            raise _fail(self.path, "between needs [low, high]")
        low = self.ordered(raw[0], f"{self.path}/0")
        high = self.ordered(raw[1], f"{self.path}/1")
        if isinstance(low, datetime) and isinstance(high, datetime):
            if low > high:
                raise _fail(self.path, "low must not be above high")
            return (low, high)
        if isinstance(low, datetime) or isinstance(high, datetime):
            raise _fail(self.path, "low and high must both be numbers or both timestamps")
        if low > high:
            raise _fail(self.path, "low must not be above high")
        return (low, high)

    def option(self, raw: object, path: str) -> str:
        option = fold(_text(raw, path))
        options = self.spec.options
        if options is not None and option not in options:
            raise _fail(path, f"{_show(option)} is not an option of '{self.field}'")
        return option

    def member_option(self, raw: object, path: str) -> str:
        if self.field != "groups":
            return self.option(raw, path)
        group_id = _text(raw, path)
        if not self.schema.has_group(group_id):
            raise _fail(path, f"group {_show(group_id)} does not exist", "unknown_reference")
        return group_id


def _list(raw: object, path: str, *, allow_empty: bool) -> list[object]:
    if not isinstance(raw, list):
        raise _fail(path, "expected a list")
    if not raw and not allow_empty:
        raise _fail(path, "the list must not be empty")
    if len(raw) > MAX_LIST_ITEMS:
        raise _fail(path, f"the list has more than {MAX_LIST_ITEMS} items")
    return raw


def _same_kind(values: list[Scalar], path: str) -> None:
    kinds = {_kind(value) for value in values}
    if len(kinds) > 1:
        raise _fail(path, "the items must all be of one type")


def _kind(value: Scalar) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def _text(raw: object, path: str) -> str:
    if not isinstance(raw, str):
        raise _fail(path, "expected a text")
    if len(raw) > MAX_TEXT_CHARS:
        raise _fail(path, f"the text is longer than {MAX_TEXT_CHARS} characters")
    return raw


def _number(raw: object, path: str) -> Number:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise _fail(path, "expected a number")
    if isinstance(raw, float) and not math.isfinite(raw):
        raise _fail(path, "the number must be finite")
    return raw


def _instant(raw: object, path: str) -> datetime:
    instant = parse_instant(_text(raw, path))
    if instant is None:
        raise _fail(path, "expected an RFC 3339 timestamp or a YYYY-MM-DD date")
    return instant


def _domain(raw: object, path: str) -> str:
    domain = fold(_text(raw, path))
    if _DOMAIN.fullmatch(domain) is None:
        raise _fail(path, f"{_show(domain)} is not a domain")
    return domain


def _duration(raw: object, path: str) -> timedelta:
    if not isinstance(raw, dict) or len(raw) != 1:
        raise _fail(path, 'a duration is {"minutes"|"hours"|"days": n}')
    ((unit, amount),) = raw.items()
    if unit not in _DURATION_UNITS:
        raise _fail(path, f"unknown duration unit {_show(unit)}")
    amount_path = f"{path}/{unit}"
    amount = _number(amount, amount_path)
    if amount < 0:
        raise _fail(amount_path, "the duration must not be negative")
    if amount > MAX_DURATION / timedelta(**{unit: 1}):
        raise _fail(amount_path, f"the duration exceeds {MAX_DURATION.days} days")
    return timedelta(**{unit: amount})
