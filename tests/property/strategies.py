"""Hypothesis strategies for conditions, members and instants, and a reference evaluator.

The reference evaluator reads *wire* conditions directly with deliberately plain code, written
from the contract's section 5 table, so the compiled evaluator can be checked against it.
"""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

from smartgroups.core.fields import FieldSpec, StaticFieldSchema
from smartgroups.core.snapshot import MemberSnapshot
from smartgroups.core.values import parse_instant

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)

OPTIONS = ("gold", "Silver", "straße", "İstanbul", "cafe\u0301")
STATUSES = ("accepted", "invited", "pending", "deactivated", "unsubscribed", "declined", "rejected")
GROUP_IDS = ("g1", "g2", "G1")

# field -> its type (None: unknown), as the schema below declares it
TYPES: dict[str, str | None] = {
    "profile.email": "text",
    "profile.first_name": "text",
    "profile.status": "single_select",
    "profile.tags": "multi_select",
    "profile.last_active_at": "date",
    "property.t": "text",
    "property.n": "number",
    "property.b": "boolean",
    "property.d": "date",
    "property.s": "single_select",
    "property.m": "multi_select",
    "property.x": None,
    "answer.qt": "text",
    "answer.qs": "single_select",
    "groups": "multi_select",
}

SCHEMA = StaticFieldSchema(
    properties={
        "t": FieldSpec("text"),
        "n": FieldSpec("number"),
        "b": FieldSpec("boolean"),
        "d": FieldSpec("date"),
        "s": FieldSpec.define("single_select", OPTIONS),
        "m": FieldSpec.define("multi_select", OPTIONS),
        "x": FieldSpec(None),
    },
    questions={"qt": FieldSpec("text"), "qs": FieldSpec("single_select")},
    groups=frozenset(GROUP_IDS),
)

# The contract's table: ops by type (is_set / is_not_set fit every type).
OPS = {
    "text": [
        "eq",
        "neq",
        "in",
        "not_in",
        "contains",
        "not_contains",
        "starts_with",
        "ends_with",
        "email_domain",
    ],
    "number": ["eq", "neq", "in", "not_in", "gt", "gte", "lt", "lte", "between"],
    "boolean": ["eq", "neq"],
    "date": [
        "eq",
        "neq",
        "gt",
        "gte",
        "lt",
        "lte",
        "between",
        "within_last",
        "older_than",
        "within_next",
    ],
    "single_select": ["eq", "neq", "in", "not_in"],
    "multi_select": ["has_any", "has_all", "has_none"],
}
ALL_OPS = sorted({op for ops in OPS.values() for op in ops})
NEGATIONS = {
    "neq": "eq",
    "not_in": "in",
    "not_contains": "contains",
    "has_none": "has_any",
    "is_not_set": "is_set",
}

TEXTS = (
    "gold",
    "GOLD",
    "Silver",
    "silver",
    "straße",
    "STRASSE",
    "strasse",
    "İstanbul",
    "i̇stanbul",
    "istanbul",
    "cafe\u0301",
    "café",
    "CAFÉ",
    "a@acme.com",
    "b@x.ACME.com",
    "c@notacme.com",
    "d@acme.com.evil",
    "@acme.com",
    "acme.com",
    "",
    " ",
    "x",
    "accepted",
    "ACCEPTED",
    "Pending",
    "g1",
)
NUMBERS = (0, 1, 1.0, -1, 2.5, 3, 10**20, -0.5)
OFFSETS = tuple(
    timedelta(**unit)
    for unit in (
        {"days": -3},
        {"days": -1},
        {"hours": -1},
        {"microseconds": -1},
        {},
        {"microseconds": 1},
        {"hours": 1},
        {"days": 1},
        {"days": 3},
    )
)


