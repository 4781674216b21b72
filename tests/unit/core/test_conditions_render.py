"""render (back to wire JSON) and references (what a tree names and reads)."""

from __future__ import annotations

from typing import Any

import pytest

from smartgroups.core.conditions import References, parse_conditions, references, render
from smartgroups.core.fields import FieldSpec, StaticFieldSchema

SCHEMA = StaticFieldSchema(
    properties={
        "plan": FieldSpec.define("single_select", ["Gold", "silver"]),
        "skills": FieldSpec.define("multi_select", ["python", "Go"]),
        "n": FieldSpec("number"),
        "due": FieldSpec("date"),
    },
    questions={"size": FieldSpec.define("single_select", ["S", "M"]), "bio": FieldSpec("text")},
    groups={"vip", "staff"},
)


@pytest.mark.parametrize(
    ("raw", "wire"),
    [
        (
            {"field": "profile.email", "op": "email_domain", "value": ["B.com", "a.COM"]},
            {"field": "profile.email", "op": "email_domain", "value": ["a.com", "b.com"]},
        ),
        (
            {"field": "property.due", "op": "gt", "value": "2026-11-23T12:00:00.5+02:00"},
            {"field": "property.due", "op": "gt", "value": "2026-11-23T10:00:00.500000Z"},
        ),
        (
            {"field": "property.due", "op": "between", "value": ["2026-11-01", "2026-11-30"]},
            {
                "field": "property.due",
                "op": "between",
                "value": ["2026-11-01T00:00:00Z", "2026-11-30T00:00:00Z"],
            },
        ),
        (
            {"field": "property.due", "op": "within_last", "value": {"hours": 48}},
            {"field": "property.due", "op": "within_last", "value": {"days": 2}},
        ),
        (
            {"field": "property.due", "op": "older_than", "value": {"days": 0.25}},
            {"field": "property.due", "op": "older_than", "value": {"hours": 6}},
        ),
        (
            {"field": "property.due", "op": "within_next", "value": {"minutes": 0.5}},
            {"field": "property.due", "op": "within_next", "value": {"minutes": 0.5}},
        ),
        (
            {"field": "property.plan", "op": "in", "value": ["SILVER", "Gold"]},
            {"field": "property.plan", "op": "in", "value": ["gold", "silver"]},
        ),
        (
            {"field": "property.n", "op": "between", "value": [1, 2.5]},
            {"field": "property.n", "op": "between", "value": [1, 2.5]},
        ),
        (
            {"field": "answer.bio", "op": "is_set", "value": None},
            {"field": "answer.bio", "op": "is_set"},
        ),
        (
            {"not": {"any": [{"all": []}, {"field": "groups", "op": "has_all", "value": ["vip"]}]}},
            {"not": {"any": [{"all": []}, {"field": "groups", "op": "has_all", "value": ["vip"]}]}},
        ),
    ],
)
def test_render_gives_canonical_wire_json_that_parses_back(raw: Any, wire: Any):
    cond = parse_conditions(raw, SCHEMA)
    assert render(cond) == wire
    assert parse_conditions(wire, SCHEMA) == cond


def test_references_list_what_a_tree_names_and_reads():
    raw = {
        "all": [
            {"field": "property.plan", "op": "eq", "value": "GOLD"},
            {"field": "property.skills", "op": "has_none", "value": ["python", "go"]},
            {"not": {"field": "answer.size", "op": "in", "value": ["m"]}},
            {"field": "answer.bio", "op": "contains", "value": "x"},
            {"field": "property.n", "op": "is_set"},
            {"field": "property.plan", "op": "is_not_set"},
            {"field": "profile.email", "op": "email_domain", "value": ["acme.com"]},
            {"field": "profile.status", "op": "eq", "value": "accepted"},
            {"any": [{"field": "groups", "op": "has_any", "value": ["vip", "staff"]}]},
        ]
    }
    assert references(parse_conditions(raw, SCHEMA)) == References(
        properties=frozenset({"plan", "skills", "n"}),
        questions=frozenset({"size", "bio"}),
        groups=frozenset({"vip", "staff"}),
        options=frozenset(
            {
                ("property.plan", "gold"),
                ("property.skills", "python"),
                ("property.skills", "go"),
                ("answer.size", "m"),
                ("profile.status", "accepted"),
            }
        ),
        fields=frozenset(
            {
                "property.plan",
                "property.skills",
                "answer.size",
                "answer.bio",
                "property.n",
                "profile.email",
                "profile.status",
                "groups",
            }
        ),
        time_relative=False,
    )


@pytest.mark.parametrize("op", ["within_last", "older_than", "within_next"])
def test_time_relative_ops_mark_the_tree_anywhere_in_it(op: str):
    raw = {"any": [{"not": {"field": "property.due", "op": op, "value": {"days": 1}}}]}
    assert references(parse_conditions(raw, SCHEMA)).time_relative is True


def test_date_comparisons_with_fixed_instants_are_not_time_relative():
    raw = {"field": "property.due", "op": "gt", "value": "2026-11-23"}
    assert references(parse_conditions(raw, SCHEMA)).time_relative is False
