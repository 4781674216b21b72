"""The native evaluator decides every tree as the Python predicate does, on any value.

``compile_condition`` hands out native programs (``_native.c``, lowered by ``native.py``); the
property tests of ``test_conditions_properties`` already hold them to the reference evaluator.
These tests compare the two implementations directly, on the members the other tests draw and
on values no wire JSON can carry (NaN, str subclasses, sets, tuples, non-dict mappings), and
check that the native code neither leaks nor drops references.
"""

from __future__ import annotations

import sys
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.native_switch import native_only
from tests.property.strategies import (
    NOW,
    SCHEMA,
    TYPES,
    instants,
    members,
    wire_conditions,
    wire_triggers,
)

from smartgroups.core.conditions import native, parse_conditions
from smartgroups.core.conditions.evaluate import _shared, python_predicate, trigger_test
from smartgroups.core.snapshot import MemberSnapshot

pytestmark = native_only


def native_program(cond: Any) -> Any:
    return native.program(cond, trigger_test, _shared)


class Text(str):
    """A str subclass: the native code must treat it as a str, as isinstance does."""


odd_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.sampled_from(("ABC", "Straße", "İstanbul", "GOLD", "g1", "2026-11-23", "x@Acme.COM")),
    st.text(max_size=6).map(Text),
    st.sampled_from(("2026-11-20T10:00:00Z", "2026-11-23", "1970-01-01T00:00:00+01:00")),
)
odd_values = st.one_of(
    odd_scalars,
    st.lists(odd_scalars, max_size=3),
    st.lists(odd_scalars, max_size=3).map(tuple),
    st.frozensets(st.text(max_size=4), max_size=3),
    st.sets(st.sampled_from(("gold", "GOLD", "Silver", "g1", "G1")), max_size=3),
)


@st.composite
def odd_members(draw: st.DrawFn) -> MemberSnapshot:
    """A member whose every field may hold any value, in dict or non-dict mappings."""
    sources: dict[str, dict[str, object]] = {"profile": {}, "property": {}, "answer": {}}
    for field in TYPES:
        source, _, key = field.partition(".")
        if source in sources and draw(st.booleans()):
            sources[source][key] = draw(odd_values)
    wrap = draw(st.sampled_from((dict, MappingProxyType)))
    groups = draw(st.one_of(st.frozensets(st.sampled_from(("g1", "g2", "G1", "g3"))), odd_values))
    return MemberSnapshot(
        wrap(sources["profile"]),
        wrap(sources["property"]),
        wrap(sources["answer"]),
        groups,  # type: ignore[arg-type]
    )


@settings(max_examples=1500, deadline=None)
@given(raw=wire_conditions, member=members, now=instants)
def test_native_programs_agree_with_python_predicates(raw: Any, member: MemberSnapshot, now):
    cond = parse_conditions(raw, SCHEMA)
    assert native_program(cond)(member, now) is python_predicate(cond)(member, now)


@settings(max_examples=1500, deadline=None)
@given(raw=wire_triggers, member=odd_members(), now=instants)
def test_native_programs_agree_on_any_value(raw: Any, member: MemberSnapshot, now: datetime):
    cond = parse_conditions(raw, SCHEMA)
    assert native_program(cond)(member, now) is python_predicate(cond)(member, now)


# short texts over a small alphabet, so that folded comparisons often hold
_LETTERS = "aAzZ@.ßİ\u0301"
_short = st.text(alphabet=_LETTERS, max_size=3)
_items = st.one_of(_short, _short.map(Text), st.integers(0, 1))


@st.composite
def near_text_triggers(draw: st.DrawFn) -> tuple[dict[str, Any], object]:
    """A text or options trigger and a value of the same few letters (items may not be str)."""
    op = draw(st.sampled_from(("eq", "neq", "in", "contains", "starts_with", "ends_with")))
    if draw(st.booleans()):
        listed = draw(st.sampled_from(("has_any", "has_all", "has_none")))
        target = draw(st.lists(st.sampled_from(("gold", "Silver")), min_size=1, max_size=2))
        pool = st.sampled_from(("gold", "GOLD", "silver", "SILVER", "x", "Z"))
        value = draw(st.lists(st.one_of(pool, pool.map(Text), st.integers(0, 1)), max_size=3))
        return {"field": "property.m", "op": listed, "value": target}, value
    target: object = draw(st.lists(_short.filter(bool), min_size=1, max_size=3))
    if op != "in":
        target = draw(_short.filter(bool))
    return {"field": "property.t", "op": op, "value": target}, draw(_items)


@settings(max_examples=2000, deadline=None)
@given(drawn=near_text_triggers())
def test_native_folding_agrees_on_near_texts(drawn: tuple[dict[str, Any], object]):
    raw, value = drawn
    cond = parse_conditions(raw, SCHEMA)
    key = raw["field"].partition(".")[2]
    member = MemberSnapshot({}, {key: value}, {}, frozenset())
    assert native_program(cond)(member, NOW) is python_predicate(cond)(member, NOW)


def test_a_list_with_an_item_that_is_not_text_holds_no_option():
    for op in ("has_any", "has_all"):
        cond = parse_conditions({"field": "property.m", "op": op, "value": ["gold"]}, SCHEMA)
        member = MemberSnapshot({}, {"m": ["GOLD", 1]}, {}, frozenset())
        assert native_program(cond)(member, NOW) is False
        assert python_predicate(cond)(member, NOW) is False


