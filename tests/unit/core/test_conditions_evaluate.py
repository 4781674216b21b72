"""Evaluation by example: every op on every type, wrong types, missing values, complements."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime
from typing import Any

import pytest

from smartgroups.core.conditions import compile_condition, evaluate, parse_conditions
from smartgroups.core.fields import FieldSpec, StaticFieldSchema
from smartgroups.core.snapshot import MemberSnapshot

SCHEMA = StaticFieldSchema(
    properties={
        "plan": FieldSpec.define("single_select", ["Gold", "silver"]),
        "skills": FieldSpec.define("multi_select", ["python", "Go"]),
        "n": FieldSpec("number"),
        "ok": FieldSpec("boolean"),
        "due": FieldSpec("date"),
        "bio": FieldSpec("text"),
        "raw": FieldSpec(None),
    },
    questions={"q1": FieldSpec("text")},
    groups={"vip", "staff"},
)
NOW = datetime(2026, 11, 23, tzinfo=UTC)
MISSING = object()
NEGATIVE = {
    "eq": "neq",
    "in": "not_in",
    "contains": "not_contains",
    "has_any": "has_none",
    "is_set": "is_not_set",
}


def member(field: str, value: object) -> MemberSnapshot:
    """A member whose only value is ``value`` at ``field`` (none at all for MISSING)."""
    if field == "groups":
        assert isinstance(value, frozenset)
        return MemberSnapshot({}, {}, {}, value)
    source, _, key = field.partition(".")
    values = {} if value is MISSING else {key: value}
    return MemberSnapshot(
        values if source == "profile" else {},
        values if source == "property" else {},
        values if source == "answer" else {},
        frozenset(),
    )


def verdict(field: str, op: str, target: Any, value: object, now: datetime = NOW) -> bool:
    raw: dict[str, Any] = {"field": field, "op": op}
    if target is not MISSING:
        raw["value"] = target
    return evaluate(parse_conditions(raw, SCHEMA), member(field, value), now)


CASES = [
    # (field, op, trigger value, member value, verdict)
    # text
    ("profile.first_name", "eq", "Gold", "gOLD", True),
    ("profile.first_name", "eq", "straße", "STRASSE", True),
    ("profile.first_name", "eq", "café", "CAFE\u0301", True),
    ("profile.first_name", "eq", "Gold", "gold ", False),
    ("profile.first_name", "eq", "Gold", 1, False),
    ("profile.first_name", "eq", "Gold", ["gold"], False),
    ("profile.first_name", "eq", "Gold", None, False),
    ("profile.first_name", "eq", "", "", True),
    ("property.bio", "in", ["a", "Gold"], "GOLD", True),
    ("property.bio", "in", ["a", "Gold"], "b", False),
    ("property.bio", "in", ["1"], 1, False),
    ("property.bio", "contains", "ACME", "team@acme.com", True),
    ("property.bio", "contains", "ss", "Straße", True),
    ("property.bio", "contains", "acme", "x", False),
    ("property.bio", "contains", "5", 5, False),
    ("property.bio", "contains", "e", "café", False),
    ("answer.q1", "starts_with", "Dr", "dr. Who", True),
    ("answer.q1", "starts_with", "Mr", "dr. Who", False),
    ("answer.q1", "ends_with", "SON", "Jackson", True),
    ("answer.q1", "ends_with", "SON", ["Jackson"], False),
    ("profile.email", "email_domain", ["acme.com"], "a@acme.com", True),
    ("profile.email", "email_domain", ["acme.com"], "A@X.Eu.ACME.com", True),
    ("profile.email", "email_domain", ["x.acme.com"], "a@acme.com", False),
    ("profile.email", "email_domain", ["acme.com"], "a@notacme.com", False),
    ("profile.email", "email_domain", ["acme.com"], "a@acme.com.evil", False),
    ("profile.email", "email_domain", ["acme.com"], "acme.com", False),
    ("profile.email", "email_domain", ["acme.com"], "@acme.com", False),
    ("profile.email", "email_domain", ["other.org", "ACME.COM"], "a@Acme.Com", True),
    ("profile.email", "email_domain", ["straße.de"], "a@STRASSE.de", True),
    # number
    ("property.n", "eq", 3, 3.0, True),
    ("property.n", "eq", 3, "3", False),
    ("property.n", "eq", 1, True, False),
    ("property.n", "eq", 0, False, False),
    ("property.n", "in", [1, 2], 2, True),
    ("property.n", "in", [1, 2], True, False),
    ("property.n", "in", [1, 2], 3, False),
    ("property.n", "gt", 2, 2.5, True),
    ("property.n", "gt", 2, 2, False),
    ("property.n", "gte", 2, 2, True),
    ("property.n", "gte", 2, 1.999, False),
    ("property.n", "lt", 2, 1, True),
    ("property.n", "lt", 2, 2, False),
    ("property.n", "lte", 2, 2.0, True),
    ("property.n", "lte", 2, "1", False),
    ("property.n", "gt", 2, True, False),
    ("property.n", "gt", 10**20, 10**20 + 1, True),
    ("property.n", "gt", 1, float("nan"), False),
    ("property.n", "between", [1, 2], 1, True),
    ("property.n", "between", [1, 2], 2, True),
    ("property.n", "between", [1, 2], 2.0001, False),
    ("property.n", "between", [1, 2], "1.5", False),
    ("property.n", "between", [1.5, 1.5], 1.5, True),
    # boolean
    ("property.ok", "eq", True, True, True),
    ("property.ok", "eq", True, 1, False),
    ("property.ok", "eq", True, "true", False),
    ("property.ok", "eq", False, False, True),
    ("property.ok", "eq", False, 0, False),
    ("property.ok", "eq", False, None, False),
    ("property.ok", "eq", False, MISSING, False),
    # date
    ("property.due", "eq", "2026-11-23", "2026-11-23T01:00:00+01:00", True),
    ("property.due", "eq", "2026-11-23", "2026-11-23T00:00:00.000001Z", False),
    ("property.due", "eq", "2026-11-23", "garbage", False),
    ("property.due", "eq", "2026-11-23", 0, False),
    ("property.due", "eq", "2026-11-23", "2026-11-23T00:00:00", False),
    ("property.due", "gt", "2026-11-23", "2026-11-23T00:00:01Z", True),
    ("property.due", "gt", "2026-11-23", "2026-11-23T00:30:00+01:00", False),
    ("property.due", "gte", "2026-11-23", "2026-11-23T00:00:00Z", True),
    ("property.due", "lt", "2026-11-23", "2026-11-22T23:59:59.999999Z", True),
    ("property.due", "lt", "2026-11-23", "2026-11-23", False),
    ("property.due", "lte", "2026-11-23", "2026-11-23", True),
    ("property.due", "lte", "2026-11-23", 20261123, False),
    ("property.due", "between", ["2026-11-01", "2026-11-30"], "2026-11-15T10:00:00-05:00", True),
    ("property.due", "between", ["2026-11-01", "2026-11-30"], "2026-11-30", True),
    ("property.due", "between", ["2026-11-01", "2026-11-30"], "2026-12-01", False),
    ("property.due", "within_last", {"days": 7}, "2026-11-16T00:00:00Z", True),
    ("property.due", "within_last", {"days": 7}, "2026-11-15T23:59:59.999999Z", False),
    ("property.due", "within_last", {"days": 7}, "2026-11-30", True),
    ("property.due", "within_last", {"days": 7}, "bad", False),
    ("property.due", "within_last", {"minutes": 0}, "2026-11-23", True),
    ("property.due", "older_than", {"days": 7}, "2026-11-15T23:59:59Z", True),
    ("property.due", "older_than", {"days": 7}, "2026-11-16", False),
    ("property.due", "older_than", {"days": 7}, None, False),
    ("property.due", "older_than", {"hours": 0.5}, "2026-11-22T23:29:59Z", True),
    ("property.due", "within_next", {"hours": 2}, "2026-11-23T02:00:00Z", True),
    ("property.due", "within_next", {"hours": 2}, "2026-11-23T00:00:00Z", True),
    ("property.due", "within_next", {"hours": 2}, "2026-11-22T23:59:59Z", False),
    ("property.due", "within_next", {"hours": 2}, "2026-11-23T02:00:00.000001Z", False),
    ("profile.last_active_at", "within_last", {"hours": 1}, "2026-11-22T23:30:00Z", True),
    # single_select
    ("property.plan", "eq", "gold", "GOLD", True),
    ("property.plan", "eq", "gold", "silver", False),
    ("property.plan", "eq", "gold", ["gold"], False),
    ("property.plan", "in", ["gold", "silver"], "Silver", True),
    ("property.plan", "in", ["gold"], "bronze", False),
    ("profile.status", "eq", "accepted", "ACCEPTED", True),
    ("profile.status", "in", ["invited", "pending"], "accepted", False),
    # multi_select
    ("property.skills", "has_any", ["python"], ["Python", "x"], True),
    ("property.skills", "has_any", ["python"], [], False),
    ("property.skills", "has_any", ["python"], "python", False),
    ("property.skills", "has_any", ["python"], ["python", 1], False),
    ("property.skills", "has_all", ["python", "go"], ["GO", "python"], True),
    ("property.skills", "has_all", ["python", "go"], ["go"], False),
    ("property.skills", "has_all", ["python"], None, False),
    ("profile.tags", "has_any", ["VIP"], ["vip"], True),
    ("profile.tags", "has_all", ["VIP", "straße"], ["STRASSE", "vip", "x"], True),
    # groups: ids compare exactly
    ("groups", "has_any", ["vip"], frozenset({"vip"}), True),
    ("groups", "has_any", ["vip"], frozenset({"VIP"}), False),
    ("groups", "has_any", ["vip", "staff"], frozenset({"staff", "x"}), True),
    ("groups", "has_all", ["vip", "staff"], frozenset({"vip"}), False),
    ("groups", "has_all", ["vip", "staff"], frozenset({"vip", "staff", "x"}), True),
    # is_set: present, not null, of the field's type; a list non-empty
    ("property.bio", "is_set", MISSING, "", True),
    ("property.bio", "is_set", MISSING, "x", True),
    ("property.bio", "is_set", MISSING, None, False),
    ("property.bio", "is_set", MISSING, MISSING, False),
    ("property.bio", "is_set", MISSING, 1, False),
    ("property.bio", "is_set", MISSING, [], False),
    ("property.n", "is_set", MISSING, 0, True),
    ("property.n", "is_set", MISSING, "1", False),
    ("property.n", "is_set", MISSING, False, False),
    ("property.ok", "is_set", MISSING, False, True),
    ("property.due", "is_set", MISSING, "2026-11-23", True),
    ("property.due", "is_set", MISSING, "garbage", False),
    ("property.plan", "is_set", MISSING, "whatever", True),
    ("property.skills", "is_set", MISSING, ["a"], True),
    ("property.skills", "is_set", MISSING, [], False),
    ("property.skills", "is_set", MISSING, "a", False),
    ("property.raw", "is_set", MISSING, "", True),
    ("property.raw", "is_set", MISSING, 0, True),
    ("property.raw", "is_set", MISSING, [], False),
    ("property.raw", "is_set", MISSING, None, False),
    # unknown type: the trigger value's JSON type decides
    ("property.raw", "eq", "Gold", "GOLD", True),
    ("property.raw", "eq", 1, 1.0, True),
    ("property.raw", "eq", 1, True, False),
    ("property.raw", "eq", True, True, True),
    ("property.raw", "in", [True], 1, False),
    ("property.raw", "gt", "2026-11-22", "2026-11-23", True),
    ("property.raw", "gt", 1, "2", False),
    ("property.raw", "has_any", ["A"], ["a"], True),
    ("property.raw", "within_next", {"days": 1}, "2026-11-23T12:00:00Z", True),
]


@pytest.mark.parametrize(("field", "op", "target", "value", "expected"), CASES)
def test_every_op_on_every_type(field: str, op: str, target: Any, value: object, expected: bool):
    assert verdict(field, op, target, value) is expected
    if op in NEGATIVE:
        assert verdict(field, NEGATIVE[op], target, value) is not expected


TRIGGERS = [
    {"field": "property.bio", "op": "eq", "value": "x"},
    {"field": "property.bio", "op": "in", "value": ["x"]},
    {"field": "property.bio", "op": "contains", "value": "x"},
    {"field": "property.bio", "op": "starts_with", "value": "x"},
    {"field": "property.bio", "op": "ends_with", "value": "x"},
    {"field": "profile.email", "op": "email_domain", "value": ["x.com"]},
    {"field": "property.n", "op": "eq", "value": 1},
    {"field": "property.n", "op": "in", "value": [1]},
    {"field": "property.n", "op": "gt", "value": 1},
    {"field": "property.n", "op": "between", "value": [1, 2]},
    {"field": "property.ok", "op": "eq", "value": True},
    {"field": "property.due", "op": "eq", "value": "2026-11-23"},
    {"field": "property.due", "op": "lte", "value": "2026-11-23"},
    {"field": "property.due", "op": "between", "value": ["2026-01-01", "2026-12-31"]},
    {"field": "property.due", "op": "within_last", "value": {"days": 1}},
    {"field": "property.due", "op": "older_than", "value": {"days": 1}},
    {"field": "property.due", "op": "within_next", "value": {"days": 1}},
    {"field": "property.plan", "op": "eq", "value": "gold"},
    {"field": "property.plan", "op": "in", "value": ["gold"]},
    {"field": "property.skills", "op": "has_any", "value": ["go"]},
    {"field": "property.skills", "op": "has_all", "value": ["go"]},
    {"field": "property.bio", "op": "is_set"},
]
WRONG_VALUES = [MISSING, None, {"nested": ["x"]}, [["x"]], b"x", [1], object()]
ODD_VALUES = [
    *WRONG_VALUES,
    float("nan"),
    float("inf"),
    10**400,
    -0.0,
    "\udcff",
    "x" * 100_000,
    "x@" * 1000,
    ("x",),
    {"x"},
]


@pytest.mark.parametrize("raw", TRIGGERS, ids=lambda raw: f"{raw['field']}-{raw['op']}")
def test_missing_or_wrong_values_make_positive_ops_false(raw: dict[str, Any]):
    negated = {**raw, "op": NEGATIVE[raw["op"]]} if raw["op"] in NEGATIVE else None
    for value in WRONG_VALUES:
        snapshot = member(raw["field"], value)
        assert evaluate(parse_conditions(raw, SCHEMA), snapshot, NOW) is False
        if negated is not None:
            assert evaluate(parse_conditions(negated, SCHEMA), snapshot, NOW) is True


@pytest.mark.parametrize("raw", TRIGGERS, ids=lambda raw: f"{raw['field']}-{raw['op']}")
def test_evaluation_is_total_on_odd_values(raw: dict[str, Any]):
    cond = parse_conditions(raw, SCHEMA)
    for value in ODD_VALUES:
        assert evaluate(cond, member(raw["field"], value), NOW) in (True, False)


def test_nodes_combine_as_boolean_logic():
    yes = {"field": "property.n", "op": "eq", "value": 1}
    no = {"field": "property.n", "op": "eq", "value": 2}
    one = member("property.n", 1)

    def check(raw: object) -> bool:
        return evaluate(parse_conditions(raw, SCHEMA), one, NOW)

    assert check({"all": [yes, yes]}) is True
    assert check({"all": [yes, no]}) is False
    assert check({"any": [no, yes]}) is True
    assert check({"any": [no, no]}) is False
    assert check({"not": no}) is True
    assert check({"not": {"not": yes}}) is True
    assert check({"all": [yes]}) is True
    assert check({"any": [no]}) is False


def test_a_compiled_condition_is_reused_and_agrees_with_evaluate():
    cond = parse_conditions({"field": "property.n", "op": "gt", "value": 1}, SCHEMA)
    predicate = compile_condition(cond)
    assert compile_condition(cond) is predicate
    assert predicate(member("property.n", 2), NOW) is evaluate(cond, member("property.n", 2), NOW)


def test_a_compiled_condition_pickles_and_still_evaluates():
    cond = parse_conditions({"not": {"field": "property.n", "op": "gt", "value": 1}}, SCHEMA)
    two = member("property.n", 2)
    assert evaluate(cond, two, NOW) is False
    copy = pickle.loads(pickle.dumps(cond))
    assert copy == cond
    assert evaluate(copy, two, NOW) is False