def _formats(instant: datetime) -> list[str]:
    utc = instant.astimezone(UTC)
    plus2 = instant.astimezone(timezone(timedelta(hours=2)))
    return [
        utc.isoformat().replace("+00:00", "Z"),
        plus2.isoformat(),
        utc.isoformat().replace("+00:00", "z").replace("T", "t"),
    ]


INSTANT_TEXTS = (
    *(text for offset in OFFSETS for text in _formats(NOW + offset)),
    "2026-11-23",
    "2026-11-22",
    "2026-11-24",
)
WRONG = (None, [], ["gold"], ["GOLD", "x"], [1], {"a": 1}, "not a date", "2026-11-23T12:00:00")
SCALARS = TEXTS + NUMBERS + (True, False) + INSTANT_TEXTS + STATUSES
LIST_ITEMS = (*OPTIONS, "GOLD", "SILVER", "STRASSE", "vip", "VIP", "g1", "G1", "g2")

DURATIONS = st.builds(
    lambda unit, n: {unit: n},
    st.sampled_from(("minutes", "hours", "days")),
    st.sampled_from((0, 1, 2, 3, 60, 1.5, 0.5)),
)


def _option_variants() -> st.SearchStrategy[str]:
    return st.sampled_from(OPTIONS).flatmap(
        lambda option: st.sampled_from((option, option.upper(), option.casefold()))
    )


def _any_value() -> st.SearchStrategy[object]:
    return st.one_of(
        st.sampled_from(SCALARS),
        st.sampled_from(WRONG),
        st.lists(st.sampled_from(LIST_ITEMS), max_size=3),
        st.lists(st.one_of(st.sampled_from(LIST_ITEMS), st.integers(0, 2)), max_size=3),
    )


def member_values(field: str) -> st.SearchStrategy[object]:
    """Values for ``field``: mostly of its type (near the triggers' values), else anything."""
    fitting = {
        "text": st.sampled_from(TEXTS),
        "single_select": st.one_of(_option_variants(), st.sampled_from(STATUSES + TEXTS)),
        "number": st.sampled_from(NUMBERS),
        "boolean": st.booleans(),
        "date": st.sampled_from(INSTANT_TEXTS),
        "multi_select": st.lists(st.sampled_from(LIST_ITEMS), max_size=3),
    }.get(TYPES[field] or "", _any_value())
    return st.one_of(fitting, fitting, fitting, _any_value())


def _optional(prefix: str) -> st.SearchStrategy[dict[str, object]]:
    """A mapping of the ``prefix`` fields, each present three times in four."""
    keys = {f.removeprefix(prefix): f for f in TYPES if f.startswith(prefix)}
    entries = [
        st.tuples(st.just(key), member_values(field), st.sampled_from((True, True, True, False)))
        for key, field in keys.items()
    ]
    return st.tuples(*entries).map(
        lambda drawn: {key: value for key, value, present in drawn if present}
    )


members = st.builds(
    MemberSnapshot,
    profile=_optional("profile."),
    properties=_optional("property."),
    answers=_optional("answer."),
    groups=st.frozensets(st.sampled_from((*GROUP_IDS, "g3"))),
)

instants = st.one_of(
    st.sampled_from(OFFSETS).map(lambda offset: NOW + offset),
    st.timedeltas(timedelta(days=-5), timedelta(days=5)).map(lambda offset: NOW + offset),
)


def _instant_text() -> st.SearchStrategy[str]:
    return st.sampled_from(INSTANT_TEXTS)


def _ordered_pair(items: st.SearchStrategy[Any], key: Any) -> st.SearchStrategy[list[Any]]:
    return st.lists(items, min_size=2, max_size=2).map(lambda pair: sorted(pair, key=key))


def _scalar_values(vtype: str | None, field: str) -> st.SearchStrategy[Any]:
    if vtype == "text" or (vtype == "single_select" and field == "answer.qs"):
        return st.sampled_from(TEXTS)
    if vtype == "single_select":
        return st.sampled_from(STATUSES) if field == "profile.status" else _option_variants()
    if vtype == "number":
        return st.sampled_from(NUMBERS)
    if vtype == "boolean":
        return st.booleans()
    if vtype == "date":
        return _instant_text()
    return st.one_of(st.sampled_from(TEXTS), st.sampled_from(NUMBERS), st.booleans())


