"""The explain trace agrees with the evaluator on every input (contract section 7, explain)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from hypothesis import given, settings
from tests.property.strategies import SCHEMA, instants, members, wire_conditions

from smartgroups.core.conditions import (
    All,
    AnyOf,
    Condition,
    Not,
    evaluate,
    parse_conditions,
    render,
)
from smartgroups.core.explain import Trace, trace
from smartgroups.core.snapshot import MemberSnapshot

EXAMPLES = settings(max_examples=600, deadline=None)


@EXAMPLES
@given(raw=wire_conditions, member=members, now=instants)
def test_the_root_result_is_the_verdict(raw: Any, member: MemberSnapshot, now: datetime) -> None:
    cond = parse_conditions(raw, SCHEMA)
    assert trace(cond, member, now)["result"] is evaluate(cond, member, now)


@EXAMPLES
@given(raw=wire_conditions, member=members, now=instants)
def test_every_node_is_its_own_verdict_and_mirrors_the_tree(
    raw: Any, member: MemberSnapshot, now: datetime
) -> None:
    cond = parse_conditions(raw, SCHEMA)
    _check(cond, trace(cond, member, now), member, now)


def _check(cond: Condition, node: Trace, member: MemberSnapshot, now: datetime) -> None:
    assert node["result"] is evaluate(cond, member, now)
    if isinstance(cond, Not):
        assert set(node) == {"not", "result"}
        _check(cond.child, node["not"], member, now)
    elif isinstance(cond, All | AnyOf):
        key = "all" if isinstance(cond, All) else "any"
        assert set(node) == {key, "result"}
        assert len(node[key]) == len(cond.children)
        for child, sub in zip(cond.children, node[key], strict=True):
            _check(child, sub, member, now)
    else:
        wire = render(cond)
        assert isinstance(wire, dict)
        assert {k: v for k, v in node.items() if k not in ("result", "actual")} == wire
        source, _, key = cond.field.partition(".")
        expected = {
            "profile": member.profile,
            "property": member.properties,
            "answer": member.answers,
        }.get(source)
        if expected is None:
            assert node["actual"] == sorted(member.groups)
        else:
            actual = expected.get(key)
            assert node["actual"] == (list(actual) if isinstance(actual, tuple) else actual)
