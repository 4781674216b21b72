"""Erasure and space isolation through the query API (docs/http.md), on two workers.

``tests/integration/test_query_access.py`` covers the tokens themselves (401s, a space outside
the token answered as a missing one, the internal endpoint's token check). This adds what a
user relies on when the spaces hold data: after ``member.deleted`` the member is ``404`` and in
no listing on either worker, and a token for space ``qa`` reads none of ``qb``'s members through
crafted ids (the key separator ``:``), crafted cursors, or crafted worker-to-worker requests.
"""

from __future__ import annotations

import base64
import urllib.parse
from pathlib import Path
from typing import Any

import orjson
from tests.integration.harness import Cluster
from tests.integration.query_client import call, until
from tests.integration.scenario import Scenario

TOKENS = "tok-qa-5e1d qa\ntok-qb-8c2f qb\n"
A, B = "tok-qa-5e1d", "tok-qb-8c2f"
MEMBERS = [f"m{i}" for i in range(1, 7)]
B_MARKS = ("Bkeepname", ".bkeep@acme.com")
"""Bytes of space ``qb``'s members: no answer to a ``qa`` token may hold them."""
GONE = "Agonename"
"""The first name of ``qa``'s deleted member: no answer may hold it after the deletion."""


def _fill(sc: Scenario, tag: str) -> None:
    sc.define("group.created", group_id="static", name="Static", kind="static")
    sc.define("group.created", group_id="acme", name="Acme", kind="smart",
              conditions={"all": [{"field": "profile.email", "op": "email_domain",
                                   "value": ["acme.com"]}]})  # fmt: skip
    sc.wait_results()
    for m in MEMBERS:
        name = GONE if (tag == "aown" and m == "m1") else f"{tag.capitalize()}name"
        if tag == "bkeep":
            name = B_MARKS[0]
        sc.upsert(m, first_name=name, email=f"{m}.{tag}@acme.com", status="accepted")
    sc.define("group.member_added", group_id="static", member_id="m1")
    sc.wait_members("acme", set(MEMBERS))
    sc.wait_members("static", {"m1"})


def _text(answer: tuple[int, dict[str, str], Any]) -> str:
    return orjson.dumps(answer[2]).decode()


def _clean(answer: tuple[int, dict[str, str], Any]) -> None:
    """Nothing of ``qb`` and nothing of the deleted member in the answer."""
    text = _text(answer)
    assert not any(mark in text for mark in (*B_MARKS, GONE)), answer


def _listing(port: int, path: str, token: str) -> list[str]:
    """Every member id of a listing, page by page (2 a page)."""
    ids: list[str] = []
    cursor = ""
    while True:
        query = urllib.parse.urlencode({"limit": 2, "cursor": cursor})
        answer = call(port, f"{path}?{query}", token=token)
        assert answer[0] == 200, answer
        if token == A:
            _clean(answer)
        ids += [m["member_id"] for m in answer[2]["members"]]
        cursor = answer[2]["next_cursor"]
        if not cursor:
            return ids


