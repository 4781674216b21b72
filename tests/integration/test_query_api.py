"""The query API (contract section 7) of a real worker over the real broker.

One worker holds a space with a smart group, a static group and a blacklist; every endpoint is
asked, and every listing is checked against a model written here (order, filters, totals, a
pagination walk that neither skips nor repeats), every error code and status, erasure (404 and
gone from every listing), a rename that moves a member in the order, and each answer against
the committed OpenAPI document.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import orjson
import pytest
from tests.integration.harness import Cluster, WorkerProcess
from tests.integration.openapi_check import check_answer
from tests.integration.query_client import call, matches, ordered, until

SPACE = "acme"
FIRST = ["Ann", "ann", "Émile", "zoë", "Bob", "", None, "Ånna", "carl", "Dörte"]
LAST = ["Smith", "smith", None, "Ng", "", "O'Neil"]
STATUSES = ["accepted", "invited", "pending", "declined", None]
ROLES = ["admin", "member", "Moderator", None]
STAFF = {"field": "profile.email", "op": "email_domain", "value": ["acme.com"]}


def people() -> list[dict[str, Any]]:
    found = []
    for i in range(40):
        email = None if i % 13 == 12 else f"p{i}@{'acme.com' if i % 3 else 'other.org'}"
        found.append(
            {
                "member_id": f"m{i:02d}",
                "first_name": FIRST[i % len(FIRST)],
                "last_name": LAST[i % len(LAST)],
                "email": email,
                "status": STATUSES[i % len(STATUSES)],
                "role": ROLES[i % len(ROLES)],
            }
        )
    return found


def upsert(n: int, person: dict[str, Any]) -> dict[str, Any]:
    profile = {k: v for k, v in person.items() if k != "member_id" and v is not None}
    return {
        "id": f"u{n}",
        "type": "member.upserted",
        "space": SPACE,
        "member_id": person["member_id"],
        "profile": profile,
    }


def command(n: int, type_: str, **fields: Any) -> dict[str, Any]:
    return {"id": f"c{n}", "type": type_, "space": SPACE, **fields}


def eligible(person: dict[str, Any]) -> bool:
    status = person.get("status")
    return isinstance(status, str) and status.lower() in ("accepted", "invited", "pending")


def in_staff(person: dict[str, Any], blacklist: set[str]) -> bool:
    email = person.get("email")
    return (
        eligible(person)
        and isinstance(email, str)
        and email.endswith("@acme.com")
        and person["member_id"] not in blacklist
    )


def seed_staff(cluster: Cluster) -> list[dict[str, Any]]:
    """Create the smart group ``staff`` (``STAFF``) and upsert :func:`people`; return them."""
    population = people()
    cluster.produce(
        "group-changes",
        [command(1, "group.created", group_id="staff", name="Staff", kind="smart",
                 conditions={"all": [STAFF]})],
    )  # fmt: skip
    cluster.produce("member-changes", [upsert(i, p) for i, p in enumerate(population)])
    return population


class Api:
    def __init__(self, worker: WorkerProcess) -> None:
        self.port = worker.web_port

    def get(self, path: str, **params: Any) -> tuple[int, dict[str, str], Any]:
        query = urlencode({k: v for k, v in params.items() if v is not None})
        answer = call(self.port, f"/v1/spaces/{SPACE}{path}" + (f"?{query}" if query else ""))
        check_answer("GET", f"/v1/spaces/{SPACE}{path}", answer)
        return answer

    def post(self, path: str, body: Any) -> tuple[int, dict[str, str], Any]:
        answer = call(self.port, f"/v1/spaces/{SPACE}{path}", method="POST", body=body)
        check_answer("POST", f"/v1/spaces/{SPACE}{path}", answer)
        return answer

    def walk(self, path: str, limit: int, **params: Any) -> tuple[list[str], set[int]]:
        """Every page of a listing: the member ids in page order, and the totals seen."""
        ids: list[str] = []
        totals: set[int] = set()
        cursor = None
        for _ in range(100):
            status, _, body = self.get(path, limit=limit, cursor=cursor, **params)
            assert status == 200, body
            assert len(body["members"]) <= limit
            ids.extend(m["member_id"] for m in body["members"])
            totals.add(body["total"])
            cursor = body["next_cursor"]
            if cursor is None:
                return ids, totals
            assert len(body["members"]) == limit  # only the last page may be short
        raise AssertionError("the walk did not end")

    def post_walk(self, body: dict[str, Any], limit: int) -> list[str]:
        ids: list[str] = []
        cursor = None
        for _ in range(100):
            status, _, page = self.post("/preview", {**body, "limit": limit, "cursor": cursor})
            assert status == 200, page
            ids.extend(m["member_id"] for m in page["members"])
            cursor = page["next_cursor"]
            if cursor is None:
                return ids
        raise AssertionError("the walk did not end")


@pytest.fixture
def world(cluster: Cluster) -> tuple[Cluster, Api, list[dict[str, Any]]]:
    worker = cluster.worker()
    worker.start()
    population = people()
    cluster.produce(
        "group-changes",
        [
            command(1, "group.created", group_id="staff", name="Staff", kind="smart",
                    conditions={"all": [STAFF]}),
            command(2, "group.created", group_id="club", name="club", kind="static",
                    icon="star", resources=[{"type": "forum", "id": "f1"}]),
        ],
    )  # fmt: skip
    cluster.produce("member-changes", [upsert(i, p) for i, p in enumerate(population)])
    cluster.produce(
        "group-changes",
        [
            command(3, "group.blacklisted", group_id="staff", member_id="m02"),
            command(6, "group.blacklisted", group_id="staff", member_id="m01"),
            command(4, "group.member_added", group_id="club", member_id="m05"),
            command(5, "group.member_added", group_id="club", member_id="m06"),
        ],
    )
    api = Api(worker)
    expected = len([p for p in population if in_staff(p, {"m01", "m02"})])
    until(
        lambda: api.get("/groups/staff"),
        lambda a: a[0] == 200 and a[2]["member_count"] == expected,
    )
    until(
        lambda: api.get("/groups/club"),
        lambda a: a[0] == 200 and a[2]["member_count"] == 2,
    )
    until(
        lambda: api.get("/groups/staff"),
        lambda a: a[2]["member_count"] == expected and a[2]["blacklist_count"] == 2,
    )
    return cluster, api, population


def test_every_endpoint_answers_as_the_contract_says(world: Any) -> None:
    _cluster, api, population = world
    black = {"m01", "m02"}
    staff = [p for p in population if in_staff(p, black)]

    # groups, by casefolded name then id
    status, _, body = api.get("/groups")
    assert status == 200
    assert [g["group_id"] for g in body["groups"]] == ["club", "staff"]
    club, smart = body["groups"]
    assert club == {
        "group_id": "club", "name": "club", "kind": "static", "slug": "club",
        "description": None, "icon": "star", "active": True, "editable": False,
        "resources": [{"type": "forum", "id": "f1"}], "conditions": None,
        "member_count": 2, "blacklist_count": 0,
    }  # fmt: skip
    assert smart["conditions"] == {"all": [STAFF]}
    assert (smart["member_count"], smart["blacklist_count"]) == (len(staff), 2)
    assert api.get("/groups/staff")[2] == smart

    # members: the whole order, by pages of every size, neither skipping nor repeating
    for limit in (1, 7, 50, 1000):
        ids, totals = api.walk("/groups/staff/members", limit)
        assert ids == ordered(staff), limit
        assert totals == {len(staff)}
    status, _, page = api.get("/groups/staff/members")
    assert len(page["members"]) == min(50, len(staff))
    first = page["members"][0]
    person = next(p for p in population if p["member_id"] == first["member_id"])
    assert {k: first[k] for k in ("first_name", "last_name", "email", "role", "status")} == {
        k: person.get(k) for k in ("first_name", "last_name", "email", "role", "status")
    }
    assert first["version"] == 1 and first["since"].endswith("Z")

    # filters, alone and combined, against the model
    for params in (
        {"q": "ann"}, {"q": "ANN SMITH"}, {"q": "acme.com"}, {"q": "émile"}, {"q": "zzz"},
        {"status": "accepted,PENDING"}, {"role": "moderator"}, {"role": "admin, member"},
        {"q": "a", "status": "invited", "role": "admin,moderator"}, {"q": ""},
    ):  # fmt: skip
        want = ordered(p for p in staff if matches(p, **params))
        ids, totals = api.walk("/groups/staff/members", 3, **params)
        assert ids == want, params
        assert totals == {len(want)}, params

    # the blacklist: the blacklisted members that exist, with no membership fields
    status, _, page = api.get("/groups/staff/blacklist")
    assert [m["member_id"] for m in page["members"]] == ordered(
        p for p in population if p["member_id"] in black
    )
    assert page["total"] == 2 and page["next_cursor"] is None
    assert all(m["since"] is None and m["version"] is None for m in page["members"])
    assert api.get("/groups/club/blacklist")[2] == {"members": [], "total": 0, "next_cursor": None}

    # one member
    member = staff[0]["member_id"]
    status, _, doc = api.get(f"/members/{member}")
    assert status == 200
    assert doc["member_id"] == member and doc["properties"] == {} and doc["answers"] == {}
    clubbed = ["club"] if member in ("m05", "m06") else []
    assert [g["group_id"] for g in doc["groups"]] == [*clubbed, "staff"]
    assert doc["segments"] == {}
    assert doc["profile"]["email"] == staff[0]["email"]

    # explain: in, blacklisted, static
    status, _, why = api.get(f"/groups/staff/members/{member}/explain")
    assert status == 200 and why["in"] is True and why["kind"] == "smart"
    assert why["eligible"] is True and why["blacklisted"] is False and why["manual"] is False
    trigger = why["conditions"]["all"][0]
    assert why["conditions"]["result"] is True
    assert trigger == {**STAFF, "actual": staff[0]["email"], "result": True}
    status, _, why = api.get("/groups/staff/members/m02/explain")
    assert why["in"] is False and why["blacklisted"] is True
    status, _, why = api.get("/groups/club/members/m05/explain")
    assert why == {
        "in": True, "kind": "static", "active": True, "eligible": eligible(population[5]),
        "status": population[5]["status"], "blacklisted": False, "manual": True,
    }  # fmt: skip

    # preview over the live population, with its own blacklist, filters and pages
    everyone_at_acme = [p for p in population if in_staff(p, set())]
    body = {"conditions": {"all": [STAFF]}, "blacklist": ["m04"]}
    want = ordered(p for p in everyone_at_acme if p["member_id"] != "m04")
    assert api.post_walk(body, 4) == want
    status, _, page = api.post("/preview", {**body, "role": "admin"})
    assert [m["member_id"] for m in page["members"]] == ordered(
        p for p in everyone_at_acme if p["member_id"] != "m04" and matches(p, role="admin")
    )
    assert all(m["since"] is None and m["version"] is None for m in page["members"])


def test_errors_name_their_code_and_status(world: Any) -> None:
    cluster, api, _ = world
    cases = [
        (api.get("/groups/nope"), 404, "group_not_found"),
        (api.get("/groups/nope/members"), 404, "group_not_found"),
        (api.get("/groups/nope/blacklist"), 404, "group_not_found"),
        (api.get("/groups/nope/members/m05/explain"), 404, "group_not_found"),
        (api.get("/members/nobody"), 404, "member_not_found"),
        (api.get("/groups/staff/members/nobody/explain"), 404, "member_not_found"),
        (api.get("/groups/staff/members", limit=0), 400, "invalid"),
        (api.get("/groups/staff/members", limit=1001), 400, "invalid"),
        (api.get("/groups/staff/members", limit="ten"), 400, "invalid"),
        (api.get("/groups/staff/members", cursor="%%%"), 400, "invalid"),
        (api.get("/groups/staff/members", cursor="bm9udWw"), 400, "invalid"),
        (api.post("/preview", {"conditions": {"field": "profile.nope", "op": "eq"}}), 422,
         "invalid"),
        (api.post("/preview", {"conditions": {"field": "property.x", "op": "is_set"}}), 422,
         "unknown_reference"),
        (api.post("/preview", {}), 422, "invalid"),
        (api.post("/preview", {"conditions": {"all": []}, "limit": 0}), 400, "invalid"),
        (api.post("/preview", {"conditions": {"all": []}, "blacklist": "m1"}), 400, "invalid"),
        (api.post("/preview", ["not", "an", "object"]), 400, "invalid"),
    ]  # fmt: skip
    for (status, _, body), want_status, code in cases:
        assert (status, body["code"]) == (want_status, code), body
        assert isinstance(body["message"], str) and body["message"]
    for path in ("/groups", "/groups/staff", "/members/m05", "/groups/staff/members"):
        status, _, body = call(api.port, f"/v1/spaces/elsewhere{path}")
        assert (status, body["code"]) == (404, "space_not_found")
    status, _, body = call(
        api.port, "/v1/spaces/elsewhere/preview", method="POST", body={"conditions": {"all": []}}
    )
    assert (status, body["code"]) == (404, "space_not_found")
    # the same message as group.created gives for the same conditions
    bad = {"field": "profile.email", "op": "gt", "value": 3}
    status, _, body = api.post("/preview", {"conditions": bad})
    cluster.produce(
        "group-changes",
        [command(9, "group.created", group_id="bad", name="Bad", kind="smart", conditions=bad)],
    )
    [result] = cluster.wait_for(
        "group-change-results", lambda es: any(e["command_id"] == "c9" for e in es)
    )[-1:]
    assert (status, body) == (422, {"code": result["code"], "message": result["message"]})


def test_erasure_and_renames_move_members_in_every_listing(world: Any) -> None:
    cluster, api, population = world
    black = {"m01", "m02"}
    staff = [p for p in population if in_staff(p, black)]
    gone = staff[3]["member_id"]
    cluster.produce(
        "member-changes",
        [
            {"id": "d1", "type": "member.deleted", "space": SPACE, "member_id": gone},
            {"id": "d2", "type": "member.deleted", "space": SPACE, "member_id": "m01"},
            upsert(99, {"member_id": staff[-1]["member_id"], "first_name": "AAAA"}),
        ],
    )
    until(lambda: api.get(f"/members/{gone}"), lambda a: a[0] == 404)
    until(lambda: api.get("/members/m01"), lambda a: a[0] == 404)
    assert api.get(f"/groups/staff/members/{gone}/explain")[0] == 404
    renamed = {**staff[-1], "first_name": "AAAA"}
    want = ordered([renamed] + [p for p in staff[:-1] if p["member_id"] != gone])
    answer = until(
        lambda: api.get("/groups/staff/members", limit=1000),
        lambda a: [m["member_id"] for m in a[2]["members"]] == want,
    )
    assert answer[2]["members"][0]["first_name"] == "AAAA"
    assert answer[2]["total"] == len(want)
    _status, _, page = api.get("/groups/staff/blacklist")
    assert [m["member_id"] for m in page["members"]] == ["m02"] and page["total"] == 1
    assert api.get("/groups/staff")[2]["blacklist_count"] == 1
    assert gone not in api.post_walk({"conditions": {"all": [STAFF]}}, 1000)


def test_the_openapi_document_is_served(cluster: Cluster) -> None:
    worker = cluster.worker()
    worker.start()
    status, headers, doc = call(worker.web_port, "/v1/openapi.json")
    assert status == 200 and doc["openapi"].startswith("3.1")
    assert headers["Content-Type"].startswith("application/json")
    assert quote("/v1/spaces/{space}/preview", safe="/{}") in doc["paths"]


def smartgroups(*argv: str, port: int) -> tuple[int, str, str]:
    env = {**os.environ, "SMARTGROUPS_WEB_PORT": str(port)}
    env.pop("SMARTGROUPS_API_TOKEN", None)
    done = subprocess.run(
        [sys.executable, "-m", "smartgroups", *argv],
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    return done.returncode, done.stdout.decode(), done.stderr.decode()


def test_the_cli_asks_a_worker(world: Any, tmp_path: Path) -> None:
    _, api, population = world
    staff = [p for p in population if in_staff(p, {"m01", "m02"})]
    status, out, err = smartgroups("members", SPACE, "staff", "--all", "--json", port=api.port)
    assert status == 0, err
    doc = orjson.loads(out)
    assert [m["member_id"] for m in doc["members"]] == ordered(staff)
    assert doc["total"] == len(staff)
    status, out, _ = smartgroups(
        "members", SPACE, "staff", "--role", "admin", "--limit", "2", port=api.port
    )
    admins = ordered(p for p in staff if matches(p, role="admin"))
    assert status == 0 and "members of acme/staff" in out
    assert f"{len(admins)} member" in out and admins[0] in out and admins[-1] not in out
    status, out, _ = smartgroups("explain", SPACE, "staff", "m03", port=api.port)
    assert status == 0
    assert out.splitlines() == [
        "m03 is not in staff (smart group, active)",
        "✗ eligible status (declined)",
        "✓ not blacklisted",
        "conditions, now:",
        "  ✗ all",
        '    ✗ profile.email email_domain ["acme.com"]   (actual: "p3@other.org")',
    ]
    conditions = tmp_path / "staff.json"
    conditions.write_text(orjson.dumps({"all": [STAFF]}).decode())
    status, out, err = smartgroups(
        "preview", "--live", SPACE, "--conditions", str(conditions), "--json", "--all",
        "--blacklist", "m04,m05", port=api.port,
    )  # fmt: skip
    assert status == 0, err
    assert [m["member_id"] for m in orjson.loads(out)["members"]] == ordered(
        p for p in population if in_staff(p, {"m04", "m05"})
    )
    status, out, err = smartgroups("members", SPACE, "nope", port=api.port)
    assert status == 2 and out == ""
    assert err == "smartgroups: group_not_found: group not found (check the group id: " \
        "`smartgroups members` needs an existing group)\n"  # fmt: skip
    status, _, err = smartgroups(
        "explain", SPACE, "staff", "m04", "--url", "http://127.0.0.1:1", port=1
    )
    assert status == 2 and err.startswith(
        "smartgroups: cannot reach a worker at http://127.0.0.1:1"
    )
    assert err.count("\n") == 1
