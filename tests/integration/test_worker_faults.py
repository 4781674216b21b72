"""Bad input, mis-partitioned input, restarts and rebalances, on the real broker.

Each test that kills or adds workers has its own cluster (topics, consumer group, data dirs).
The oracle for "no duplicate transitions" is the raw output: every (pair, version) must appear
with one and only one content, and versions per pair must be exactly 1..n.
"""

from __future__ import annotations

import shutil
import signal
from collections import defaultdict
from typing import Any

import orjson
from tests.integration.harness import (
    Cluster,
    WorkerProcess,
    final_memberships,
    state_memberships,
)
from tests.integration.query_client import call, until
from tests.integration.scenario import Scenario, event

from smartgroups.core.partitioning import partition_for

ACME = {"field": "profile.email", "op": "email_domain", "value": ["acme.com"]}


def assert_clean_history(changes: list[dict[str, Any]]) -> None:
    """Per pair: versions 1..n, alternating added/removed from added, one content per id."""
    by_id: dict[str, bytes] = {}
    pairs: dict[tuple[str, str, str], dict[int, str]] = defaultdict(dict)
    for e in changes:
        body = orjson.dumps({k: v for k, v in e.items() if k != "at"})
        assert by_id.setdefault(e["id"], body) == body, f"two different events share {e['id']}"
        pairs[(e["space"], e["group_id"], e["member_id"])][e["version"]] = e["type"]
    for pair, versions in pairs.items():
        assert sorted(versions) == list(range(1, len(versions) + 1)), pair
        for version, kind in versions.items():
            assert kind == ("member.added" if version % 2 else "member.removed"), pair


def acme_group_of_40(cluster: Cluster, space: str) -> tuple[WorkerProcess, Scenario, list[str]]:
    """A started worker, and in ``space`` a smart group ``g`` holding 40 members ``m0``…``m39``."""
    worker = cluster.worker()
    worker.start()
    sc = Scenario(cluster, space)
    sc.define("group.created", group_id="g", name="G", kind="smart", conditions={"all": [ACME]})
    members = [f"m{i}" for i in range(40)]
    for m in members:
        sc.upsert(m, email=f"{m}@acme.com", status="accepted")
    sc.wait_members("g", set(members))
    return worker, sc, members


def test_bad_input_is_dead_lettered_and_the_stream_goes_on(cluster: Cluster) -> None:
    cluster.worker().start()
    sc = Scenario(cluster, "dl")
    sc.define("group.created", group_id="g", name="G", kind="smart", conditions={"all": [ACME]})
    good = event(
        "member.upserted",
        "dl",
        member_id="m1",
        profile={"email": "a@acme.com", "status": "accepted"},
    )

    def raw(doc: dict[str, Any]) -> bytes:
        return orjson.dumps(doc)

    key = b"dl:m1"
    bad: list[tuple[bytes | None, bytes | None, str]] = [
        (key, b"{not json", "decode_error"),
        (key, b"x" * (300 * 1024), "too_large"),
        (key, raw({**good, "type": "member.exploded"}), "unknown_type"),
        (key, raw({**good, "v": 2}), "unsupported_version"),
        (key, raw({k: v for k, v in good.items() if k != "member_id"}), "schema_error"),
        (
            key,
            raw({**good, "profile": {"status": "on holiday", "email": "secret@acme.com"}}),
            "schema_error",
        ),
        (b"dl:someone-else", raw(good), "key_mismatch"),
        (None, raw(good), "key_mismatch"),
    ]
    cluster.produce_raw(
        "member-changes",
        [(k, v, partition_for(b"dl:m1", cluster.partitions)) for k, v, _ in bad]
        + [(key, raw(good), None)],
    )
    cluster.produce_raw("group-changes", [(b"dl", b"\xff\xfe", None)])
    unknown_command = sc.define("group.renamed_itself", group_id="g")
    assert sc.outcome(unknown_command) == "invalid"  # answered, not dead-lettered
    sc.wait_members("g", {"m1"})  # the good record after the bad ones was applied

    records = cluster.wait_records("dead-letters", len(bad) + 1)
    assert len(records) == len(bad) + 1
    codes = sorted(dict(r.headers)["error.code"].decode() for r in records)
    assert codes == sorted([c for _, _, c in bad] + ["decode_error"])
    for r in records:
        headers = dict(r.headers)
        assert {"error.code", "error.message", "source.topic", "source.partition"} <= set(
            headers
        ) and "source.offset" in headers
        assert b"secret@acme.com" not in headers["error.message"]
        assert b"on holiday" not in headers["error.message"]
    originals = {(k, v) for k, v, _ in bad}
    assert {(r.key, r.value) for r in records if r.key != b"dl" or r.value != b"\xff\xfe"} == (
        originals
    )
    stats = cluster.workers[0].stats()
    assert stats.get("dead_letters.too_large") == 1
    if cluster.env.get("SMARTGROUPS_MEMBER_PATH", "batch") == "batch":
        # beside the counters, the member loop's RocksDB memory, by table and kind (the agent
        # path, test_member_path_agent, keeps its members in faust's tables)
        assert {"rocksdb.members.memtables", "rocksdb.index.block_cache"} <= set(stats)
    else:
        assert not any(key.startswith("rocksdb.members.") for key in stats)