def trigger_values(field: str, op: str) -> st.SearchStrategy[Any]:
    """Valid values of ``op`` on ``field``."""
    vtype = TYPES[field]
    if op in ("eq", "neq"):
        return _scalar_values(vtype, field)
    if op in ("in", "not_in"):
        if vtype is None:
            return st.sampled_from((TEXTS, NUMBERS, (True, False))).flatmap(
                lambda pool: st.lists(st.sampled_from(pool), min_size=1, max_size=3)
            )
        return st.lists(_scalar_values(vtype, field), min_size=1, max_size=3)
    if op in ("contains", "not_contains", "starts_with", "ends_with"):
        return st.sampled_from([text for text in TEXTS if text])
    if op == "email_domain":
        domains = ("acme.com", "ACME.com", "x.acme.com", "com", "straße.de")
        return st.lists(st.sampled_from(domains), min_size=1, max_size=2)
    if op in ("gt", "gte", "lt", "lte"):
        if vtype == "number":
            return st.sampled_from(NUMBERS)
        if vtype == "date":
            return _instant_text()
        return st.one_of(st.sampled_from(NUMBERS), _instant_text())
    if op == "between":
        numbers = _ordered_pair(st.sampled_from(NUMBERS), key=float)
        dates = _ordered_pair(_instant_text(), key=parse_instant)
        if vtype == "number":
            return numbers
        return dates if vtype == "date" else st.one_of(numbers, dates)
    if op in ("within_last", "older_than", "within_next"):
        return DURATIONS
    if field == "groups":
        return st.lists(st.sampled_from(GROUP_IDS), min_size=1, max_size=3)
    if field == "profile.tags" or vtype is None:
        return st.lists(st.sampled_from(LIST_ITEMS), min_size=1, max_size=3)
    return st.lists(_option_variants(), min_size=1, max_size=3)


def ops_for(field: str) -> list[str]:
    """The ops allowed on ``field`` (all of them when its type is unknown; ``groups`` takes no
    presence op: it would read every group, the new one included)."""
    vtype = TYPES[field]
    ops = ALL_OPS if vtype is None else OPS[vtype]
    return [*([] if field == "groups" else ["is_set", "is_not_set"]), *ops]


def _trigger(field: str, op: str) -> st.SearchStrategy[dict[str, Any]]:
    if op in ("is_set", "is_not_set"):
        return st.just({"field": field, "op": op})
    return trigger_values(field, op).map(lambda value: {"field": field, "op": op, "value": value})


wire_triggers = st.sampled_from(sorted(TYPES)).flatmap(
    lambda field: st.sampled_from(ops_for(field)).flatmap(lambda op: _trigger(field, op))
)

wire_conditions = st.recursive(
    wire_triggers,
    lambda children: st.one_of(
        st.lists(children, max_size=4).map(lambda items: {"all": items}),
        st.lists(children, max_size=4).map(lambda items: {"any": items}),
        children.map(lambda child: {"not": child}),
    ),
    max_leaves=10,
)


# ---------------------------------------------------------------- the reference evaluator

MISSING = object()


