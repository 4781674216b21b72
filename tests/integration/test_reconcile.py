"""``smartgroups reconcile`` on a real worker: stored memberships changed behind the worker's back
(as an evaluation bug would have left them) are found by a dry run, corrected once with
``cause.kind = "reconcile"``, and a second reconcile finds nothing."""

from __future__ import annotations

from tests.integration.harness import Cluster, final_memberships
from tests.integration.scenario import Scenario
from tests.integration.test_cli import assert_one_line, cli

from smartgroups.core.ids import member_key
from smartgroups.core.partitioning import partition_for
from smartgroups.core.record import Pair
from smartgroups.service import record_codec
from smartgroups.worker.rocks import RocksTable

ACME = {"field": "profile.email", "op": "email_domain", "value": ["acme.com"]}


def test_reconcile_finds_and_corrects_only_the_differences(cluster: Cluster) -> None:
    assert_one_line(cli(cluster, "reconcile", "--space", "a:b"), "--space a:b: not an id")
    sc = Scenario(cluster, "rec")
    worker = cluster.worker(0)
    worker.start()
    sc.define("group.created", group_id="vip", name="VIP", kind="smart", conditions=ACME)
    for i in range(3):
        sc.upsert(f"m{i}", email=f"m{i}@acme.com", status="accepted")
    sc.upsert("m3", email="m3@other.org", status="accepted")
    sc.wait_members("vip", {"m0", "m1", "m2"})
    worker.stop()

    # What a buggy build would have left: m0 removed, m3 added, without a word on the topics.
    members = RocksTable(worker.data_dir / "members", "members")
    try:
        for member_id, wrong in (("m0", Pair(False, 2, 0)), ("m3", Pair(True, 1, 0))):
            key = member_key(sc.space, member_id)
            partition = partition_for(key, cluster.partitions)
            raw = members.get(partition, key)
            assert raw is not None
            record = record_codec.loads(raw)
            record.pairs["vip"] = wrong
            members.put(partition, key, record_codec.dumps(record))
    finally:
        members.close()
    before = cluster.events("membership-changes")

    assert_one_line(cli(cluster, "reconcile", "--space", sc.space), "no worker of app")
    worker.start()
    dry = cli(cluster, "reconcile", "--space", sc.space, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines() == [
        "space  group  differences",
        f"{sc.space}    vip              2",
        "dry run: 2 differences in 1 groups over 4 members; nothing emitted",
    ], dry.stdout
    unchanged = cluster.settle("membership-changes", quiet=2.0)
    assert sorted(e["id"] for e in unchanged) == sorted(e["id"] for e in before)

    done = cli(cluster, "reconcile", "--space", sc.space)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == (
        "reconciled 4 members: 2 corrections emitted (cause.kind reconcile)"
    )
    after = cluster.settle("membership-changes", quiet=2.0)
    new = [e for e in after if e not in before]
    assert sorted((e["member_id"], e["type"], e["version"], e["reason"]) for e in new) == [
        ("m0", "member.added", 3, "conditions_met"),
        ("m3", "member.removed", 2, "conditions_unmet"),
    ]
    assert all(e["cause"] == {"kind": "reconcile"} for e in new)
    assert {m for (_, _, m) in final_memberships(after)} == {"m0", "m1", "m2"}

    again = cli(cluster, "reconcile", "--space", sc.space, "--group", "vip")
    assert again.stdout.splitlines()[-1] == (
        "reconciled 4 members: 0 corrections emitted (cause.kind reconcile)"
    )