def _cursor(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_a_deleted_member_is_gone_and_one_space_reads_nothing_of_another(
    cluster: Cluster, tmp_path: Path
) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text(TOKENS)
    env = {"SMARTGROUPS_API_TOKENS_FILE": str(tokens)}
    workers = [cluster.worker(i, extra_env=env) for i in range(2)]
    for worker in workers:
        worker.start(timeout=120)
    a, b = Scenario(cluster, "qa"), Scenario(cluster, "qb")
    _fill(a, "aown")
    _fill(b, "bkeep")
    a.delete_member("m1")
    a.wait_members("acme", set(MEMBERS) - {"m1"})
    a.wait_members("static", set())
    ports = [w.web_port for w in workers]
    rest = sorted(set(MEMBERS) - {"m1"})

    for port in ports:  # any worker answers, whichever owns m1's partition
        until(
            lambda port=port: call(port, "/v1/spaces/qa/members/m1", token=A),
            lambda ans: ans[0] == 404 and ans[2]["code"] == "member_not_found",
        )
        gone = call(port, "/v1/spaces/qa/groups/acme/members/m1/explain", token=A)
        assert gone[0] == 404, gone
        _clean(gone)
        until(
            lambda port=port: call(port, "/v1/spaces/qa/groups/acme/members", token=A),
            lambda ans: ans[0] == 200 and ans[2]["total"] == len(rest),
        )
        assert sorted(_listing(port, "/v1/spaces/qa/groups/acme/members", A)) == rest
        assert _listing(port, "/v1/spaces/qa/groups/static/members", A) == []
        groups = call(port, "/v1/spaces/qa/groups", token=A)
        counts = {g["group_id"]: g["member_count"] for g in groups[2]["groups"]}
        assert counts == {"acme": len(rest), "static": 0}, groups
        # the same id in the other space keeps everything
        kept = call(port, "/v1/spaces/qb/members/m1", token=B)
        assert kept[0] == 200 and B_MARKS[1] in _text(kept), kept
        assert sorted(_listing(port, "/v1/spaces/qb/groups/acme/members", B)) == MEMBERS
        listed = _text(call(port, "/v1/spaces/qb/groups/acme/members", token=B))
        assert all(mark in listed for mark in B_MARKS)  # what _clean looks for is in a listing

    port = ports[0]
    # Crafted ids: the key separator, the other space's name, encoded or not.
    for path in (
        "/v1/spaces/qa/members/qb:m1",
        "/v1/spaces/qa/members/qb%3Am1",
        "/v1/spaces/qa/members/:m1",
        "/v1/spaces/qa/members/m2:qb",
        "/v1/spaces/qa/groups/acme/members/qb:m2/explain",
        "/v1/spaces/qa/groups/qb:acme",
        "/v1/spaces/qa/groups/qb:acme/members",
        "/v1/spaces/qa:qb/groups",
        "/v1/spaces/qa%3Aqb/members/m2",
        "/v1/spaces/qb/members/m2",
    ):
        answer = call(port, path, token=A)
        assert answer[0] in (400, 404), (path, answer)
        _clean(answer)

    # Crafted cursors: another space's, and keys below, inside and past the group's prefix.
    b_page = call(port, "/v1/spaces/qb/groups/acme/members?limit=2", token=B)
    crafted = [
        b_page[2]["next_cursor"],
        _cursor(b"\x00m0"),
        _cursor(b"m|qb:acme|\x00m1"),
        _cursor("\uffff\x00zz".encode()),
        _cursor(b"|qb:acme|Bkeepname\x00m1"),
        _cursor(b"../qb\x00m1"),
    ]
    for cursor in crafted:
        for listing in ("members", "blacklist"):
            path = f"/v1/spaces/qa/groups/acme/{listing}?limit=1000&cursor={cursor}"
            answer = call(port, path, token=A)
            assert answer[0] in (200, 400), (cursor, answer)
            _clean(answer)
            if answer[0] == 200:
                assert {m["member_id"] for m in answer[2]["members"]} <= set(rest)

    # Crafted worker-to-worker requests with the qa token, on the partitions each worker owns.
    listing = {"op": "listing", "space": "qa", "group_id": "acme", "created_seq": 0,
               "memberships": True, "limit": 1000}  # fmt: skip
    checked = {"op": "validate", "space": "qa", "conditions": {"all": []}}
    done = call(port, "/v1/internal/part", method="POST", body={"op": checked, "partitions": []},
                token=A)  # fmt: skip
    assert done[0] == 200 and "group" in done[2], done
    preview = done[2]["group"]  # a smart group every member of the space matches
    ops: list[dict[str, Any]] = [
        listing,
        {**listing, "cursor": _cursor(b"m|qb:acme|\x00m1")},
        {**listing, "group_id": "qb:acme"},
        {**listing, "group_id": "acme|m|qb:acme"},
        {**listing, "space": ["qb"]},
        {**listing, "space": "qa", "prefix": "m|qb:acme|"},
        {"op": "entries", "space": "qa"},
        {"op": "seen", "space": "qa:qb"},
        {"op": "preview", "space": "qa", "blacklist": [], "limit": 1000, "group": preview},
    ]
    served = previewed = 0
    for op in ops:
        for p in range(cluster.partitions):
            for port in ports:
                body = {"op": op, "partitions": [p]}
                answer = call(port, "/v1/internal/part", method="POST", body=body, token=A)
                assert answer[0] in (200, 400, 404, 503), (op, p, answer)
                _clean(answer)
                served += answer[0] == 200
                if answer[0] == 200 and op["op"] == "preview":
                    previewed += len(answer[2]["entries"])
    assert served >= cluster.partitions  # the first op alone is answered on every partition
    assert previewed == len(rest)  # the preview over every partition finds qa's members only

    # The public preview: conditions every member matches, the qa token, each worker.
    for port in ports:
        body = {"conditions": {"all": []}, "limit": 1000}
        answer = call(port, "/v1/spaces/qa/preview", method="POST", body=body, token=A)
        assert answer[0] == 200, answer
        _clean(answer)
        assert sorted(m["member_id"] for m in answer[2]["members"]) == rest