def ref_fold(text: str) -> str:
    """Canonical caseless matching (Unicode D145), kept in NFC."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFD", text).casefold())


def _lookup(member: MemberSnapshot, field: str) -> object:
    if field == "groups":
        return member.groups
    source, _, key = field.partition(".")
    mapping = {"profile": member.profile, "property": member.properties, "answer": member.answers}
    return mapping[source].get(key, MISSING)


def _is_number(value: object) -> bool:
    return type(value) in (int, float)


def _as(kind: str, value: object) -> object:
    """``value`` read as ``kind`` (text, number, boolean, instant), or MISSING if it is not one."""
    if kind == "text" and isinstance(value, str):
        return ref_fold(value)
    if kind == "number" and _is_number(value):
        return value
    if kind == "boolean" and isinstance(value, bool):
        return value
    if kind == "instant" and isinstance(value, str):
        instant = parse_instant(value)
        return MISSING if instant is None else instant
    return MISSING


def _kind(vtype: str | None, op: str, sample: object) -> str:
    """How a trigger compares: from the field's type, or the value's JSON type when unknown."""
    by_type = {
        "text": "text",
        "single_select": "text",
        "number": "number",
        "boolean": "boolean",
        "date": "instant",
    }
    if vtype in by_type:
        return by_type[vtype]
    if isinstance(sample, bool):
        return "boolean"
    if _is_number(sample):
        return "number"
    if op in ("gt", "gte", "lt", "lte", "between"):
        return "instant"
    return "text"


def _string_list(value: object) -> list[str] | None:
    if isinstance(value, list | frozenset) and all(isinstance(item, str) for item in value):
        return list(value)
    return None


def _is_set(vtype: str | None, field: str, value: object) -> bool:
    if value is MISSING or value is None:
        return False
    if field == "groups" or vtype == "multi_select":
        items = _string_list(value)
        return bool(items)
    if vtype is None:
        return value != []
    return _as(_kind(vtype, "eq", None), value) is not MISSING


def _email_domain(email: str, domains: list[str]) -> bool:
    if "@" not in email:
        return False
    local, domain = email.rsplit("@", 1)
    return local != "" and any(domain == d or domain.endswith("." + d) for d in domains)


def ref_evaluate(raw: Any, member: MemberSnapshot, now: datetime) -> bool:
    """The verdict of wire conditions ``raw``, computed the plain way."""
    if "all" in raw:
        return all(ref_evaluate(child, member, now) for child in raw["all"])
    if "any" in raw:
        return any(ref_evaluate(child, member, now) for child in raw["any"])
    if "not" in raw:
        return not ref_evaluate(raw["not"], member, now)
    field, op, target = raw["field"], raw["op"], raw.get("value")
    if op in NEGATIONS:
        return not ref_evaluate({**raw, "op": NEGATIONS[op]}, member, now)
    vtype = TYPES[field]
    value = _lookup(member, field)
    if op == "is_set":
        return _is_set(vtype, field, value)
    if op in ("has_any", "has_all"):
        items = _string_list(value)
        if items is None:
            return False
        if field == "groups":
            have, want = set(items), set(target)
        else:
            have, want = {ref_fold(i) for i in items}, {ref_fold(t) for t in target}
        return bool(have & want) if op == "has_any" else want <= have
    if op in ("within_last", "older_than", "within_next"):
        instant = _as("instant", value)
        if instant is MISSING:
            return False
        ((unit, n),) = target.items()
        span = timedelta(**{unit: n})
        if op == "within_last":
            return instant >= now - span
        if op == "older_than":
            return instant < now - span
        return now <= instant <= now + span
    sample = target[0] if isinstance(target, list) else target
    kind = _kind(vtype, op, sample)
    mine = _as(kind, value)
    if mine is MISSING:
        return False
    if op == "in":
        return any(mine == _as(kind, item) for item in target)
    if op == "between":
        low, high = (_as(kind, item) for item in target)
        return low <= mine <= high
    if op == "email_domain":
        return _email_domain(mine, [ref_fold(d) for d in target])
    theirs = _as(kind, target)
    return {
        "eq": lambda: mine == theirs,
        "contains": lambda: theirs in mine,
        "starts_with": lambda: mine.startswith(theirs),
        "ends_with": lambda: mine.endswith(theirs),
        "gt": lambda: mine > theirs,
        "gte": lambda: mine >= theirs,
        "lt": lambda: mine < theirs,
        "lte": lambda: mine <= theirs,
    }[op]()
