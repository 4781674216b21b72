"""parse_command: every group-changes type, the field checks, and slug normalisation."""

from __future__ import annotations

from typing import Any

import pytest

from smartgroups.core.commands import (
    ABSENT,
    COMMAND_TYPES,
    GroupActivated,
    GroupBlacklisted,
    GroupCreated,
    GroupDeactivated,
    GroupDeleted,
    GroupMemberAdded,
    GroupMemberRemoved,
    GroupUnblacklisted,
    GroupUpdated,
    PropertyDefined,
    PropertyDeleted,
    PropertyOptionRemoved,
    PropertyUpdated,
    QuestionDefined,
    QuestionDeleted,
    QuestionOptionRemoved,
    QuestionUpdated,
    Resource,
    SegmentSetDefined,
    SegmentSetDeleted,
    SegmentSetUpdated,
    parse_command,
)
from smartgroups.core.slug import MAX_SLUG, normalize_slug
from smartgroups.errors import RuleError

CONDITIONS = {"all": [{"field": "profile.role", "op": "eq", "value": "admin"}]}


def cmd(command_type: str, /, **fields: Any) -> Any:
    return parse_command({"id": "e1", "type": command_type, "space": "acme", **fields})


def rejected(command_type: str, /, **fields: Any) -> RuleError:
    with pytest.raises(RuleError) as caught:
        cmd(command_type, **fields)
    return caught.value


# -- every type --------------------------------------------------------------------------------


def test_group_created_smart_keeps_every_field() -> None:
    created = cmd(
        "group.created",
        group_id="vip",
        name="VIP",
        kind="smart",
        slug="Very Important",
        description="the best",
        icon="star",
        conditions=CONDITIONS,
        resources=[{"type": "course", "id": "c1"}, {"type": "live", "id": "l1", "extra": 1}],
        unknown_field="ignored",
    )
    assert created == GroupCreated(
        group_id="vip",
        name="VIP",
        kind="smart",
        slug="very-important",
        description="the best",
        icon="star",
        conditions_raw=CONDITIONS,
        resources=(Resource("course", "c1"), Resource("live", "l1")),
    )


def test_group_created_static_defaults() -> None:
    assert cmd("group.created", group_id="s", name="Staff", kind="static") == GroupCreated(
        "s", "Staff", "static"
    )


def test_group_updated_distinguishes_absent_from_null() -> None:
    updated = cmd("group.updated", group_id="g", slug=None, description=None, name="New")
    assert updated == GroupUpdated(
        "g", name="New", slug=None, description=None, icon=ABSENT, resources=ABSENT
    )
    assert cmd("group.updated", group_id="g", resources=None).resources == ()


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("group.deactivated", GroupDeactivated("g")),
        ("group.activated", GroupActivated("g")),
        ("group.deleted", GroupDeleted("g")),
    ],
)
def test_group_lifecycle(kind: str, expected: object) -> None:
    assert cmd(kind, group_id="g") == expected


@pytest.mark.parametrize(
    ("kind", "cls"),
    [
        ("group.member_added", GroupMemberAdded),
        ("group.member_removed", GroupMemberRemoved),
        ("group.blacklisted", GroupBlacklisted),
        ("group.unblacklisted", GroupUnblacklisted),
    ],
)
def test_member_commands(kind: str, cls: type) -> None:
    assert cmd(kind, group_id="g", member_id="m@x.io") == cls("g", "m@x.io")
    assert "member_id" in rejected(kind, group_id="g").message


def test_definitions_of_properties_and_questions() -> None:
    assert cmd(
        "property.defined",
        property_id="plan",
        name="Plan",
        value_type="single_select",
        options=["free", "pro", "free"],
    ) == PropertyDefined("plan", "Plan", "single_select", ("free", "pro"))
    assert cmd(
        "question.defined", question_id="q", name="Age", value_type="number"
    ) == QuestionDefined("q", "Age", "number", None)
    assert cmd(
        "question.defined", question_id="q", name="Sport", value_type="multi_select"
    ) == QuestionDefined("q", "Sport", "multi_select", ())
    assert cmd("property.updated", property_id="p", name="P2") == PropertyUpdated("p", "P2")
    assert cmd("question.updated", question_id="q", options=["a"]) == QuestionUpdated(
        "q", options=("a",)
    )
    assert cmd("property.deleted", property_id="p") == PropertyDeleted("p")
    assert cmd("question.deleted", question_id="q") == QuestionDeleted("q")
    assert cmd("property.option_removed", property_id="p", option="a") == PropertyOptionRemoved(
        "p", "a"
    )
    assert cmd("question.option_removed", question_id="q", option="a") == QuestionOptionRemoved(
        "q", "a"
    )


