"""Validation of wire conditions: what is accepted, and where and why the rest is rejected."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from smartgroups.core.conditions import (
    MAX_DEPTH,
    MAX_LIST_ITEMS,
    MAX_TEXT_CHARS,
    MAX_TRIGGERS,
    All,
    AnyOf,
    Not,
    Trigger,
    evaluate,
    parse_conditions,
)
from smartgroups.core.fields import PROFILE_FIELDS, FieldSpec, StaticFieldSchema
from smartgroups.core.snapshot import MemberSnapshot
from smartgroups.errors import RuleError

SCHEMA = StaticFieldSchema(
    properties={
        "plan": FieldSpec.define("single_select", ["Gold", "silver"]),
        "skills": FieldSpec.define("multi_select", ["python", "Go"]),
        "n": FieldSpec("number"),
        "ok": FieldSpec("boolean"),
        "due": FieldSpec("date"),
        "bio": FieldSpec("text"),
        "free": FieldSpec("single_select"),
        "raw": FieldSpec(None),
    },
    questions={"q1": FieldSpec("text")},
    groups={"vip", "staff"},
)
EMPTY = MemberSnapshot({}, {}, {}, frozenset())
NOW = datetime(2026, 11, 23, tzinfo=UTC)


def trigger(field: str, op: str, *value: Any) -> dict[str, Any]:
    return {"field": field, "op": op, **({"value": value[0]} if value else {})}


def rejection(raw: object) -> RuleError:
    with pytest.raises(RuleError) as caught:
        parse_conditions(raw, SCHEMA)
    return caught.value


def test_the_community_form_parses_into_nodes_with_normalised_values():
    raw = {
        "any": [
            {
                "all": [
                    trigger("profile.email", "email_domain", ["Acme.COM"]),
                    trigger("property.plan", "in", ["GOLD"]),
                ]
            },
            {"all": [{"not": trigger("groups", "has_any", ["vip"])}]},
            {"all": [trigger("profile.last_active_at", "within_last", {"days": 30})]},
        ]
    }
    assert parse_conditions(raw, SCHEMA) == AnyOf(
        (
            All(
                (
                    Trigger("profile.email", "email_domain", frozenset({"acme.com"}), "text"),
                    Trigger("property.plan", "in", frozenset({"gold"}), "single_select"),
                )
            ),
            All((Not(Trigger("groups", "has_any", frozenset({"vip"}), "multi_select")),)),
            All((Trigger("profile.last_active_at", "within_last", timedelta(days=30), "date"),)),
        )
    )


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        (trigger("profile.first_name", "eq", "ÉVA"), "éva"),
        (trigger("property.n", "between", [1, 2.5]), (1, 2.5)),
        (trigger("property.due", "gte", "2026-11-23"), NOW),
        (trigger("property.due", "eq", "2026-11-23T02:00:00+02:00"), NOW),
        (trigger("property.ok", "eq", False), False),
        (trigger("property.n", "in", [1, 2, 2.0]), frozenset({1, 2})),
        (trigger("property.due", "older_than", {"hours": 1.5}), timedelta(minutes=90)),
        (trigger("property.due", "within_next", {"minutes": 0}), timedelta(0)),
        (trigger("groups", "has_all", ["vip", "staff"]), frozenset({"vip", "staff"})),
        (trigger("property.skills", "has_none", ["GO"]), frozenset({"go"})),
        (trigger("profile.tags", "has_any", ["Anything"]), frozenset({"anything"})),
        (trigger("property.free", "eq", "Any Option"), "any option"),
        (trigger("profile.status", "neq", "Accepted"), "accepted"),
        (trigger("property.raw", "eq", 3), 3),
        (trigger("property.raw", "gt", "2026-11-23"), NOW),
        (trigger("property.raw", "has_any", ["X"]), frozenset({"x"})),
        (trigger("property.bio", "is_set"), None),
        ({"field": "property.bio", "op": "is_not_set", "value": None}, None),
    ],
)
def test_values_are_normalised_for_evaluation(raw: dict[str, Any], value: object):
    parsed = parse_conditions(raw, SCHEMA)
    assert isinstance(parsed, Trigger)
    assert parsed.value == value
    assert type(parsed.value) is type(value)


def test_every_builtin_field_has_its_contract_type():
    types = {name: spec.value_type for name, spec in PROFILE_FIELDS.items()}
    assert types == {
        "profile.first_name": "text",
        "profile.last_name": "text",
        "profile.email": "text",
        "profile.title": "text",
        "profile.status": "single_select",
        "profile.role": "text",
        "profile.tags": "multi_select",
        "profile.invited_at": "date",
        "profile.registered_at": "date",
        "profile.last_active_at": "date",
        "groups": "multi_select",
    }
    status = PROFILE_FIELDS["profile.status"].options
    assert status == {
        "accepted",
        "invited",
        "pending",
        "deactivated",
        "unsubscribed",
        "declined",
        "rejected",
    }


def test_empty_all_is_true_and_empty_any_is_false():
    assert evaluate(parse_conditions({"all": []}, SCHEMA), EMPTY, NOW) is True
    assert evaluate(parse_conditions({"any": []}, SCHEMA), EMPTY, NOW) is False


REJECTIONS = [
    # (wire conditions, code, JSON pointer, a fragment of the reason)
    ([], "invalid", "/", "must be an object"),
    ({}, "invalid", "/", "'all', 'any', 'not'"),
    ({"all": {}}, "invalid", "/all", "expected a list"),
    ({"all": [], "any": []}, "invalid", "/", "cannot be combined"),
    ({"not": [trigger("property.bio", "is_set")]}, "invalid", "/not", "must be an object"),
    (
        {"all": [{**trigger("property.bio", "eq", "x"), "vaule": 1}]},
        "invalid",
        "/all/0",
        "unknown key(s) 'vaule'",
    ),
    ({"field": "profile.email"}, "invalid", "/", "needs an 'op'"),
    (trigger(3, "eq", "x"), "invalid", "/field", "must be a text"),
    (trigger("profile.nickname", "eq", "x"), "invalid", "/field", "unknown field"),
    (trigger("email", "eq", "x"), "invalid", "/field", "unknown field"),
    (trigger("property.", "eq", "x"), "invalid", "/field", "unknown field"),
    (trigger("property.a:b", "eq", "x"), "invalid", "/field", "unknown field"),
    (trigger("property.nope", "eq", "x"), "unknown_reference", "/field", "property 'nope'"),
    (trigger("answer.nope", "eq", "x"), "unknown_reference", "/field", "question 'nope'"),
    (trigger("property.bio", "x" * 5000, "x"), "invalid", "/op", "unknown op 'xxx"),
    (trigger("groups", "has_any", ["vip", "gone"]), "unknown_reference", "/value/1", "'gone'"),
    (trigger("groups", "has_any", ["VIP"]), "unknown_reference", "/value/0", "'VIP'"),
    (trigger("property.bio", "equals", "x"), "invalid", "/op", "unknown op"),
    (trigger("property.bio", 1, "x"), "invalid", "/op", "unknown op"),
    (trigger("profile.email", "gt", "a"), "invalid", "/op", "does not apply to text"),
    (trigger("groups", "eq", "vip"), "invalid", "/op", "does not apply to multi_select"),
    (trigger("groups", "is_set"), "invalid", "/op", "depend on every group, this one included"),
    (trigger("groups", "is_not_set"), "invalid", "/op", "name the groups with has_any or has_none"),
    (trigger("property.ok", "in", [True]), "invalid", "/op", "does not apply to boolean"),
    (trigger("property.n", "contains", "1"), "invalid", "/op", "does not apply to number"),
    (trigger("property.due", "in", ["2026-01-01"]), "invalid", "/op", "does not apply to date"),
    (trigger("property.plan", "has_any", ["gold"]), "invalid", "/op", "single_select"),
    (trigger("property.skills", "eq", "go"), "invalid", "/op", "multi_select"),
    (trigger("property.bio", "within_last", {"days": 1}), "invalid", "/op", "text"),
    (trigger("property.bio", "is_set", "x"), "invalid", "/value", "takes no value"),
    (trigger("property.bio", "eq"), "invalid", "/value", "needs a value"),
    (trigger("property.bio", "eq", 1), "invalid", "/value", "expected a text"),
    (trigger("property.n", "eq", "1"), "invalid", "/value", "expected a number"),
    (trigger("property.n", "eq", True), "invalid", "/value", "expected a number"),
    (trigger("property.n", "gt", float("nan")), "invalid", "/value", "finite"),
    (trigger("property.n", "lte", float("inf")), "invalid", "/value", "finite"),
    (trigger("property.ok", "eq", "true"), "invalid", "/value", "true or false"),
    (trigger("property.due", "eq", "yesterday"), "invalid", "/value", "RFC 3339"),
    (trigger("property.due", "lt", "2026-11-22T10:00:00"), "invalid", "/value", "RFC 3339"),
    (trigger("property.due", "gt", 1), "invalid", "/value", "expected a text"),
    (trigger("property.plan", "eq", "bronze"), "invalid", "/value", "not an option"),
    (trigger("property.plan", "in", ["gold", "x"]), "invalid", "/value/1", "not an option"),
    (trigger("property.skills", "has_all", ["rust"]), "invalid", "/value/0", "not an option"),
    (trigger("profile.status", "eq", "member"), "invalid", "/value", "not an option"),
    (trigger("property.bio", "in", []), "invalid", "/value", "must not be empty"),
    (trigger("property.bio", "in", "x"), "invalid", "/value", "expected a list"),
    (trigger("property.bio", "in", ["x", 1]), "invalid", "/value/1", "expected a text"),
    (trigger("property.raw", "in", ["x", 1]), "invalid", "/value", "of one type"),
    (trigger("property.raw", "in", [1, True]), "invalid", "/value", "of one type"),
    (trigger("property.raw", "eq", None), "invalid", "/value", "a text, a number or a boolean"),
    (trigger("property.raw", "eq", ["x"]), "invalid", "/value", "a text, a number or a boolean"),
    (trigger("property.raw", "gt", True), "invalid", "/value", "a number or a timestamp"),
    (trigger("property.raw", "gt", "soon"), "invalid", "/value", "RFC 3339"),
    (trigger("property.skills", "has_any", []), "invalid", "/value", "must not be empty"),
    (trigger("profile.tags", "has_any", ["a", 1]), "invalid", "/value/1", "expected a text"),
    (trigger("property.bio", "contains", ""), "invalid", "/value", "non-empty"),
    (trigger("property.bio", "starts_with", ["a"]), "invalid", "/value", "expected a text"),
    (trigger("profile.email", "email_domain", "acme.com"), "invalid", "/value", "a list"),
    (trigger("profile.email", "email_domain", []), "invalid", "/value", "must not be empty"),
    (trigger("profile.email", "email_domain", ["@acme.com"]), "invalid", "/value/0", "domain"),
    (trigger("profile.email", "email_domain", ["acme..com"]), "invalid", "/value/0", "domain"),
    (trigger("profile.email", "email_domain", ["a cme.com"]), "invalid", "/value/0", "domain"),
    (trigger("profile.email", "email_domain", [""]), "invalid", "/value/0", "domain"),
    (trigger("property.n", "between", [1]), "invalid", "/value", "[low, high]"),
    (trigger("property.n", "between", {"low": 1}), "invalid", "/value", "[low, high]"),
    (trigger("property.n", "between", [5, 1]), "invalid", "/value", "low must not be above"),
    (trigger("property.n", "between", ["1", 2]), "invalid", "/value/0", "expected a number"),
    (trigger("property.due", "between", ["2026-02-01", "2026-01-01"]), "invalid", "/value", "low"),
    (trigger("property.raw", "between", [1, "2026-01-01"]), "invalid", "/value", "both"),
    (trigger("property.due", "within_last", 3), "invalid", "/value", "a duration is"),
    (trigger("property.due", "within_last", {}), "invalid", "/value", "a duration is"),
    (trigger("property.due", "within_last", {"weeks": 1}), "invalid", "/value", "unit 'weeks'"),
    (
        trigger("property.due", "older_than", {"days": 1, "hours": 2}),
        "invalid",
        "/value",
        "a duration is",
    ),
    (trigger("property.due", "within_next", {"days": -1}), "invalid", "/value/days", "negative"),
    (trigger("property.due", "within_next", {"days": True}), "invalid", "/value/days", "number"),
    (trigger("property.due", "within_next", {"days": "1"}), "invalid", "/value/days", "number"),
    (trigger("property.due", "within_next", {"days": 36_526}), "invalid", "/value/days", "36525"),
    (
        {"all": [{"any": [{"not": trigger("property.n", "eq", "x")}]}]},
        "invalid",
        "/all/0/any/0/not/value",
        "expected a number",
    ),
    (
        {"any": [trigger("property.bio", "is_set"), {"all": [trigger("answer.q2", "is_set")]}]},
        "unknown_reference",
        "/any/1/all/0/field",
        "question 'q2'",
    ),
]


@pytest.mark.parametrize(("raw", "code", "path", "why"), REJECTIONS)
def test_rejections_say_where_and_why(raw: object, code: str, path: str, why: str):
    error = rejection(raw)
    assert error.code == code
    where, _, reason = error.message.partition(": ")
    assert where == path
    assert why in reason
    assert len(error.message) < 200


def nested(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = trigger("property.bio", "is_set")
    for _ in range(depth - 1):
        node = {"not": node}
    return node


def test_depth_is_limited_counting_every_node():
    assert MAX_DEPTH == 16
    parse_conditions(nested(MAX_DEPTH), SCHEMA)
    error = rejection(nested(MAX_DEPTH + 1))
    assert error.code == "invalid"
    assert error.message.startswith("/not" * MAX_DEPTH + ": ")
    assert "deeper than 16" in error.message


def test_a_pathologically_deep_tree_is_rejected_without_recursing_through_it():
    assert rejection(nested(100_000)).code == "invalid"


def test_trigger_count_is_limited():
    assert MAX_TRIGGERS == 200
    parse_conditions({"any": [trigger("property.bio", "is_set")] * MAX_TRIGGERS}, SCHEMA)
    error = rejection({"any": [trigger("property.bio", "is_set")] * (MAX_TRIGGERS + 1)})
    assert error.message.startswith("/any/200: ")
    assert "more than 200 triggers" in error.message


def test_trigger_count_spans_the_whole_tree():
    half = {"all": [trigger("property.bio", "is_set")] * 100}
    parse_conditions({"any": [half, half]}, SCHEMA)
    assert rejection({"any": [half, half, trigger("property.bio", "is_set")]}).message.startswith(
        "/any/2: "
    )


def test_list_values_are_limited():
    assert MAX_LIST_ITEMS == 1000
    parse_conditions(trigger("property.n", "in", list(range(MAX_LIST_ITEMS))), SCHEMA)
    error = rejection(trigger("property.n", "in", list(range(MAX_LIST_ITEMS + 1))))
    assert error.message.startswith("/value: ")
    assert "more than 1000 items" in error.message


def test_children_lists_are_limited_too():
    parse_conditions({"all": [{"all": []}] * MAX_LIST_ITEMS}, SCHEMA)
    error = rejection({"all": [{"all": []}] * (MAX_LIST_ITEMS + 1)})
    assert error.message.startswith("/all: ")


def test_texts_are_limited_in_characters():
    assert MAX_TEXT_CHARS == 1000
    longest = "é" * MAX_TEXT_CHARS  # 1,000 characters, 2,000 bytes
    parse_conditions(trigger("property.bio", "contains", longest), SCHEMA)
    error = rejection(trigger("property.bio", "in", ["ok", longest + "x"]))
    assert error.message.startswith("/value/1: ")
    assert "longer than 1000 characters" in error.message


def test_select_values_match_options_ignoring_case():
    parsed = parse_conditions(trigger("property.plan", "eq", "SILVER"), SCHEMA)
    assert parsed == Trigger("property.plan", "eq", "silver", "single_select")


def test_the_first_error_in_document_order_is_reported():
    raw = {"all": [trigger("property.n", "eq", "x"), trigger("property.nope", "eq", 1)]}
    assert rejection(raw).message.startswith("/all/0/value: ")


def test_static_schema_resolves_every_kind_of_field():
    assert SCHEMA.resolve("profile.email") == FieldSpec("text")
    assert SCHEMA.resolve("groups") == FieldSpec("multi_select")
    assert SCHEMA.resolve("property.plan") == FieldSpec(
        "single_select", frozenset({"gold", "silver"})
    )
    assert SCHEMA.resolve("answer.q1") == FieldSpec("text")
    assert SCHEMA.resolve("property.q1") is None
    assert SCHEMA.resolve("answer.plan") is None
    assert SCHEMA.resolve("profile.nickname") is None
    assert SCHEMA.has_group("vip") and not SCHEMA.has_group("VIP")
