"""The worker starts safely (issue 14 items 1 and 6), on real brokers.

* On a **cold broker** (started for the test: no topic, no consumer-offsets topic yet, metadata
  still settling) a first start loses nothing: every command gets its result, memberships
  appear, nothing is dead-lettered. Before the fix, faust created the tables' changelogs while
  the first assignment ran and every definition was dead-lettered as ``processing_error``.
* A worker whose table writes cannot reach their changelog (the producer refuses them, forced
  here in the worker process; issue 14's was faust's metadata showing a changelog with 0
  partitions, which table writes no longer consult) stops instead of dead-lettering, and a
  restart processes every record it had not committed.
* An existing topic that does not fit stops the worker before it creates anything; with the
  setting fixed it starts.
* ``/v1/health`` answers 503 until every assigned partition is ready, then 200 with the counts.
"""

from __future__ import annotations

import asyncio
import ipaddress
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from tests.integration.harness import Cluster
from tests.integration.scenario import Scenario

from smartgroups.devbroker import ensure_broker, free_port

ACME = {"field": "profile.email", "op": "email_domain", "value": ["acme.com"]}

# A table failure, forced: the app's producer refuses every changelog record (in faust's own
# producer driver), so the definitions agent's first command cannot be made durable.
REFUSED_CHANGELOGS = """
import sys
from aiokafka.errors import KafkaTimeoutError
from faust.transport.drivers import aiokafka as driver
real = driver.Producer.send
async def refuse(self, topic, *args, **kwargs):
    if topic.endswith("-changelog"):
        raise KafkaTimeoutError(f"forced: {topic} refused")
    return await real(self, topic, *args, **kwargs)
driver.Producer.send = refuse
from smartgroups.cli.main import main
sys.exit(main(["worker", "--loglevel", "info"]))
"""


@pytest.fixture
def cold(tmp_path: Path) -> Iterator[Cluster]:
    """A cluster on a broker of its own, started for this test (a first-ever start)."""
    broker = ensure_broker(
        port=free_port(avoid=frozenset({9092})), run_dir=tmp_path / "kafka", die_with_parent=True
    )
    world = Cluster(broker.bootstrap, tmp_path, f"t{uuid.uuid4().hex[:10]}")
    try:
        yield world
    finally:
        world.stop_all()
        broker.stop()


def topics_of(cluster: Cluster) -> dict[str, int]:
    """``{topic: partitions}`` of every topic of ``cluster``'s prefix."""

    async def describe() -> dict[str, int]:
        admin = AIOKafkaAdminClient(bootstrap_servers=cluster.bootstrap)
        await admin.start()
        try:
            names = [t for t in await admin.list_topics() if t.startswith(cluster.prefix)]
            described = await admin.describe_topics(names) if names else []
            return {d["topic"]: len(d["partitions"]) for d in described}
        finally:
            await admin.close()

    return asyncio.run(describe())


def create_topics(cluster: Cluster, topics: dict[str, int]) -> None:
    """Create ``{full name: partitions}`` (replication 1; changelogs compacted, as faust's)."""

    async def create() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=cluster.bootstrap)
        await admin.start()
        try:
            await admin.create_topics(
                [
                    NewTopic(
                        t,
                        n,
                        1,
                        topic_configs={"cleanup.policy": "compact"}
                        if t.endswith("-changelog")
                        else {},
                    )
                    for t, n in topics.items()
                ]
            )
        finally:
            await admin.close()

    asyncio.run(create())


def define_and_fill(sc: Scenario) -> None:
    """Three groups and three members of one space (inputs only)."""
    sc.define(
        "group.created", group_id="acme", name="Acme", kind="smart", conditions={"all": [ACME]}
    )
    sc.define("group.created", group_id="crew", name="Crew", kind="static")
    sc.define("group.member_added", group_id="crew", member_id="m2")
    sc.define("group.deleted", group_id="ghost")  # rejected (group_not_found): a result too
    sc.upsert("m1", email="a@acme.com", status="accepted")
    sc.upsert("m2", email="b@other.org", status="accepted")
    sc.upsert("m3", email="c@acme.com", status="accepted")


def assert_all_processed(cluster: Cluster, sc: Scenario) -> None:
    results = sc.wait_results(timeout=90)
    assert set(results) == set(sc.sent_commands)
    assert sc.outcome(sc.sent_commands[-1]) != "accepted"
    sc.wait_members("acme", {"m1", "m3"}, timeout=90)
    sc.wait_members("crew", {"m2"}, timeout=90)
    assert cluster.read("dead-letters") == []


