"""Properties of conditions over random trees, members and instants."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from tests.property.strategies import (
    DURATIONS,
    INSTANT_TEXTS,
    NEGATIONS,
    SCHEMA,
    TEXTS,
    instants,
    members,
    ref_evaluate,
    ref_fold,
    wire_conditions,
    wire_triggers,
)

from smartgroups.core.conditions import (
    All,
    AnyOf,
    Not,
    evaluate,
    next_change,
    parse_conditions,
    render,
)
from smartgroups.core.snapshot import MemberSnapshot
from smartgroups.core.values import fold, parse_instant
from smartgroups.errors import RuleError

EXAMPLES = settings(max_examples=400, deadline=None)


@EXAMPLES
@given(raw=wire_conditions, member=members, now=instants)
def test_evaluate_agrees_with_the_reference(raw: Any, member: MemberSnapshot, now: datetime):
    assert evaluate(parse_conditions(raw, SCHEMA), member, now) == ref_evaluate(raw, member, now)


@EXAMPLES
@given(raw=wire_triggers, member=members, now=instants)
def test_negative_ops_are_exact_complements(raw: Any, member: MemberSnapshot, now: datetime):
    positive = {v: k for k, v in NEGATIONS.items()}
    op = raw["op"]
    twin = NEGATIONS.get(op) or positive.get(op)
    if twin is None:
        return
    verdict = evaluate(parse_conditions(raw, SCHEMA), member, now)
    flipped = evaluate(parse_conditions({**raw, "op": twin}, SCHEMA), member, now)
    assert verdict is not flipped
    assert evaluate(Not(parse_conditions(raw, SCHEMA)), member, now) is not verdict


@EXAMPLES
@given(raws=st.lists(wire_conditions, max_size=4), member=members, now=instants)
def test_de_morgan(raws: list[Any], member: MemberSnapshot, now: datetime):
    children = tuple(parse_conditions(raw, SCHEMA) for raw in raws)
    negated = tuple(Not(child) for child in children)
    assert evaluate(Not(All(children)), member, now) == evaluate(AnyOf(negated), member, now)
    assert evaluate(Not(AnyOf(children)), member, now) == evaluate(All(negated), member, now)


@EXAMPLES
@given(raw=wire_conditions)
def test_render_round_trips(raw: Any):
    cond = parse_conditions(raw, SCHEMA)
    wire = render(cond)
    assert parse_conditions(wire, SCHEMA) == cond
    assert render(parse_conditions(wire, SCHEMA)) == wire


@EXAMPLES
@given(wanted=st.sampled_from(TEXTS), given_=st.sampled_from(TEXTS), now=instants)
def test_text_eq_ignores_case_canonically(wanted: str, given_: str, now: datetime):
    cond = parse_conditions({"field": "property.t", "op": "eq", "value": wanted}, SCHEMA)
    member = MemberSnapshot({}, {"t": given_}, {}, frozenset())
    assert evaluate(cond, member, now) == (ref_fold(wanted) == ref_fold(given_))
    assert evaluate(cond, member, now) == (fold(wanted) == fold(given_))


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=12))
def test_fold_is_canonical_caseless(text: str):
    assert fold(text) == ref_fold(text)
    assert fold(fold(text)) == fold(text)


@EXAMPLES
@given(raw=wire_conditions, member=members, now=instants, fraction=st.floats(0, 1))
def test_next_change_is_exact(raw: Any, member: MemberSnapshot, now: datetime, fraction: float):
    cond = parse_conditions(raw, SCHEMA)
    verdict = evaluate(cond, member, now)
    due = next_change(cond, member, now)
    if due is None:
        horizon = [timedelta(microseconds=1), timedelta(hours=1), timedelta(days=4)]
        horizon += [timedelta(days=10), timedelta(days=400), timedelta(days=10) * fraction]
        for later in horizon:
            assert evaluate(cond, member, now + later) == verdict
        return
    assert due > now
    tick = timedelta(microseconds=1)
    for t in (now + tick, due - tick, now + (due - now) * fraction):
        if now < t < due:
            assert evaluate(cond, member, t) == verdict
    assert evaluate(cond, member, due) != verdict


@EXAMPLES
@given(
    op=st.sampled_from(("within_last", "older_than", "within_next")),
    span=DURATIONS,
    value=st.sampled_from(INSTANT_TEXTS),
    now=instants,
    negate=st.booleans(),
)
def test_a_time_trigger_flips_exactly_at_next_change(
    op: str, span: dict[str, float], value: str, now: datetime, negate: bool
):
    raw: Any = {"field": "property.d", "op": op, "value": span}
    cond = parse_conditions({"not": raw} if negate else raw, SCHEMA)
    member = MemberSnapshot({}, {"d": value}, {}, frozenset())
    verdict = evaluate(cond, member, now)
    due = next_change(cond, member, now)
    instant = parse_instant(value)
    assert instant is not None
    length = timedelta(**span)
    tick = timedelta(microseconds=1)
    expected = {
        "within_last": [instant + length + tick],
        "older_than": [instant + length + tick],
        "within_next": [instant - length, instant + tick],
    }[op]
    future = [t for t in expected if t > now and evaluate(cond, member, t) != verdict]
    assert due == min(future, default=None)
    if due is not None:
        assert evaluate(cond, member, due - tick) == verdict


@EXAMPLES
@given(raw=wire_triggers, member=members, now=instants)
def test_only_time_relative_triggers_change_with_time(
    raw: Any, member: MemberSnapshot, now: datetime
):
    due = next_change(parse_conditions(raw, SCHEMA), member, now)
    assert due is None or raw["op"] in ("within_last", "older_than", "within_next")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=12,
)
near_wire = st.recursive(
    wire_triggers | json_values,
    lambda inner: (
        st.fixed_dictionaries(
            {}, optional={"all": st.lists(inner), "any": st.lists(inner), "not": inner}
        )
        | st.dictionaries(st.sampled_from(("field", "op", "value", "x")), inner, max_size=4)
    ),
    max_leaves=10,
)


@settings(max_examples=1000, deadline=None)
@given(raw=near_wire)
def test_parse_accepts_or_rejects_with_a_rule_error_and_nothing_else(raw: Any):
    try:
        cond = parse_conditions(raw, SCHEMA)
    except RuleError as error:
        assert error.code in ("invalid", "unknown_reference")
        assert error.message.startswith("/")
    else:
        assert parse_conditions(render(cond), SCHEMA) == cond


@EXAMPLES
@given(raw=wire_conditions, value=json_values, now=instants)
def test_evaluation_is_total_on_any_json_value(raw: Any, value: object, now: datetime):
    cond = parse_conditions(raw, SCHEMA)
    for field in ("email", "status", "tags", "last_active_at"):
        member = MemberSnapshot(
            {field: value}, {"x": value, "m": value}, {"qs": value}, frozenset()
        )
        assert evaluate(cond, member, now) in (True, False)
        due = next_change(cond, member, now)
        assert due is None or due > now