def test_every_contract_type_is_known() -> None:
    verbs = "created updated deactivated activated deleted member_added member_removed"
    groups = {f"group.{v}" for v in [*verbs.split(" "), "blacklisted", "unblacklisted"]}
    defs = {
        f"{s}.{v}"
        for s in ("property", "question")
        for v in ("defined", "updated", "deleted", "option_removed")
    }
    sets = {f"segment_set.{v}" for v in ("defined", "updated", "deleted")}
    assert groups | defs | sets == COMMAND_TYPES


# -- rejections --------------------------------------------------------------------------------


def test_unknown_type_is_invalid() -> None:
    error = rejected("group.renamed", group_id="g")
    assert error.code == "invalid" and "group.renamed" in error.message


@pytest.mark.parametrize("bad", ["", "a:b", "a b", "x" * 201, 5, None])
def test_ids_must_match_the_pattern(bad: object) -> None:
    error = rejected("group.deleted", group_id=bad)
    assert error.code == "invalid" and "group_id" in error.message


def test_texts_are_limited_to_1000_characters() -> None:
    assert cmd("group.created", group_id="g", name="n" * 1000, kind="static").name == "n" * 1000
    error = rejected("group.created", group_id="g", name="n" * 1001, kind="static")
    assert error.code == "invalid" and "name" in error.message
    error = rejected("group.updated", group_id="g", description="d" * 1001)
    assert "description" in error.message


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"kind": "static"}, "name"),
        ({"name": "  ", "kind": "static"}, "name"),
        ({"name": "N"}, "kind"),
        ({"name": "N", "kind": "dynamic"}, "kind"),
        ({"name": "N", "kind": "smart"}, "conditions"),
        ({"name": "N", "kind": "smart", "conditions": None}, "conditions"),
        ({"name": "N", "kind": "static", "conditions": CONDITIONS}, "conditions"),
        ({"name": "N", "kind": "static", "slug": "!!!"}, "slug"),
        ({"name": "N", "kind": "static", "resources": {"type": "live"}}, "resources"),
        ({"name": "N", "kind": "static", "resources": [{"type": "video", "id": "v"}]}, "type"),
        ({"name": "N", "kind": "static", "resources": [{"type": "live", "id": "a:b"}]}, "id"),
        ({"name": "N", "kind": "static", "resources": [{"type": "live"}] * 1001}, "resources"),
    ],
)
def test_malformed_group_created(fields: dict[str, Any], where: str) -> None:
    error = rejected("group.created", group_id="g", **fields)
    assert error.code == "invalid"
    assert where in error.message


def test_static_group_with_null_conditions_is_accepted() -> None:
    assert cmd("group.created", group_id="g", name="N", kind="static", conditions=None).kind == (
        "static"
    )


@pytest.mark.parametrize("value", [CONDITIONS, None, "smart"])
def test_update_of_kind_is_triggers_immutable(value: object) -> None:
    assert rejected("group.updated", group_id="g", kind=value).code == "triggers_immutable"


@pytest.mark.parametrize("value", [CONDITIONS, None])
def test_update_keeps_conditions_raw_for_the_catalog(value: object) -> None:
    """Only the catalog knows whether the group is editable: the parser keeps the tree."""
    assert cmd("group.updated", group_id="g", conditions=value).conditions_raw == value
    assert cmd("group.updated", group_id="g").conditions_raw is ABSENT


