"""The segment set listing (contract sections 7 and 9) of two real workers over the real broker.

A set lists a smart group and a static one, with a fallback; each segment is listed, as the
model says, by either worker (each owns half the partitions and asks the other), with a walk
that switches workers on every page and neither skips nor repeats; deactivating the first group
moves its members to the static group or to the fallback. Every answer is checked against the
committed OpenAPI document.
"""

from __future__ import annotations

from typing import Any

import orjson
from tests.integration.harness import Cluster
from tests.integration.openapi_check import check_answer
from tests.integration.query_client import call, matches, ordered, until
from tests.integration.test_query_api import (
    STAFF,
    command,
    in_staff,
    people,
    smartgroups,
    upsert,
)

SPACE = "acme"
PATH = f"/v1/spaces/{SPACE}/segment-sets/plan/members"
CLUB = {"m00", "m05", "m06", "m10"}  # m05 and m10 are staff too


def get(port: int, query: str, path: str = PATH) -> tuple[int, dict[str, str], Any]:
    answer = call(port, f"{path}?{query}")
    check_answer("GET", path, answer)
    return answer


def walk(ports: list[int], segment: str, limit: int) -> tuple[list[str], set[int]]:
    """Every page of a segment, asking the workers in turn."""
    ids: list[str] = []
    totals: set[int] = set()
    cursor = ""
    for turn in range(200):
        status, _, body = get(ports[turn % 2], f"segment={segment}&limit={limit}&cursor={cursor}")
        assert status == 200, body
        ids.extend(m["member_id"] for m in body["members"])
        totals.add(body["total"])
        if body["next_cursor"] is None:
            return ids, totals
        assert len(body["members"]) == limit
        cursor = body["next_cursor"]
    raise AssertionError("the walk did not end")


def test_segments_are_listed_by_any_worker_and_follow_a_deactivation(cluster: Cluster) -> None:
    first, second = cluster.worker(0), cluster.worker(1)
    first.start()
    second.start()
    population = people()
    cluster.produce(
        "group-changes",
        [
            command(1, "group.created", group_id="staff", name="Staff", kind="smart",
                    conditions={"all": [STAFF]}),
            command(2, "group.created", group_id="club", name="Club", kind="static"),
            *(command(3 + i, "group.member_added", group_id="club", member_id=m)
              for i, m in enumerate(sorted(CLUB))),
            command(9, "segment_set.defined", set_id="plan", name="Plan",
                    groups=["staff", "club"], fallback="native"),
        ],
    )  # fmt: skip
    cluster.produce("member-changes", [upsert(i, p) for i, p in enumerate(population)])
    ports = [first.web_port, second.web_port]

    def model(staff_active: bool) -> dict[str, list[str]]:
        staff = [p for p in population if staff_active and in_staff(p, set())]
        taken = {p["member_id"] for p in staff}
        club = [p for p in population if p["member_id"] in CLUB - taken]
        rest = [p for p in population if p["member_id"] not in taken | CLUB]
        return {"staff": ordered(staff), "club": ordered(club), "": ordered(rest)}

    def settled(want: dict[str, list[str]]) -> None:
        for segment, ids in want.items():
            for port in ports:
                until(
                    lambda port=port, s=segment: get(port, f"segment={s}&limit=1000"),
                    lambda a, ids=ids: (
                        a[0] == 200 and [m["member_id"] for m in a[2]["members"]] == ids
                    ),
                )

    want = model(staff_active=True)
    assert want["staff"] and want["club"] == ["m00", "m06"] and want[""]
    settled(want)
    for segment, ids in want.items():
        walked, totals = walk(ports, segment, limit=3)
        assert walked == ids and totals == {len(ids)}, segment
    # since/version are the member's segment; the fallback's never-moved members have none
    staff = get(ports[0], "segment=staff&limit=1000")[2]["members"]
    assert all(m["since"].endswith("Z") for m in staff)
    assert {m["version"] for m in staff if m["member_id"] not in CLUB} == {1}
    assert {m["version"] for m in get(ports[1], "segment=&limit=1000")[2]["members"]} == {None}
    # filters, against the model
    body = get(ports[1], "segment=&q=ann&status=accepted,invited")[2]
    rest = [p for p in population if p["member_id"] in want[""]]
    expected = [p for p in rest if matches(p, q="ann", status="accepted,invited")]
    assert [m["member_id"] for m in body["members"]] == ordered(expected)
    assert body["total"] == len(expected)
    # errors: an unknown set, a group the set does not list, no segment parameter
    status, _, body = get(
        ports[0], "segment=", path=f"/v1/spaces/{SPACE}/segment-sets/nope/members"
    )
    assert (status, body["code"]) == (404, "segment_set_not_found")
    status, _, body = get(ports[1], "segment=elsewhere")
    assert (status, body["code"]) == (400, "invalid")
    status, _, body = get(ports[0], "limit=5")
    assert (status, body["code"]) == (400, "invalid")

    # the CLI: a group's segment, the fallback (no GROUP), an unknown set
    status, out, err = smartgroups("segment", SPACE, "plan", "--all", "--json", port=ports[1])
    assert status == 0, err
    assert [m["member_id"] for m in orjson.loads(out)["members"]] == want[""]
    status, out, err = smartgroups("segment", SPACE, "plan", "club", port=ports[0])
    assert status == 0 and "segment club of acme/plan" in out and "2 members" in out, err
    status, out, err = smartgroups("segment", SPACE, "nope", port=ports[0])
    assert status == 2 and out == ""
    assert err == "smartgroups: segment_set_not_found: segment set not found (check the set " \
        "id: `smartgroups segment` needs a defined set)\n"  # fmt: skip

    # deactivating staff moves its members to club (m05, m10) or to the fallback
    cluster.produce("group-changes", [command(20, "group.deactivated", group_id="staff")])
    moved = model(staff_active=False)
    assert moved["club"] == ordered([p for p in population if p["member_id"] in CLUB])
    settled(moved)
    for segment, ids in moved.items():
        walked, totals = walk(ports, segment, limit=7)
        assert walked == ids and totals == {len(ids)}, segment
    m05 = next(m for m in get(ports[0], "segment=club")[2]["members"] if m["member_id"] == "m05")
    assert m05["version"] >= 2  # its segment changed when staff was deactivated
