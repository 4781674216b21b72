"""Access to a real worker's query API with a tokens file: every way in that should fail does."""

from __future__ import annotations

from pathlib import Path

from tests.integration.harness import Cluster
from tests.integration.openapi_check import check_answer
from tests.integration.query_client import call, until

TOKENS = "tok-acme-7f3a acme\ntok-all-91bc *\ntok-globex-55de globex\n"


def test_tokens_open_their_spaces_and_nothing_else(cluster: Cluster, tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text(TOKENS)
    worker = cluster.worker(extra_env={"SMARTGROUPS_API_TOKENS_FILE": str(tokens)})
    worker.start()  # /v1/health needs no token: the harness polls it without one
    created = {"id": "c1", "type": "group.created", "space": "acme", "group_id": "g",
               "name": "G", "kind": "static"}  # fmt: skip
    cluster.produce("group-changes", [created])
    port = worker.web_port
    until(
        lambda: call(port, "/v1/spaces/acme/groups", token="tok-acme-7f3a"),
        lambda a: a[0] == 200 and len(a[2]["groups"]) == 1,
    )
    assert call(port, "/v1/spaces/acme/groups/g", token="tok-all-91bc")[0] == 200
    assert call(port, "/v1/health")[0] == 200
    assert call(port, "/v1/openapi.json")[0] == 200

    paths = [
        ("GET", "/v1/spaces/acme/groups", None),
        ("GET", "/v1/spaces/acme/groups/g", None),
        ("GET", "/v1/spaces/acme/groups/g/members", None),
        ("GET", "/v1/spaces/acme/groups/g/blacklist", None),
        ("GET", "/v1/spaces/acme/members/m1", None),
        ("GET", "/v1/spaces/acme/groups/g/members/m1/explain", None),
        ("POST", "/v1/spaces/acme/preview", {"conditions": {"all": []}}),
    ]
    for method, path, body in paths:
        for token in (None, "", "tok-acme", "TOK-ACME-7F3A", "tok-acme-7f3ax", "acme", "*"):
            answer = call(port, path, method=method, body=body, token=token)
            assert (answer[0], answer[2]["code"]) == (401, "unauthorized"), (path, token)
            assert answer[1]["WWW-Authenticate"].startswith("Bearer")
            check_answer(method, path, answer)
        # a space outside the token: the same answer as a space that does not exist
        other = call(port, path, method=method, body=body, token="tok-globex-55de")
        missing = call(
            port, path.replace("acme", "nowhere"), method=method, body=body, token="tok-all-91bc"
        )
        assert (
            (other[0], other[2])
            == (missing[0], missing[2])
            == (
                404,
                {"code": "space_not_found", "message": "space not found"},
            )
        ), path
    basic = call(port, "/v1/spaces/acme/groups", token=None)
    assert basic[0] == 401
    internal = call(
        port,
        "/v1/internal/part",
        method="POST",
        body={"op": {"op": "seen", "space": "acme"}, "partitions": [0]},
    )
    assert internal[0] == 401
    listing = {"op": "listing", "space": "acme", "group_id": "g", "created_seq": 0,
               "memberships": True, "limit": 5}  # fmt: skip
    for token, status in (("tok-globex-55de", 404), ("tok-acme-7f3a", 200)):
        answer = call(
            port, "/v1/internal/part", method="POST", token=token,
            body={"op": listing, "partitions": list(range(cluster.partitions))},
        )  # fmt: skip
        assert answer[0] == status, answer
    log = worker.log_path.read_text(errors="replace")
    assert not any(t in log for t in ("tok-acme-7f3a", "tok-all-91bc", "tok-globex-55de"))


def test_the_agent_member_path_answers_unavailable(cluster: Cluster) -> None:
    worker = cluster.worker(extra_env={"SMARTGROUPS_MEMBER_PATH": "agent"})
    worker.start()
    answer = call(worker.web_port, "/v1/spaces/acme/groups")
    check_answer("GET", "/v1/spaces/acme/groups", answer)
    assert (answer[0], answer[2]["code"]) == (503, "unavailable")
    assert "SMARTGROUPS_MEMBER_PATH" in answer[2]["message"]
