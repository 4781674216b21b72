"""Issue 18 on the real broker: blacklist at creation, editable groups, segment sets.

One worker per test cluster; every read filters by space. The restart test kills the worker
(SIGKILL) while an edit's re-decision and a set's resolution are running with a small scan
chunk, so inputs after the last commit are read again: membership and segment outputs must keep
one content per id and versions 1..n, and end as the definitions say.
"""

from __future__ import annotations

import signal
import uuid
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from tests.integration.harness import Cluster, final_memberships, state_memberships
from tests.integration.scenario import Scenario
from tests.integration.test_worker_faults import assert_clean_history


def domain(name: str) -> dict[str, Any]:
    return {"field": "profile.email", "op": "email_domain", "value": [name]}


def smart(sc: Scenario, group_id: str, conditions: dict[str, Any], **extra: Any) -> str:
    """Create smart group ``group_id``; returns the command id."""
    return sc.define(
        "group.created",
        group_id=group_id,
        name=group_id.title(),
        kind="smart",
        conditions=conditions,
        **extra,
    )


ACCEPTED = {"field": "profile.status", "op": "eq", "value": "accepted"}


@pytest.fixture(scope="module")
def shared(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root: Path = tmp_path_factory.mktemp("segments")
    world = Cluster(kafka_bootstrap, root, f"sg{uuid.uuid4().hex[:8]}")
    world.worker(0, extra_env={"SMARTGROUPS_SCAN_CHUNK": "7"}).start()
    yield world
    world.stop_all()


def segments_of(cluster: Cluster, space: str) -> list[dict[str, Any]]:
    return [e for e in cluster.events("segment-changes") if e["space"] == space]


def current_segments(events: list[dict[str, Any]]) -> dict[tuple[str, str], str | None]:
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for e in events:
        key = (e["set_id"], e["member_id"])
        if key not in latest or e["version"] > latest[key]["version"]:
            latest[key] = e
    return {key: e["segment"] for key, e in latest.items()}


def segment_state(cluster: Cluster, space: str) -> dict[tuple[str, str], str]:
    last: dict[bytes, bytes | None] = {}
    for message in cluster.read("segment-state"):
        last[message.key] = message.value
    found = {}
    for key, value in last.items():
        sp, set_id, member_id = key.decode().split(":")
        if sp == space and value is not None:
            found[(set_id, member_id)] = orjson.loads(value)["segment"]
    return found


def assert_clean_segments(events: list[dict[str, Any]]) -> None:
    """Per (set, member): one content per id, versions 1..n, each ``previous`` the last one."""
    by_id: dict[str, bytes] = {}
    chains: dict[tuple[str, str, str], dict[int, dict[str, Any]]] = defaultdict(dict)
    for e in events:
        body = orjson.dumps({k: v for k, v in e.items() if k != "at"})
        assert by_id.setdefault(e["id"], body) == body, f"two different events share {e['id']}"
        chains[(e["space"], e["set_id"], e["member_id"])][e["version"]] = e
    for triple, versions in chains.items():
        assert sorted(versions) == list(range(1, len(versions) + 1)), triple
        previous = None
        for version in sorted(versions):
            assert versions[version]["previous"] == previous, triple
            previous = versions[version]["segment"]


def test_blacklist_at_creation_and_an_edit(shared: Cluster) -> None:
    sc = Scenario(shared, f"ed-{uuid.uuid4().hex[:6]}")
    domains = {f"m{i}": ("a.com" if i < 12 else "b.com") for i in range(20)}
    for member_id, name in domains.items():
        sc.upsert(member_id, email=f"{member_id}@{name}", status="accepted")
    created = sc.define(
        "group.created",
        group_id="team",
        name="Team",
        kind="smart",
        editable=True,
        blacklist=["m1", "m2", "m15"],
        conditions={"all": [domain("a.com")]},
    )
    in_team = {"field": "groups", "op": "has_any", "value": ["team"]}
    smart(sc, "mirror", {"all": [in_team]})
    a_side = {m for m, d in domains.items() if d == "a.com"} - {"m1", "m2"}
    sc.wait_members("team", a_side)
    sc.wait_members("mirror", a_side)
    assert not {c["member_id"] for c in sc.changes()} & {"m1", "m2", "m15"}
    # the edit: a.com -> b.com; only the differences, with reasons and the definition cause
    in_mirror = {"field": "groups", "op": "has_any", "value": ["mirror"]}
    loop = sc.define("group.updated", group_id="team", conditions={"all": [in_mirror]})
    fixed = smart(sc, "fixed", {"all": [domain("b.com")]})
    immutable = sc.define("group.updated", group_id="fixed", conditions={"all": [domain("a.com")]})
    edit = sc.define("group.updated", group_id="team", conditions={"all": [domain("b.com")]})
    b_side = {m for m, d in domains.items() if d == "b.com"} - {"m15"}
    sc.wait_members("team", b_side)
    sc.wait_members("mirror", b_side)
    # guards follow the current tree: what only the old tree named is free again
    tiers = ["gold", "silver"]
    sc.define(
        "property.defined", property_id="tier", name="T", value_type="single_select", options=tiers
    )
    gold = {"field": "property.tier", "op": "eq", "value": "gold"}
    smart(sc, "tiered", {"all": [gold]}, editable=True)
    sc.define("group.updated", group_id="tiered", conditions={"all": [{**gold, "value": "silver"}]})
    freed = sc.define("property.option_removed", property_id="tier", option="gold")
    used = sc.define("property.option_removed", property_id="tier", option="silver")
    assert (sc.outcome(freed), sc.outcome(used)) == ("accepted", "option_in_use")
    assert sc.outcome(created) == "accepted" and sc.outcome(edit) == "accepted"
    assert (sc.outcome(loop), sc.outcome(immutable), sc.outcome(fixed)) == (
        "cycle",
        "triggers_immutable",
        "accepted",
    )
    changes = shared.settle()
    mine = [c for c in changes if c["space"] == sc.space]
    assert_clean_history(mine)
    edit_changes = [c for c in mine if c["cause"]["event_id"] == edit]
    assert {(c["type"], c["reason"]) for c in edit_changes if c["group_id"] == "team"} == {
        ("member.added", "conditions_met"),
        ("member.removed", "conditions_unmet"),
    }
    # every member's verdict changed exactly once per group: no remove-and-add
    assert len(edit_changes) == 2 * (len(a_side) + len(b_side))
    state = {p for p in state_memberships(shared.read("membership-state")) if p[0] == sc.space}
    assert state == final_memberships(mine)


def test_a_segment_set_resolves_redistributes_and_is_deleted(shared: Cluster) -> None:
    sc = Scenario(shared, f"ss-{uuid.uuid4().hex[:6]}")
    for i in range(12):
        sc.upsert(f"m{i}", email=f"m{i}@{'a.com' if i < 4 else 'b.com'}", status="accepted")
    smart(sc, "custom", {"all": [domain("a.com")]})
    smart(sc, "native", {"all": [ACCEPTED]})
    defined = sc.define(
        "segment_set.defined",
        set_id="scenario",
        name="Scenario",
        groups=["custom", "native"],
        fallback="none",
    )
    want: dict[tuple[str, str], str | None] = {
        ("scenario", f"m{i}"): ("custom" if i < 4 else "native") for i in range(12)
    }
    shared.wait_for(
        "segment-changes",
        lambda _: current_segments(segments_of(shared, sc.space)) == want,
        what="every member resolved",
    )
    assert sc.outcome(defined) == "accepted"
    in_use = sc.define("group.deleted", group_id="custom")
    again = {"name": "S", "groups": ["custom"], "fallback": "none"}
    twice = sc.define("segment_set.defined", set_id="scenario", **again)
    unknown = sc.define("segment_set.updated", set_id="scenario", groups=["custom", "nope"])
    missing = sc.define("segment_set.deleted", set_id="nope")
    assert [sc.outcome(c) for c in (in_use, twice, unknown, missing)] == [
        "group_in_use",
        "segment_set_exists",
        "unknown_reference",
        "segment_set_not_found",
    ]
    # Poool: deactivating the custom group redistributes its members into the native category
    sc.define("group.deactivated", group_id="custom")
    want = dict.fromkeys(want, "native")
    shared.wait_for(
        "segment-changes",
        lambda _: current_segments(segments_of(shared, sc.space)) == want,
        what="redistributed",
    )
    sc.upsert("m5", status="declined")  # out of every group: the fallback
    want[("scenario", "m5")] = None
    shared.wait_for(
        "segment-changes",
        lambda _: current_segments(segments_of(shared, sc.space)) == want,
        what="m5 to the fallback",
    )
    events = segments_of(shared, sc.space)
    assert_clean_segments(events)
    assert segment_state(shared, sc.space) == {k: v for k, v in want.items() if v is not None}
    sc.define("segment_set.deleted", set_id="scenario")
    shared.wait_for(
        "segment-changes",
        lambda _: set(current_segments(segments_of(shared, sc.space)).values()) == {None},
        what="set deleted",
    )
    assert segment_state(shared, sc.space) == {}


def test_a_restart_in_the_middle_of_an_edit_and_a_set_resolution(cluster: Cluster) -> None:
    env = {"SMARTGROUPS_SCAN_CHUNK": "2"}
    cluster.worker(0, extra_env=env).start()
    sc = Scenario(cluster, "rd")
    members = [f"m{i}" for i in range(150)]
    for i, m in enumerate(members):
        sc.upsert(m, email=f"{m}@{'a.com' if i % 3 else 'b.com'}", status="accepted")
    smart(sc, "g", {"all": [domain("a.com")]}, editable=True)
    smart(sc, "h", {"all": [domain("b.com")]})
    a_side = {m for i, m in enumerate(members) if i % 3}
    sc.wait_members("g", a_side, timeout=120)
    sc.define("segment_set.defined", set_id="s", name="S", groups=["g", "h"], fallback="x")
    first = sc.define("group.updated", group_id="g", conditions={"all": [domain("b.com")]})
    both = {"any": [domain("a.com"), domain("b.com")]}
    second = sc.define("group.updated", group_id="g", conditions=both)
    # The second edit may replace the first one's re-decision before it emits anything (the
    # batch path replaces a group's scan job at once): kill during whichever is under way.
    cluster.wait_for(
        "membership-changes",
        lambda es: any(e["cause"].get("event_id") in (first, second) for e in es),
        what="an edit's re-decision under way",
    )
    cluster.workers[0].stop(signal.SIGKILL)
    cluster.worker(0, extra_env=env).start()
    sc.wait_members("g", set(members), timeout=120)
    cluster.wait_for(
        "segment-changes",
        lambda es: (
            current_segments([e for e in es if e["space"] == "rd"])
            == {("s", m): "g" for m in members}
        ),
        timeout=120,
        what="every member in segment g",
    )
    changes = cluster.settle()
    assert_clean_history(changes)
    assert state_memberships(cluster.read("membership-state")) == final_memberships(changes)
    events = cluster.settle("segment-changes")
    assert_clean_segments(events)
    assert segment_state(cluster, "rd") == {("s", m): "g" for m in members}