def test_a_first_start_on_a_cold_broker_processes_every_record(cold: Cluster) -> None:
    # Records wait on the contract's topics before the worker first starts; the changelogs,
    # the internal topics and the outputs do not exist yet.
    n = cold.partitions
    create_topics(
        cold,
        {cold.topic(t): n for t in ("group-changes", "member-changes")},
    )
    early = Scenario(cold, "early")
    define_and_fill(early)
    worker = cold.worker()
    worker.start(timeout=120)
    late = Scenario(cold, "late")  # and more once it runs, as `make run` does
    define_and_fill(late)
    assert_all_processed(cold, early)
    assert_all_processed(cold, late)
    log = worker.log_path.read_text(errors="replace")
    assert "PartitionsMismatch" not in log
    assert "processing_error" not in log
    changelogs = {t: p for t, p in topics_of(cold).items() if t.endswith("-changelog")}
    assert changelogs == {
        f"{cold.prefix}sg-{table}-changelog": n
        for table in ("members", "groups", "due", "catalogs", "index")
    }


def test_a_table_failure_stops_the_worker_and_a_restart_loses_nothing(cluster: Cluster) -> None:
    worker = cluster.worker()
    worker.start(command=[sys.executable, "-c", REFUSED_CHANGELOGS])
    sc = Scenario(cluster, "halt")
    define_and_fill(sc)
    status = worker.wait_exit(timeout=60)
    log = worker.tail(200)
    assert status != 0, log
    assert "stopping the worker: definitions could not process" in log
    assert "KafkaTimeoutError: forced" in log
    # Nothing consumed as a dead letter, nothing answered: the records wait for the restart.
    assert cluster.read("dead-letters") == []
    assert sc.results() == {}
    cluster.worker().start()
    assert_all_processed(cluster, sc)


def test_a_topic_that_does_not_fit_stops_the_worker_before_anything_is_created(
    cluster: Cluster,
) -> None:
    wrong = cluster.partitions - 1
    existing = {
        cluster.topic("member-changes"): wrong,
        f"{cluster.prefix}sg-catalogs-changelog": wrong,
    }
    create_topics(cluster, existing)
    worker = cluster.worker()
    worker.start(wait=False)
    assert worker.wait_exit(timeout=60) != 0
    log = worker.tail(40)
    for name in existing:
        assert f"{name} has {wrong} partitions, expected {cluster.partitions}" in log
    assert f"SMARTGROUPS_PARTITIONS={wrong}" in log
    assert "Traceback" not in log
    assert topics_of(cluster) == existing  # nothing created, not even the other changelogs

    cluster.partitions = wrong
    fixed = cluster.worker(1, extra_env={"SMARTGROUPS_PARTITIONS": str(wrong)})
    fixed.start()
    created = topics_of(cluster)
    leader = f"{cluster.prefix}sg-__assignor-__leader"
    assert created.pop(leader) == 1
    assert set(created.values()) == {wrong}
    assert len(created) == 17  # 12 contract and internal topics, 5 changelogs
    sc = Scenario(cluster, "fixed")
    define_and_fill(sc)
    assert_all_processed(cluster, sc)


def test_health_is_503_until_every_assigned_partition_is_ready(cluster: Cluster) -> None:
    first = cluster.worker(0)
    first.start(wait=False)
    seen: list[tuple[int, dict[str, Any]]] = []
    body = None
    while body is None:
        assert first.proc is not None and first.proc.poll() is None, first.tail()
        answer = first.health()
        if answer is not None:
            seen.append(answer)
            if answer[0] == 200:
                body = answer[1]
        assert len(seen) < 900, seen[-3:]
        if body is None:
            time.sleep(0.1)
    before = [b for status, b in seen if status == 503]
    assert before, f"never answered 503 before ready: {seen[:3]}"
    assert all(b["ok"] is False and b["partitions"]["ready"] == 0 for b in before), before
    assert all(status in (200, 503) for status, _ in seen)
    n = cluster.partitions
    assert body == {"ok": True, "partitions": {"assigned": n, "ready": n}}
    assert first.health("/health/") == (200, body)
    # The HTTP server listens on loopback only, never on every interface (it serves personal
    # data once the query API exists): the kernel's table of listening sockets says where.
    assert listening_addresses(first.web_port) == {"127.0.0.1"}

    second = cluster.worker(1)
    second.start()
    first.wait_healthy()
    counts = [w.health() for w in (first, second)]
    assert all(c is not None and c[0] == 200 for c in counts), counts
    assigned = [c[1]["partitions"]["assigned"] for c in counts if c is not None]
    assert sum(assigned) == n and min(assigned) >= 1, counts


def listening_addresses(port: int) -> set[str]:
    """The local IPv4/IPv6 addresses with a socket listening on ``port`` (from /proc/net)."""
    found: set[str] = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        with open(table) as handle:
            next(handle)
            for line in handle:
                local, state = line.split()[1], line.split()[3]
                address, hex_port = local.split(":")
                if state != "0A" or int(hex_port, 16) != port:  # 0A: LISTEN
                    continue
                raw = bytes.fromhex(address)
                if width == 8:
                    found.add(".".join(str(b) for b in reversed(raw)))
                else:
                    words = [raw[i : i + 4][::-1] for i in range(0, 16, 4)]
                    v6 = ipaddress.IPv6Address(b"".join(words))
                    found.add(str(v6.ipv4_mapped or v6))
    return found