def test_the_native_evaluator_is_built_and_used():
    """``pip install`` builds it; without it the worker would fall back to Python silently."""
    assert native.AVAILABLE, "smartgroups.core._native is not built: pip install -e ."
    cond = parse_conditions({"field": "property.t", "op": "eq", "value": "x"}, SCHEMA)
    from smartgroups.core.conditions import compile_condition

    assert type(compile_condition(cond)).__name__ == "Program"


# one trigger for each conversion and comparison of the native code, with a value it reads
_EACH_KIND = [
    ({"field": "property.t", "op": "eq", "value": "abc"}, "ABC"),
    ({"field": "property.t", "op": "in", "value": ["abc", "x"]}, "Abc"),
    ({"field": "property.t", "op": "contains", "value": "b"}, "ABC"),
    ({"field": "property.t", "op": "starts_with", "value": "st"}, "Straße"),
    ({"field": "property.t", "op": "ends_with", "value": "c"}, "ABC"),
    ({"field": "property.n", "op": "between", "value": [1, 5]}, 3),
    ({"field": "property.n", "op": "in", "value": [1, 2]}, 2.0),
    ({"field": "property.b", "op": "eq", "value": True}, True),
    ({"field": "property.d", "op": "gt", "value": "2026-01-01"}, "2026-11-20T10:00:00Z"),
    ({"field": "property.d", "op": "within_last", "value": {"days": 30}}, "2026-11-20"),
    ({"field": "property.d", "op": "within_next", "value": {"days": 30}}, "2026-12-01"),
    ({"field": "property.m", "op": "has_any", "value": ["gold"]}, ["GOLD", "x"]),
    ({"field": "property.m", "op": "has_all", "value": ["gold", "Silver"]}, ["SILVER", "Gold"]),
    ({"field": "property.m", "op": "is_set"}, ["gold"]),
    ({"field": "profile.email", "op": "email_domain", "value": ["acme.com"]}, "a@x.acme.com"),
]


@pytest.mark.parametrize(("raw", "value"), _EACH_KIND, ids=[r["op"] for r, _ in _EACH_KIND])
def test_each_kind_of_trigger_holds_and_keeps_reference_counts(raw: dict[str, Any], value):
    """A matching value gives True; a thousand evaluations leave every reference count as it
    was (a leak or a missing reference in the C code would move them)."""
    cond = parse_conditions(raw, SCHEMA)
    program = native_program(cond)
    source, _, key = raw["field"].partition(".")
    values: dict[str, object] = {key: value}
    empty: dict[str, object] = {}
    member = MemberSnapshot(
        values if source == "profile" else empty,
        values if source == "property" else empty,
        empty,
        frozenset(),
    )
    assert program(member, NOW) is True
    watched = [value, member, NOW, *(value if isinstance(value, list) else [])]
    before = [sys.getrefcount(obj) for obj in watched]
    for _ in range(1000):
        program(member, NOW)
    assert [sys.getrefcount(obj) for obj in watched] == before


def test_groups_triggers_read_the_members_groups():
    has_any = parse_conditions({"field": "groups", "op": "has_any", "value": ["g1", "g2"]}, SCHEMA)
    has_all = parse_conditions({"field": "groups", "op": "has_all", "value": ["g1", "g2"]}, SCHEMA)
    member = MemberSnapshot({}, {}, {}, frozenset({"g1"}))
    assert native_program(has_any)(member, NOW) is True
    assert native_program(has_all)(member, NOW) is False


def test_a_program_rejects_malformed_nodes_and_calls():
    from smartgroups.core import _native

    with pytest.raises(ValueError):
        _native.Program(((native.ALL, 3, None, 0, 0, 0, 0, None, None),))  # size past the end
    with pytest.raises(ValueError):
        _native.Program(((native.TRIGGER, 1, "k", 0, native.STR, native.IN, 0, "x", None),))
    with pytest.raises(TypeError):
        _native.Program((("not", "a", "node"),))
    program = _native.Program(((native.ALL, 1, None, 0, 0, 0, 0, None, None),))
    assert program(MemberSnapshot({}, {}, {}, frozenset()), NOW) is True  # an empty all holds
    with pytest.raises(TypeError):
        program(MemberSnapshot({}, {}, {}, frozenset()))  # type: ignore[call-arg]


def test_lowering_is_pre_order_with_subtree_sizes():
    cond = parse_conditions(
        {
            "all": [
                {"any": [{"field": "property.t", "op": "eq", "value": "a"}]},
                {"not": {"field": "property.n", "op": "gt", "value": 1}},
                {"field": "property.t", "op": "neq", "value": "b"},
            ]
        },
        SCHEMA,
    )
    nodes = native.lower(cond, trigger_test, _shared)
    kinds = [(node[0], node[1]) for node in nodes]
    assert kinds == [
        (native.ALL, 6),
        (native.ANY, 2),
        (native.TRIGGER, 1),
        (native.NOT, 2),
        (native.TRIGGER, 1),
        (native.TRIGGER, 1),
    ]
    negate = [node[6] for node in nodes if node[0] == native.TRIGGER]
    assert negate == [0, 0, 1]  # neq is eq, negated


def test_age_is_now_minus_the_instant():
    within = parse_conditions(
        {"field": "property.d", "op": "within_last", "value": {"days": 3}}, SCHEMA
    )
    member = MemberSnapshot({}, {"d": "2026-11-20T12:00:00Z"}, {}, frozenset())
    program = native_program(within)
    assert program(member, NOW) is True  # exactly three days
    assert program(member, NOW + timedelta(microseconds=1)) is False
