"""SpaceCatalog: every command, every rejection code of contract §3, guards, slugs, persistence."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from smartgroups.core.catalog import Group, Outcome, SpaceCatalog
from smartgroups.core.commands import Resource, parse_command
from smartgroups.core.fields import StaticFieldSchema


def trig(field: str, op: str, value: Any = None) -> dict[str, Any]:
    node: dict[str, Any] = {"field": field, "op": op}
    if value is not None:
        node["value"] = value
    return node


def do(catalog: SpaceCatalog, command_type: str, /, **fields: Any) -> Outcome:
    return catalog.apply(parse_command({"id": "e", "type": command_type, "space": "s", **fields}))


def ok(catalog: SpaceCatalog, command_type: str, /, **fields: Any) -> Outcome:
    outcome = do(catalog, command_type, **fields)
    assert outcome.accepted, (outcome.code, outcome.message)
    return outcome


def code(catalog: SpaceCatalog, command_type: str, /, **fields: Any) -> str | None:
    outcome = do(catalog, command_type, **fields)
    assert not outcome.accepted and outcome.effect is None
    assert outcome.message
    return outcome.code


def smart(catalog: SpaceCatalog, group_id: str, *triggers: dict[str, Any], **extra: Any) -> Outcome:
    return do(
        catalog,
        "group.created",
        group_id=group_id,
        name=extra.pop("name", group_id.upper()),
        kind="smart",
        conditions={"all": list(triggers)},
        **extra,
    )


def static(catalog: SpaceCatalog, group_id: str, **extra: Any) -> Outcome:
    name = extra.pop("name", group_id.upper())
    return do(catalog, "group.created", group_id=group_id, name=name, kind="static", **extra)


@pytest.fixture
def cat() -> SpaceCatalog:
    catalog = SpaceCatalog()
    ok(
        catalog,
        "property.defined",
        property_id="plan",
        name="Plan",
        value_type="single_select",
        options=["free", "Pro", "team"],
    )
    ok(catalog, "property.defined", property_id="age", name="Age", value_type="number")
    ok(
        catalog,
        "question.defined",
        question_id="sport",
        name="Sport",
        value_type="multi_select",
        options=["tennis", "chess"],
    )
    return catalog


# -- groups ------------------------------------------------------------------------------------


def test_create_smart_group_parses_conditions_against_the_definitions(cat: SpaceCatalog) -> None:
    outcome = smart(cat, "pros", trig("property.plan", "eq", "pro"), trig("property.age", "gt", 30))
    assert outcome == Outcome(True, group=outcome.group, effect="group_created")
    group = outcome.group
    assert group is not None and group.kind == "smart" and group.active
    assert group.references is not None and group.references.properties == {"plan", "age"}
    assert cat.groups["pros"] is group


def test_create_static_group(cat: SpaceCatalog) -> None:
    group = static(cat, "staff", resources=[{"type": "forum", "id": "f1"}]).group
    assert group is not None and group.conditions is None and group.references is None
    assert group.resources == (Resource("forum", "f1"),)


def test_group_exists(cat: SpaceCatalog) -> None:
    static(cat, "g")
    assert code(cat, "group.created", group_id="g", name="again", kind="static") == "group_exists"


@pytest.mark.parametrize(
    "command",
    [
        {"type": "group.updated", "name": "x"},
        {"type": "group.deactivated"},
        {"type": "group.activated"},
        {"type": "group.deleted"},
        {"type": "group.member_added", "member_id": "m"},
        {"type": "group.member_removed", "member_id": "m"},
        {"type": "group.blacklisted", "member_id": "m"},
        {"type": "group.unblacklisted", "member_id": "m"},
    ],
)
def test_group_not_found(cat: SpaceCatalog, command: dict[str, Any]) -> None:
    fields = {k: v for k, v in command.items() if k != "type"}
    assert code(cat, command["type"], group_id="ghost", **fields) == "group_not_found"


def test_conditions_errors_are_rejected_with_their_code(cat: SpaceCatalog) -> None:
    outcome = smart(cat, "g", trig("property.nope", "eq", "x"))
    assert outcome.code == "unknown_reference" and "nope" in (outcome.message or "")
    assert smart(cat, "g", trig("answer.nope", "is_set")).code == "unknown_reference"
    assert smart(cat, "g", trig("groups", "has_any", ["ghost"])).code == "unknown_reference"
    assert smart(cat, "g", trig("property.age", "contains", "x")).code == "invalid"
    assert smart(cat, "g", trig("property.plan", "eq", "gold")).code == "invalid"
    assert "g" not in cat.groups


def test_a_group_cannot_name_itself(cat: SpaceCatalog) -> None:
    assert smart(cat, "g", trig("groups", "has_any", ["g"])).code == "unknown_reference"


def test_triggers_immutable_is_raised_by_the_parser() -> None:
    from smartgroups.errors import RuleError

    with pytest.raises(RuleError) as caught:
        parse_command({"type": "group.updated", "group_id": "g", "kind": "static"})
    assert caught.value.code == "triggers_immutable"


def test_update_changes_metadata_only(cat: SpaceCatalog) -> None:
    created = smart(cat, "g", trig("property.age", "gt", 1), name="Old", icon="i").group
    outcome = ok(
        cat,
        "group.updated",
        group_id="g",
        name="New",
        description="d",
        icon=None,
        resources=[{"type": "live", "id": "l"}],
    )
    assert outcome.effect == "group_updated" and outcome.group is not None
    assert created is not None and outcome.group.conditions == created.conditions
    assert (outcome.group.name, outcome.group.description, outcome.group.icon) == ("New", "d", None)
    assert outcome.group.slug == "old"  # renaming keeps the slug
    assert cat.groups["g"] == outcome.group


def test_update_that_changes_nothing_is_a_no_op(cat: SpaceCatalog) -> None:
    static(cat, "g", name="Same")
    assert ok(cat, "group.updated", group_id="g", name="Same").effect is None
    assert ok(cat, "group.updated", group_id="g").effect is None


def test_deactivate_and_activate(cat: SpaceCatalog) -> None:
    static(cat, "g")
    assert ok(cat, "group.deactivated", group_id="g").effect == "group_deactivated"
    assert not cat.groups["g"].active
    assert ok(cat, "group.deactivated", group_id="g").effect is None
    outcome = ok(cat, "group.activated", group_id="g")
    assert outcome.effect == "group_activated" and outcome.group is not None
    assert outcome.group.active
    assert ok(cat, "group.activated", group_id="g").effect is None


def test_delete_returns_the_group_as_it_was_and_frees_id_and_slug(cat: SpaceCatalog) -> None:
    static(cat, "g", slug="team")
    outcome = ok(cat, "group.deleted", group_id="g")
    assert outcome.effect == "group_deleted" and outcome.group is not None
    assert outcome.group.group_id == "g"
    assert "g" not in cat.groups
    assert static(cat, "g2", slug="team").accepted
    assert smart(cat, "g", trig("property.age", "lt", 3)).accepted


def test_member_commands_on_static_groups(cat: SpaceCatalog) -> None:
    static(cat, "s")
    for command_type, effect in (
        ("group.member_added", "member_added"),
        ("group.member_added", "member_added"),
        ("group.member_removed", "member_removed"),
    ):
        outcome = ok(cat, command_type, group_id="s", member_id="m")
        assert outcome.effect == effect and outcome.group == cat.groups["s"]
    smart(cat, "sm", trig("property.age", "gt", 1))
    assert code(cat, "group.member_added", group_id="sm", member_id="m") == "not_static"
    assert code(cat, "group.member_removed", group_id="sm", member_id="m") == "not_static"


def test_blacklist_commands_on_smart_groups(cat: SpaceCatalog) -> None:
    smart(cat, "sm", trig("property.age", "gt", 1))
    assert ok(cat, "group.blacklisted", group_id="sm", member_id="m").effect == "blacklisted"
    assert ok(cat, "group.unblacklisted", group_id="sm", member_id="m").effect == "unblacklisted"
    static(cat, "s")
    assert code(cat, "group.blacklisted", group_id="s", member_id="m") == "not_smart"
    assert code(cat, "group.unblacklisted", group_id="s", member_id="m") == "not_smart"


def test_member_commands_on_an_inactive_group_are_accepted(cat: SpaceCatalog) -> None:
    static(cat, "s")
    ok(cat, "group.deactivated", group_id="s")
    assert ok(cat, "group.member_added", group_id="s", member_id="m").effect == "member_added"


# -- slugs -------------------------------------------------------------------------------------


def test_explicit_slug_is_normalised_and_unique(cat: SpaceCatalog) -> None:
    group = static(cat, "a", slug="The Poool Team is SUPER nice!").group
    assert group is not None and group.slug == "the-poool-team-is-super-nice"
    assert (
        code(
            cat,
            "group.created",
            group_id="b",
            name="B",
            kind="static",
            slug="the POOOL team is super nice",
        )
        == "slug_taken"
    )
    static(cat, "c", slug="other")
    assert code(cat, "group.updated", group_id="c", slug="the-poool-team-is-super-nice") == (
        "slug_taken"
    )
    assert ok(cat, "group.updated", group_id="c", slug="Other").effect is None  # its own slug


def test_derived_slugs_never_collide(cat: SpaceCatalog) -> None:
    slugs = [static(cat, f"g{i}", name="Équipe Marketing").group for i in range(3)]
    assert [g.slug for g in slugs if g] == [
        "equipe-marketing",
        "equipe-marketing-2",
        "equipe-marketing-3",
    ]
    assert (static(cat, "x_y", name="日本").group or Group("", "", "static", "")).slug == "x-y"
    # an explicit slug equal to a derived one is taken
    assert (
        code(cat, "group.created", group_id="h", name="H", kind="static", slug="equipe-marketing-2")
        == "slug_taken"
    )


def test_derived_slug_falls_back_to_the_group_id_after_100_suffixes() -> None:
    catalog = SpaceCatalog()
    slugs = [
        (static(catalog, f"g{i}", name="Team").group or Group("", "", "static", "")).slug
        for i in range(102)
    ]
    assert slugs[:3] == ["team", "team-2", "team-3"] and slugs[99] == "team-100"
    assert slugs[100:] == ["team-g100", "team-g101"]


def test_null_slug_on_update_derives_it_again(cat: SpaceCatalog) -> None:
    static(cat, "g", name="First", slug="custom")
    outcome = ok(cat, "group.updated", group_id="g", name="Second Name", slug=None)
    assert outcome.group is not None and outcome.group.slug == "second-name"
    assert cat.group_by_slug("custom") is None
    assert cat.group_by_slug("second-name") == outcome.group
    assert static(cat, "h", slug="custom").accepted  # the old slug is free again


# -- definitions -------------------------------------------------------------------------------


def test_definition_commands(cat: SpaceCatalog) -> None:
    assert code(cat, "property.defined", property_id="plan", name="P", value_type="text") == (
        "property_exists"
    )
    assert code(cat, "question.defined", question_id="sport", name="S", value_type="text") == (
        "question_exists"
    )
    for source, ident in (("property", "nope"), ("question", "nope")):
        key = f"{source}_id"
        assert code(cat, f"{source}.updated", **{key: ident}, name="x") == f"{source}_not_found"
        assert code(cat, f"{source}.deleted", **{key: ident}) == f"{source}_not_found"
        assert code(cat, f"{source}.option_removed", **{key: ident}, option="a") == (
            f"{source}_not_found"
        )
    assert ok(cat, "property.updated", property_id="age", name="Years").effect == "definition"
    assert cat.properties["age"].name == "Years"
    assert ok(cat, "property.updated", property_id="age", name="Years").effect is None
    assert ok(cat, "property.deleted", property_id="age").effect == "definition"
    assert "age" not in cat.properties
    assert ok(cat, "property.defined", property_id="age", name="A", value_type="date").effect == (
        "definition"
    )


def test_options_updates_and_removal(cat: SpaceCatalog) -> None:
    ok(cat, "property.updated", property_id="plan", options=["free", "pro", "team", "ent"])
    assert cat.properties["plan"].options == ("free", "pro", "team", "ent")
    assert ok(cat, "property.option_removed", property_id="plan", option="ENT").effect == (
        "definition"
    )
    assert cat.properties["plan"].options == ("free", "pro", "team")
    assert ok(cat, "property.option_removed", property_id="plan", option="gone").effect is None
    assert code(cat, "property.updated", property_id="age", options=["a"]) == "invalid"


def test_type_change_keeps_options_between_select_types(cat: SpaceCatalog) -> None:
    ok(cat, "property.updated", property_id="plan", value_type="multi_select")
    assert cat.properties["plan"].options == ("free", "Pro", "team")
    ok(cat, "property.updated", property_id="plan", value_type="text")
    assert cat.properties["plan"].options is None


# -- guards through the reverse indexes ---------------------------------------------------------


def test_property_in_use_blocks_delete_and_type_change(cat: SpaceCatalog) -> None:
    smart(cat, "g", trig("property.age", "gt", 18))
    assert code(cat, "property.deleted", property_id="age") == "property_in_use"
    assert code(cat, "property.updated", property_id="age", value_type="text") == (
        "property_in_use"
    )
    assert ok(cat, "property.updated", property_id="age", name="Renamed").effect == "definition"
    assert ok(cat, "property.updated", property_id="age", value_type="number").effect is None


def test_question_in_use(cat: SpaceCatalog) -> None:
    smart(cat, "g", trig("answer.sport", "is_set"))
    assert code(cat, "question.deleted", question_id="sport") == "question_in_use"
    assert code(cat, "question.updated", question_id="sport", value_type="single_select") == (
        "question_in_use"
    )


def test_option_in_use_by_removal_or_options_update(cat: SpaceCatalog) -> None:
    smart(
        cat,
        "g",
        trig("property.plan", "in", ["PRO", "team"]),
        trig("answer.sport", "has_any", ["chess"]),
    )
    assert code(cat, "property.option_removed", property_id="plan", option="pro") == (
        "option_in_use"
    )
    assert code(cat, "property.updated", property_id="plan", options=["free", "pro"]) == (
        "option_in_use"
    )
    assert code(cat, "question.option_removed", question_id="sport", option="Chess") == (
        "option_in_use"
    )
    assert ok(cat, "property.option_removed", property_id="plan", option="free").accepted
    assert ok(cat, "property.updated", property_id="plan", options=["pro", "team", "x"]).accepted
    assert ok(cat, "question.option_removed", question_id="sport", option="tennis").accepted


def test_group_in_use(cat: SpaceCatalog) -> None:
    static(cat, "base")
    smart(cat, "derived", trig("groups", "has_any", ["base"]))
    outcome = do(cat, "group.deleted", group_id="base")
    assert outcome.code == "group_in_use" and "derived" in (outcome.message or "")
    assert cat.users_of_group("base") == {"derived"}


def test_deactivated_groups_still_guard_and_can_be_named(cat: SpaceCatalog) -> None:
    smart(cat, "g", trig("property.age", "gt", 18))
    ok(cat, "group.deactivated", group_id="g")
    assert code(cat, "property.deleted", property_id="age") == "property_in_use"
    assert smart(cat, "h", trig("groups", "has_none", ["g"])).accepted
    assert code(cat, "group.deleted", group_id="g") == "group_in_use"


def test_what_only_a_deleted_group_used_is_free_again(cat: SpaceCatalog) -> None:
    static(cat, "base")
    smart(
        cat,
        "g",
        trig("property.age", "gt", 1),
        trig("property.plan", "eq", "pro"),
        trig("answer.sport", "has_all", ["chess"]),
        trig("groups", "has_any", ["base"]),
    )
    smart(cat, "h", trig("property.plan", "eq", "team"))
    ok(cat, "group.deleted", group_id="g")
    assert ok(cat, "property.deleted", property_id="age").accepted
    assert ok(cat, "property.option_removed", property_id="plan", option="pro").accepted
    assert code(cat, "property.option_removed", property_id="plan", option="team") == (
        "option_in_use"
    )
    assert ok(cat, "question.deleted", question_id="sport").accepted
    assert ok(cat, "group.deleted", group_id="base").accepted


def test_a_rejected_command_changes_nothing(cat: SpaceCatalog) -> None:
    smart(cat, "g", trig("property.plan", "eq", "pro"))
    before = json.dumps(cat.to_json(), sort_keys=True)
    do(cat, "property.updated", property_id="plan", name="Renamed", options=["free"])
    do(cat, "group.created", group_id="g", name="x", kind="static")
    smart(cat, "bad", trig("property.ghost", "is_set"), slug="fresh")
    assert json.dumps(cat.to_json(), sort_keys=True) == before
    assert static(cat, "ok", slug="fresh").accepted


# -- persistence -------------------------------------------------------------------------------


def test_catalog_json_round_trip_keeps_groups_definitions_and_guards(cat: SpaceCatalog) -> None:
    static(cat, "base", slug="Base Team", resources=[{"type": "course", "id": "c"}])
    smart(cat, "g", trig("property.plan", "eq", "pro"), trig("groups", "has_any", ["base"]))
    ok(cat, "group.deactivated", group_id="g")
    doc = json.loads(json.dumps(cat.to_json()))
    copy = SpaceCatalog.from_json(doc)
    assert copy.groups == cat.groups
    assert copy.properties == cat.properties and copy.questions == cat.questions
    assert copy.to_json() == doc
    assert code(copy, "group.deleted", group_id="base") == "group_in_use"
    assert code(copy, "property.option_removed", property_id="plan", option="pro") == (
        "option_in_use"
    )
    assert code(copy, "group.created", group_id="x", name="x", kind="static", slug="base-team") == (
        "slug_taken"
    )


def test_group_rebuilds_from_json_without_the_catalog(cat: SpaceCatalog) -> None:
    group = smart(
        cat,
        "g",
        trig("property.plan", "in", ["pro", "team"]),
        trig("answer.sport", "has_any", ["tennis"]),
    ).group
    assert group is not None
    doc = json.loads(json.dumps(group.to_json()))
    assert Group.from_json(doc) == group
    assert isinstance(group.schema, StaticFieldSchema)
    assert set(group.schema.properties) == {"plan"}  # only what the conditions name


def test_loading_a_catalog_grows_linearly_with_its_groups() -> None:
    """10,000 groups load back whole, and not in quadratic time: timed beside 1,000 groups in
    the same run (a ratio, so a loaded machine does not decide the verdict)."""

    def catalog_of(n: int) -> SpaceCatalog:
        catalog = SpaceCatalog()
        for i in range(20):
            ok(catalog, "property.defined", property_id=f"p{i}", name=f"P{i}", value_type="number")
        for i in range(n):
            smart(
                catalog,
                f"g{i}",
                trig(f"property.p{i % 20}", "gt", i),
                {
                    "any": [
                        trig("profile.email", "email_domain", ["acme.com"]),
                        trig("profile.tags", "has_any", ["vip"]),
                    ]
                },
            )
        return catalog

    def load_seconds(catalog: SpaceCatalog, n: int) -> float:
        doc = json.loads(json.dumps(catalog.to_json()))
        started = time.process_time()
        copy = SpaceCatalog.from_json(doc)
        elapsed = time.process_time() - started
        assert len(copy.groups) == n
        return elapsed

    small, large = catalog_of(1_000), catalog_of(10_000)
    large_s = min(load_seconds(large, 10_000) for _ in range(3))
    small_s = min(load_seconds(small, 1_000) for _ in range(5))
    ratio = large_s / max(small_s, 1e-6)
    assert ratio < 40, f"10x the groups took {ratio:.0f}x the time (quadratic: 100x)"


# -- editable groups (contract §3 group.updated conditions) --------------------------------------


def test_conditions_of_a_group_not_created_editable_never_change(cat: SpaceCatalog) -> None:
    smart(cat, "g", trig("property.age", "gt", 18))
    static(cat, "st")
    new = {"all": [trig("property.age", "gt", 30)]}
    assert code(cat, "group.updated", group_id="g", conditions=new) == "triggers_immutable"
    same = cat.groups["g"].conditions_raw
    assert code(cat, "group.updated", group_id="g", conditions=same) == "triggers_immutable"
    assert code(cat, "group.updated", group_id="st", conditions=new) == "triggers_immutable"
    assert code(cat, "group.updated", group_id="nope", conditions=new) == "group_not_found"


def test_an_edit_replaces_the_tree_and_the_guards_follow_it(cat: SpaceCatalog) -> None:
    ok_created = smart(cat, "g", trig("property.plan", "eq", "pro"), editable=True)
    assert ok_created.group is not None and ok_created.group.editable
    assert code(cat, "property.option_removed", property_id="plan", option="pro") == (
        "option_in_use"
    )
    new = {"any": [trig("answer.sport", "has_any", ["chess"]), trig("property.age", "gt", 3)]}
    edited = ok(cat, "group.updated", group_id="g", conditions=new, name="G2")
    assert edited.effect == "group_edited" and edited.group is not None
    assert edited.group.name == "G2" and edited.group.conditions_raw == new
    # what only the old tree named is free; what the new one names is guarded
    ok(cat, "property.option_removed", property_id="plan", option="pro")
    assert code(cat, "question.option_removed", question_id="sport", option="chess") == (
        "option_in_use"
    )
    assert code(cat, "property.deleted", property_id="age") == "property_in_use"
    # the same tree again is a no-op; validation is as at creation
    assert ok(cat, "group.updated", group_id="g", conditions=new).effect is None
    bad = {"all": [trig("property.nope", "eq", 1)]}
    assert code(cat, "group.updated", group_id="g", conditions=bad) == "unknown_reference"
    assert code(cat, "group.updated", group_id="g", conditions=None) == "invalid"
    assert code(cat, "group.updated", group_id="g", conditions={"all": 3}) == "invalid"
    assert cat.groups["g"].conditions_raw == new
    # the edited tree survives a round trip, editable included
    again = SpaceCatalog.from_json(json.loads(json.dumps(cat.to_json())))
    assert again.groups["g"] == cat.groups["g"]


def test_an_edit_that_would_make_a_loop_is_cycle(cat: SpaceCatalog) -> None:
    smart(cat, "a", trig("property.age", "gt", 1), editable=True)
    smart(cat, "b", trig("groups", "has_any", ["a"]))
    smart(cat, "c", trig("groups", "has_all", ["b"]))
    smart(cat, "d", trig("property.age", "gt", 2))
    loop = {"all": [trig("groups", "has_any", ["c"])]}
    outcome = do(cat, "group.updated", group_id="a", conditions=loop)
    assert not outcome.accepted and outcome.code == "cycle"
    assert outcome.message is not None and "'a' -> 'c' -> 'b' -> 'a'" in outcome.message
    itself = {"all": [trig("groups", "has_any", ["a"])]}
    assert code(cat, "group.updated", group_id="a", conditions=itself) == "unknown_reference"
    # naming an unrelated group is fine, and then that group is in use
    ok(cat, "group.updated", group_id="a", conditions={"all": [trig("groups", "has_any", ["d"])]})
    assert code(cat, "group.deleted", group_id="d") == "group_in_use"


# -- segment sets (contract §9) ------------------------------------------------------------------


def test_segment_set_codes_and_guards(cat: SpaceCatalog) -> None:
    smart(cat, "a", trig("property.age", "gt", 1))
    static(cat, "b")
    fields = {"name": "Plan", "groups": ["a", "b"], "fallback": "native"}
    defined = ok(cat, "segment_set.defined", set_id="s", **fields)
    assert defined.effect == "segment_set_defined" and defined.segment_set is not None
    assert defined.segment_set.groups == ("a", "b")
    assert code(cat, "segment_set.defined", set_id="s", **fields) == "segment_set_exists"
    missing = {**fields, "groups": ["a", "zz"]}
    assert code(cat, "segment_set.defined", set_id="t", **missing) == "unknown_reference"
    assert code(cat, "segment_set.updated", set_id="t", name="X") == "segment_set_not_found"
    assert code(cat, "segment_set.deleted", set_id="t") == "segment_set_not_found"
    assert code(cat, "segment_set.updated", set_id="s", groups=["zz"]) == "unknown_reference"
    assert code(cat, "group.deleted", group_id="a") == "group_in_use"
    ok(cat, "group.deactivated", group_id="a")  # a set may name an inactive group
    assert ok(cat, "segment_set.updated", set_id="s", name="Plan").effect is None
    assert ok(cat, "segment_set.updated", set_id="s", groups=["b"]).effect == (
        "segment_set_updated"
    )
    ok(cat, "group.deleted", group_id="a")  # only the old list named it
    again = SpaceCatalog.from_json(json.loads(json.dumps(cat.to_json())))
    assert again.segment_sets == cat.segment_sets
    assert code(again, "group.deleted", group_id="b") == "group_in_use"
    assert ok(again, "segment_set.deleted", set_id="s").effect == "segment_set_deleted"
    ok(again, "group.deleted", group_id="b")
