"""The contract's scenarios end to end: a real worker process, the real broker, real topics.

One worker serves the whole module; each test has its own space, so tests do not see each
other's groups or members. Expectations are on what consumers read: ``membership-changes``
(highest version per pair), ``membership-state`` and ``group-change-results``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from tests.integration.harness import Cluster, final_memberships, state_memberships
from tests.integration.scenario import Scenario

ACME = {"field": "profile.email", "op": "email_domain", "value": ["acme.com"]}


@pytest.fixture(scope="module")
def cluster(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root: Path = tmp_path_factory.mktemp("scenarios")
    world = Cluster(kafka_bootstrap, root, f"sc{uuid.uuid4().hex[:8]}")
    world.worker(0).start()
    yield world
    world.stop_all()


@pytest.fixture
def sc(cluster: Cluster, request: pytest.FixtureRequest) -> Scenario:
    return Scenario(cluster, f"s-{request.node.name[5:40]}-{uuid.uuid4().hex[:6]}")


def test_and_or_over_all_four_trigger_kinds(sc: Scenario) -> None:
    sc.define("property.defined", property_id="vip", name="VIP", value_type="boolean")
    sc.define(
        "question.defined",
        question_id="sport",
        name="Sport",
        value_type="single_select",
        options=["tennis", "chess"],
    )
    sc.define("group.created", group_id="coaches", name="Coaches", kind="static")
    conditions = {
        "all": [
            ACME,
            {
                "any": [
                    {"field": "property.vip", "op": "eq", "value": True},
                    {"field": "answer.sport", "op": "eq", "value": "tennis"},
                    {"field": "groups", "op": "has_any", "value": ["coaches"]},
                ]
            },
        ]
    }
    target = sc.define(
        "group.created", group_id="target", name="Target", kind="smart", conditions=conditions
    )
    assert sc.outcome(target) == "accepted"
    for member, email in [("m1", "a@acme.com"), ("m2", "b@sub.acme.com"), ("m3", "c@acme.com")]:
        sc.upsert(member, email=email, status="accepted")
    sc.upsert("m4", email="d@acme.com", status="accepted")
    sc.upsert("m5", email="e@other.org", status="accepted")
    sc.set_property("m1", "vip", True)
    sc.answer("m2", "sport", "TENNIS")
    sc.define("group.member_added", group_id="coaches", member_id="m3")
    sc.set_property("m5", "vip", True)
    sc.wait_members("target", {"m1", "m2", "m3"})
    assert sc.members("coaches") == {"m3"}

    sc.set_property("m1", "vip", False)
    sc.wait_members("target", {"m2", "m3"})
    assert sc.transitions("target", "m1") == [
        ("member.added", 1, "conditions_met"),
        ("member.removed", 2, "conditions_unmet"),
    ]
    added = next(e for e in sc.changes() if e["group_id"] == "target" and e["member_id"] == "m2")
    assert added["id"] == f"{sc.space}:target:m2:1"
    assert added["group"]["name"] == "Target" and added["group"]["kind"] == "smart"
    # m2 joined on whichever of its profile or its answer arrived second (topics are not
    # ordered with each other); either way the cause names that input exactly.
    cause = added["cause"]
    assert cause["kind"] == "event" and cause["topic"] in {"member-changes", "form-answers"}
    assert {"event_id", "partition", "offset"} <= set(cause)


def test_blacklist_and_unblacklist(sc: Scenario) -> None:
    sc.define("group.created", group_id="g", name="G", kind="smart", conditions={"all": [ACME]})
    sc.upsert("m1", email="x@acme.com", status="accepted")
    sc.wait_members("g", {"m1"})
    sc.define("group.blacklisted", group_id="g", member_id="m1")
    sc.wait_members("g", set())
    sc.upsert("m1", first_name="still matching")
    twice = sc.define("group.blacklisted", group_id="g", member_id="m1")
    assert sc.outcome(twice) == "accepted"
    sc.define("group.unblacklisted", group_id="g", member_id="m1")
    sc.wait_members("g", {"m1"})
    first, *rest = sc.transitions("g", "m1")
    # The member may be processed before or after the group's fan-out reaches its partition.
    assert first[:2] == ("member.added", 1) and first[2] in {"conditions_met", "group_created"}
    assert rest == [("member.removed", 2, "blacklisted"), ("member.added", 3, "unblacklisted")]


def test_status_eligibility_both_ways(sc: Scenario) -> None:
    sc.define("group.created", group_id="g", name="G", kind="smart", conditions={"all": [ACME]})
    sc.upsert("m1", email="x@acme.com", status="declined")
    sc.upsert("m2", email="y@acme.com", status="pending")
    sc.wait_members("g", {"m2"})
    sc.upsert("m1", status="invited")
    sc.upsert("m2", status="unsubscribed")
    sc.wait_members("g", {"m1"})
    assert sc.transitions("g", "m2")[-1] == ("member.removed", 2, "ineligible_status")


def test_manual_membership_rules_and_immutable_triggers(sc: Scenario) -> None:
    sc.define("group.created", group_id="smart", name="S", kind="smart", conditions={"all": [ACME]})
    sc.define("group.created", group_id="static", name="T", kind="static")
    add_to_smart = sc.define("group.member_added", group_id="smart", member_id="m1")
    blacklist_static = sc.define("group.blacklisted", group_id="static", member_id="m1")
    change_rules = sc.define("group.updated", group_id="smart", conditions={"all": []})
    change_kind = sc.define("group.updated", group_id="smart", kind="static")
    rename = sc.define("group.updated", group_id="smart", name="Renamed")
    missing = sc.define("group.activated", group_id="nope")
    again = sc.define("group.created", group_id="static", name="T2", kind="static")
    assert sc.outcome(add_to_smart) == "not_static"
    assert sc.outcome(blacklist_static) == "not_smart"
    assert sc.outcome(change_rules) == "triggers_immutable"
    assert sc.outcome(change_kind) == "triggers_immutable"
    assert sc.outcome(rename) == "accepted"
    assert sc.outcome(missing) == "group_not_found"
    assert sc.outcome(again) == "group_exists"
    sc.define("group.member_added", group_id="static", member_id="m1")
    sc.wait_members("static", {"m1"})
    assert sc.members("smart") == set()


def test_deletion_guards(sc: Scenario) -> None:
    sc.define(
        "property.defined",
        property_id="tier",
        name="Tier",
        value_type="single_select",
        options=["gold", "silver"],
    )
    sc.define("question.defined", question_id="q", name="Q", value_type="text")
    sc.define("group.created", group_id="base", name="B", kind="static")
    sc.define(
        "group.created",
        group_id="g",
        name="G",
        kind="smart",
        conditions={
            "all": [
                {"field": "property.tier", "op": "eq", "value": "gold"},
                {"field": "answer.q", "op": "is_set"},
                {"field": "groups", "op": "has_any", "value": ["base"]},
            ]
        },
    )
    assert sc.outcome(sc.define("property.deleted", property_id="tier")) == "property_in_use"
    assert (
        sc.outcome(sc.define("property.updated", property_id="tier", value_type="text"))
        == "property_in_use"
    )
    assert (
        sc.outcome(sc.define("property.option_removed", property_id="tier", option="gold"))
        == "option_in_use"
    )
    assert (
        sc.outcome(sc.define("property.option_removed", property_id="tier", option="silver"))
        == "accepted"
    )
    assert sc.outcome(sc.define("question.deleted", question_id="q")) == "question_in_use"
    assert sc.outcome(sc.define("group.deleted", group_id="base")) == "group_in_use"
    bad_ref = sc.define(
        "group.created",
        group_id="h",
        name="H",
        kind="smart",
        conditions={"all": [{"field": "property.nope", "op": "is_set"}]},
    )
    assert sc.outcome(bad_ref) == "unknown_reference"
    assert sc.outcome(sc.define("group.deleted", group_id="g")) == "accepted"
    assert sc.outcome(sc.define("property.deleted", property_id="tier")) == "accepted"
    assert sc.outcome(sc.define("group.deleted", group_id="base")) == "accepted"


def test_deactivate_reactivate_and_delete(sc: Scenario) -> None:
    sc.define("group.created", group_id="g", name="G", kind="smart", conditions={"all": [ACME]})
    sc.define("group.created", group_id="t", name="T", kind="static")
    sc.upsert("m1", email="x@acme.com", status="accepted")
    sc.upsert("m2", email="y@acme.com", status="accepted")
    sc.define("group.member_added", group_id="t", member_id="m2")
    sc.wait_members("g", {"m1", "m2"})
    sc.wait_members("t", {"m2"})
    sc.define("group.deactivated", group_id="g")
    sc.define("group.deactivated", group_id="t")
    sc.wait_members("g", set())
    sc.wait_members("t", set())
    sc.upsert("m3", email="z@acme.com", status="accepted")  # joins nothing while inactive
    sc.define("group.activated", group_id="g")
    sc.define("group.activated", group_id="t")
    sc.wait_members("g", {"m1", "m2", "m3"})
    sc.wait_members("t", {"m2"})  # the explicit list survived deactivation
    assert sc.transitions("t", "m2") == [
        ("member.added", 1, "manual"),
        ("member.removed", 2, "group_deactivated"),
        ("member.added", 3, "group_activated"),
    ]
    sc.define("group.deleted", group_id="g")
    sc.wait_members("g", set())
    assert sc.transitions("g", "m3")[-1] == ("member.removed", 2, "group_deleted")
    # A re-created group with the same id starts clean: old static members do not come back.
    sc.define("group.deleted", group_id="t")
    sc.wait_members("t", set())
    sc.define("group.created", group_id="t", name="T again", kind="static")
    sc.define("group.member_added", group_id="t", member_id="m1")
    sc.wait_members("t", {"m1"})
    assert sc.members("t") == {"m1"}


def test_backfill_of_a_new_group_over_existing_members(sc: Scenario) -> None:
    # More members than one scan chunk holds on a partition: the backfill continues in steps.
    batch = [
        {
            "id": f"{sc.space}-bf{i}",
            "type": "member.upserted",
            "space": sc.space,
            "member_id": f"u{i}",
            "profile": {
                "email": f"u{i}@acme.com" if i % 3 == 0 else f"u{i}@other.org",
                "status": "accepted",
            },
        }
        for i in range(1200)
    ]
    sc.cluster.produce("member-changes", batch)
    sc.define("group.created", group_id="g", name="G", kind="smart", conditions={"all": [ACME]})
    expected = {f"u{i}" for i in range(1200) if i % 3 == 0}
    sc.wait_members("g", expected, timeout=120)
    reasons = {e["reason"] for e in sc.changes() if e["group_id"] == "g"}
    assert reasons <= {"group_created", "conditions_met"}
    # The backfill's cause is the definition, named by the contract topic (no prefix).
    causes = [e["cause"] for e in sc.changes() if e["reason"] == "group_created"]
    assert causes and {(c["kind"], c["topic"]) for c in causes} == {("definition", "group-changes")}


def test_group_of_groups_cascade_three_deep(sc: Scenario) -> None:
    sc.define("group.created", group_id="a", name="A", kind="smart", conditions={"all": [ACME]})
    for child, parent in [("b", "a"), ("c", "b"), ("d", "c")]:
        sc.define(
            "group.created",
            group_id=child,
            name=child.upper(),
            kind="smart",
            conditions={"all": [{"field": "groups", "op": "has_any", "value": [parent]}]},
        )
    sc.upsert("m1", email="x@acme.com", status="accepted")
    sc.wait_members("d", {"m1"})
    # From here every group is in place on the member's partition: one input, one cascade.
    sc.upsert("m1", email="x@elsewhere.org")
    sc.wait_members("d", set())
    assert sc.members("a") == sc.members("b") == sc.members("c") == set()
    sc.upsert("m1", email="x@eu.acme.com")
    sc.wait_members("d", {"m1"})
    latest = {
        e["group_id"]: e for e in sc.changes() if e["member_id"] == "m1" and e["version"] == 3
    }
    assert set(latest) == {"a", "b", "c", "d"}
    assert {e["reason"] for e in latest.values()} == {"conditions_met"}
    assert len({orjson.dumps(e["cause"]) for e in latest.values()}) == 1  # one shared cause
    removed = [e for e in sc.changes() if e["member_id"] == "m1" and e["version"] == 2]
    assert {e["group_id"] for e in removed} == {"a", "b", "c", "d"}
    assert len({e["cause"]["event_id"] for e in removed}) == 1


def test_erasure_leaves_every_group_and_forgets(sc: Scenario) -> None:
    sc.define("group.created", group_id="g", name="G", kind="smart", conditions={"all": [ACME]})
    sc.define("group.created", group_id="t", name="T", kind="static")
    sc.upsert("m1", email="x@acme.com", status="accepted")
    sc.define("group.member_added", group_id="t", member_id="m1")
    sc.define("group.blacklisted", group_id="g", member_id="m1")
    sc.wait_members("t", {"m1"})
    sc.delete_member("m1")
    sc.wait_members("t", set())
    assert sc.transitions("t", "m1")[-1] == ("member.removed", 2, "member_deleted")
    # A later upsert starts a new member: no blacklist, no static membership remembered.
    sc.upsert("m1", email="x@acme.com", status="accepted")
    sc.wait_members("g", {"m1"})
    assert sc.members("t") == set()
    versions = [v for (_, v, _) in sc.transitions("g", "m1")]
    assert versions == sorted(set(versions))  # ids never repeat across erasure


def test_membership_state_mirrors_the_changes(sc: Scenario, cluster: Cluster) -> None:
    sc.define("group.created", group_id="g", name="G", kind="smart", conditions={"all": [ACME]})
    sc.upsert("m1", email="x@acme.com", status="accepted")
    sc.upsert("m2", email="y@acme.com", status="accepted")
    sc.wait_members("g", {"m1", "m2"})
    sc.upsert("m2", status="rejected")
    sc.wait_members("g", {"m1"})
    mine = {
        pair for pair in state_memberships(cluster.read("membership-state")) if pair[0] == sc.space
    }
    assert mine == final_memberships(sc.changes()) == {(sc.space, "g", "m1")}
    # The state's "since" is the very instant (same text) of the member.added that started it.
    state = {
        m.key.decode(): orjson.loads(m.value)
        for m in cluster.read("membership-state")
        if m.value is not None and m.key.decode().startswith(f"{sc.space}:")
    }
    added = {
        f"{e['space']}:{e['group_id']}:{e['member_id']}": e
        for e in sc.changes()
        if e["type"] == "member.added"
    }
    for key, value in state.items():
        assert value["since"] == added[key]["at"]
        assert value["version"] == added[key]["version"]