def test_events_on_the_wrong_partition_are_applied_to_the_right_state(cluster: Cluster) -> None:
    cluster.worker().start()
    sc = Scenario(cluster, "wp")
    sc.define("group.created", group_id="g", name="G", kind="smart", conditions={"all": [ACME]})
    key = b"wp:m1"
    wrong = (partition_for(key, cluster.partitions) + 1) % cluster.partitions
    first = event("member.upserted", "wp", member_id="m1", profile={"status": "accepted"})
    second = event("member.upserted", "wp", member_id="m1", profile={"email": "x@acme.com"})
    cluster.produce_raw("member-changes", [(key, orjson.dumps(first), wrong)])
    cluster.produce_raw("member-changes", [(key, orjson.dumps(second), None)])
    # Both halves of the profile meet in one record: the member matches.
    sc.wait_members("g", {"m1"})


def test_restart_after_sigterm_and_sigkill_keeps_state_without_duplicates(
    cluster: Cluster,
) -> None:
    worker, sc, members = acme_group_of_40(cluster, "rs")

    assert worker.stop(signal.SIGTERM) == 0
    cluster.worker().start()
    for m in members[:20]:
        sc.upsert(m, status="declined")
    sc.wait_members("g", set(members[20:]))

    # SIGKILL in the middle of a burst: whatever was in flight is re-delivered after restart.
    for m in members[:20]:
        sc.upsert(m, status="accepted")
    cluster.workers[0].stop(signal.SIGKILL)
    cluster.worker().start()
    sc.wait_members("g", set(members))
    # Replaying an already-applied input changes nothing.
    sc.upsert(members[0], status="accepted")
    changes = cluster.settle()
    assert_clean_history(changes)
    assert {m for (_, _, m) in final_memberships(changes)} == set(members)
    state = state_memberships(cluster.read("membership-state"))
    assert state == final_memberships(changes)


def test_a_second_worker_joining_and_leaving_gives_the_same_memberships(
    cluster: Cluster,
) -> None:
    cluster.worker(0).start()
    sc = Scenario(cluster, "rb")
    sc.define("group.created", group_id="g", name="G", kind="smart", conditions={"all": [ACME]})
    members = [f"m{i}" for i in range(60)]
    for m in members[:30]:
        sc.upsert(m, email=f"{m}@acme.com", status="accepted")
    cluster.worker(1).start()
    for m in members[30:]:
        sc.upsert(m, email=f"{m}@acme.com", status="accepted")
    sc.wait_members("g", set(members), timeout=120)
    cluster.workers[1].stop(signal.SIGTERM)
    for m in members[::2]:
        sc.upsert(m, status="rejected")
    sc.wait_members("g", set(members[1::2]), timeout=120)
    changes = cluster.settle()
    assert_clean_history(changes)
    assert state_memberships(cluster.read("membership-state")) == final_memberships(changes)


def test_a_lost_data_directory_is_rebuilt_from_the_changelogs(cluster: Cluster) -> None:
    worker, sc, members = acme_group_of_40(cluster, "dd")
    # One member leaves and joins again: its listing entry is put, deleted and put again on
    # the index changelog, and the restore must end with it put (the last record wins).
    rejoiner = members[-1]
    sc.upsert(rejoiner, status="declined")
    sc.wait_members("g", set(members[:-1]))
    sc.upsert(rejoiner, status="accepted")
    sc.wait_members("g", set(members))
    assert worker.stop(signal.SIGKILL) != 0
    shutil.rmtree(worker.data_dir)
    rebuilt = cluster.worker()
    rebuilt.start()
    batch = cluster.env.get("SMARTGROUPS_MEMBER_PATH", "batch") == "batch"
    if batch:  # the agent path (test_member_path_agent) keeps no query index, faust restores
        _, _, listing = until(
            lambda: call(rebuilt.web_port, "/v1/spaces/dd/groups/g/members?limit=1000"),
            lambda answer: answer[0] == 200,
        )
        assert sorted(m["member_id"] for m in listing["members"]) == sorted(members)
    # The rebuilt state knows every member: leaving and re-joining continue the versions.
    for m in members[:10]:
        sc.upsert(m, status="declined")
    sc.wait_members("g", set(members[10:]))
    if batch:  # the member loop's restore is counted and timed (bench.e2e's restore rate)
        stats = rebuilt.stats()
        assert stats["restored.records"] >= len(members)
        assert stats["restore.ms"] >= 1
    changes = cluster.settle()
    assert_clean_history(changes)
    removed = [e for e in changes if e["type"] == "member.removed"]
    assert {e["version"] for e in removed} == {2}
    assert state_memberships(cluster.read("membership-state")) == final_memberships(changes)
