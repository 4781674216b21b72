"""Randomized: random events in, final memberships out equal a reference fold of the inputs.

The reference is written here from the contract alone, in plain Python, over groups simple
enough to state by hand: a domain rule, a property rule, an answer rule, a group-of-groups rule,
a static group, and blacklists. Inputs of different topics reach the worker in no particular
order relative to each other; the contract promises convergence regardless, so the reference
folds each topic's events per member in their own order.
"""

from __future__ import annotations

import random
from typing import Any

from tests.integration.harness import Cluster, final_memberships, state_memberships
from tests.integration.scenario import Scenario, event
from tests.integration.test_worker_faults import assert_clean_history

SPACE = "rnd"
MEMBERS = [f"m{i}" for i in range(12)]
STATUSES = ["accepted", "invited", "pending", "declined", "deactivated"]
GROUPS: dict[str, dict[str, Any]] = {
    "acme": {"all": [{"field": "profile.email", "op": "email_domain", "value": ["acme.com"]}]},
    "vip": {"all": [{"field": "property.vip", "op": "eq", "value": True}]},
    "tennis": {"any": [{"field": "answer.sport", "op": "eq", "value": "tennis"}]},
    "both": {
        "all": [
            {"field": "groups", "op": "has_any", "value": ["acme"]},
            {"field": "groups", "op": "has_all", "value": ["vip"]},
        ]
    },
}


def reference(
    profiles: dict[str, dict[str, Any]],
    vip: dict[str, Any],
    sport: dict[str, Any],
    static: dict[str, bool],
    blacklisted: dict[str, bool],
) -> set[tuple[str, str, str]]:
    out = set()
    for m in MEMBERS:
        profile = profiles.get(m, {})
        eligible = profile.get("status") in ("accepted", "invited", "pending")
        email = profile.get("email") or ""
        smart = {
            "acme": email.endswith("@acme.com") or email.endswith(".acme.com"),
            "vip": vip.get(m) is True,
            "tennis": isinstance(sport.get(m), str) and sport[m].casefold() == "tennis",
        }
        member_of = {g for g, ok in smart.items() if ok and eligible and not blacklisted.get(m)}
        if static.get(m):
            member_of.add("static")
        if eligible and "acme" in member_of and "vip" in member_of:
            member_of.add("both")
        out |= {(SPACE, g, m) for g in member_of}
    return out


def test_random_events_converge_to_the_reference_fold(cluster: Cluster) -> None:
    rng = random.Random(20261123)
    cluster.worker().start()
    sc = Scenario(cluster, SPACE)
    sc.define("property.defined", property_id="vip", name="VIP", value_type="boolean")
    sc.define(
        "question.defined",
        question_id="sport",
        name="Sport",
        value_type="single_select",
        options=["tennis", "chess"],
    )
    sc.define("group.created", group_id="static", name="Static", kind="static")
    for group_id, conditions in GROUPS.items():
        sc.define("group.created", group_id=group_id, name=group_id, kind="smart",
                  conditions=conditions)  # fmt: skip
    sc.wait_results()

    profiles: dict[str, dict[str, Any]] = {}
    vip: dict[str, Any] = {}
    sport: dict[str, Any] = {}
    static: dict[str, bool] = {}
    blacklisted: dict[str, bool] = {}
    batches: dict[str, list[dict[str, Any]]] = {
        "member-changes": [], "property-changes": [], "form-answers": [], "group-changes": [],
    }  # fmt: skip
    for _ in range(400):
        m = rng.choice(MEMBERS)
        roll = rng.random()
        if roll < 0.35:
            patch: dict[str, Any] = {}
            if rng.random() < 0.6:
                patch["status"] = rng.choice(STATUSES)
            if rng.random() < 0.6:
                patch["email"] = rng.choice(
                    [f"{m}@acme.com", f"{m}@eu.acme.com", f"{m}@acme.com.evil.org", None]
                )
            profile = profiles.setdefault(m, {})
            for field, value in patch.items():
                if value is None:
                    profile.pop(field, None)
                else:
                    profile[field] = value
            batches["member-changes"].append(
                event("member.upserted", SPACE, member_id=m, profile=patch)
            )
        elif roll < 0.55:
            value = rng.choice([True, False, "yes", 1, None])
            vip[m] = value
            kind = "property.unset" if value is None else "property.set"
            fields = {"property_id": "vip"} | ({} if value is None else {"value": value})
            batches["property-changes"].append(event(kind, SPACE, member_id=m, **fields))
        elif roll < 0.75:
            value = rng.choice(["tennis", "TENNIS", "chess", None])
            sport[m] = value
            kind = "answer.unset" if value is None else "answer.set"
            fields = {"question_id": "sport"} | ({} if value is None else {"value": value})
            batches["form-answers"].append(event(kind, SPACE, member_id=m, **fields))
        elif roll < 0.88:
            on = rng.random() < 0.6
            static[m] = on
            kind = "group.member_added" if on else "group.member_removed"
            batches["group-changes"].append(event(kind, SPACE, group_id="static", member_id=m))
        else:
            on = rng.random() < 0.5
            blacklisted[m] = on
            kind = "group.blacklisted" if on else "group.unblacklisted"
            for group_id in ("acme", "vip", "tennis"):
                batches["group-changes"].append(event(kind, SPACE, group_id=group_id, member_id=m))
    topics = list(batches)
    rng.shuffle(topics)
    for topic in topics:
        cluster.produce(topic, batches[topic])

    expected = reference(profiles, vip, sport, static, blacklisted)
    cluster.wait_for(
        "membership-changes",
        lambda evs: final_memberships([e for e in evs if e["space"] == SPACE]) == expected,
        timeout=120,
        what="memberships equal to the reference fold",
    )
    changes = cluster.settle()
    assert final_memberships(changes) == expected
    assert state_memberships(cluster.read("membership-state")) == expected
    assert_clean_history(changes)