def test_blacklist_and_editable_at_creation() -> None:
    created = cmd(
        "group.created",
        group_id="g",
        name="N",
        kind="smart",
        conditions=CONDITIONS,
        blacklist=["m1", "m2", "m1"],
        editable=True,
    )
    assert created.blacklist == ("m1", "m2") and created.editable is True
    plain = cmd("group.created", group_id="g", name="N", kind="smart", conditions=CONDITIONS)
    assert plain.blacklist == () and plain.editable is False


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"kind": "static", "blacklist": ["m1"]}, "blacklist"),
        ({"kind": "static", "editable": True}, "editable"),
        ({"kind": "smart", "conditions": CONDITIONS, "editable": "yes"}, "editable"),
        ({"kind": "smart", "conditions": CONDITIONS, "blacklist": "m1"}, "blacklist"),
        ({"kind": "smart", "conditions": CONDITIONS, "blacklist": ["a:b"]}, "blacklist[0]"),
        ({"kind": "smart", "conditions": CONDITIONS, "blacklist": ["m"] * 10_001}, "blacklist"),
    ],
)
def test_malformed_blacklist_or_editable(fields: dict[str, Any], where: str) -> None:
    error = rejected("group.created", group_id="g", name="N", **fields)
    assert error.code == "invalid" and where in error.message


def test_segment_set_commands() -> None:
    defined = cmd("segment_set.defined", set_id="s", name="S", groups=["a", "b"], fallback="x")
    assert defined == SegmentSetDefined("s", "S", ("a", "b"), "x")
    updated = cmd("segment_set.updated", set_id="s", groups=["b"])
    assert updated == SegmentSetUpdated("s", groups=("b",))
    assert cmd("segment_set.deleted", set_id="s") == SegmentSetDeleted("s")


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"name": "S", "fallback": "x"}, "groups"),
        ({"name": "S", "groups": ["a"]}, "fallback"),
        ({"name": "S", "groups": [], "fallback": "x"}, "groups"),
        ({"name": "S", "groups": ["a"] * 101, "fallback": "x"}, "groups"),
        ({"name": "S", "groups": ["a", "a"], "fallback": "x"}, "twice"),
        ({"name": "S", "groups": ["a:b"], "fallback": "x"}, "groups[0]"),
        ({"name": "S", "groups": ["a"], "fallback": " "}, "fallback"),
        ({"groups": ["a"], "fallback": "x"}, "name"),
    ],
)
def test_malformed_segment_set(fields: dict[str, Any], where: str) -> None:
    error = rejected("segment_set.defined", set_id="s", **fields)
    assert error.code == "invalid" and where in error.message


def test_update_cannot_clear_the_name() -> None:
    assert rejected("group.updated", group_id="g", name=None).code == "invalid"


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"name": "P", "value_type": "string"}, "value_type"),
        ({"name": "P"}, "value_type"),
        ({"value_type": "text"}, "name"),
        ({"name": "P", "value_type": "text", "options": ["a"]}, "options"),
        ({"name": "P", "value_type": "single_select", "options": "a"}, "options"),
        ({"name": "P", "value_type": "single_select", "options": ["a", "b c"]}, "options[1]"),
    ],
)
def test_malformed_definitions(fields: dict[str, Any], where: str) -> None:
    for source in ("property", "question"):
        error = rejected(f"{source}.defined", **{f"{source}_id": "x"}, **fields)
        assert error.code == "invalid" and where in error.message


def test_option_removed_needs_an_option_id() -> None:
    assert "option" in rejected("property.option_removed", property_id="p").message


# -- slugs -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "slug"),
    [
        ("The Poool Team is SUPER nice!", "the-poool-team-is-super-nice"),
        ("already-a-slug", "already-a-slug"),
        ("  --Multiple   spaces -- and___underscores--  ", "multiple-spaces-and-underscores"),
        ("Équipe Crème Brûlée", "equipe-creme-brulee"),
        ("ﬁnance ①", "finance-1"),
        ("日本 team", "team"),
        ("!!!", ""),
        ("日本", ""),
    ],
)
def test_normalize_slug(text: str, slug: str) -> None:
    assert normalize_slug(text) == slug


def test_long_slugs_are_cut_without_a_trailing_hyphen() -> None:
    slug = normalize_slug("a" * (MAX_SLUG - 1) + " b")
    assert slug == "a" * (MAX_SLUG - 1)
