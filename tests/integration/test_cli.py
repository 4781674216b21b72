"""The command line on the real broker: what `make run` shows, produce → worker → tail, and a
clear refusal to start on topics that do not fit the configuration."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from pathlib import Path

import orjson
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from tests.integration.harness import Cluster

REPO = Path(__file__).resolve().parents[2]


def cli(
    cluster: Cluster, *args: str, stdin: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``smartgroups ARGS`` with the cluster's environment (broker, prefix, partitions)."""
    return subprocess.run(
        [sys.executable, "-m", "smartgroups", *args],
        env=cluster.worker(0).env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        check=False,
    )


def test_examples_through_produce_worker_and_tail(cluster: Cluster) -> None:
    cluster.worker(0).start()
    for logical in ("group-changes", "member-changes", "property-changes", "form-answers"):
        done = cli(cluster, "produce", logical, str(REPO / "examples" / f"{logical}.jsonl"))
        assert done.returncode == 0, done.stderr
    tail = cli(cluster, "tail", "--from-beginning", "--max", "4", "--timeout", "45", timeout=90)
    assert tail.returncode == 0, tail.stderr
    changes = [orjson.loads(line) for line in tail.stdout.splitlines()]
    assert {(c["type"], c["group_id"], c["member_id"]) for c in changes} == {
        ("member.added", "coaches", "m3"),
        ("member.added", "acme-vip", "m1"),
        ("member.added", "acme-vip", "m3"),  # cascaded from "coaches"
        ("member.added", "tennis-fans", "m2"),  # "Tennis" matches "tennis": casefolded
    }
    # A member update typed on standard input, as the README shows.
    update = {
        "id": "e-cli-1",
        "type": "member.upserted",
        "space": "demo",
        "member_id": "m1",
        "profile": {"status": "deactivated"},
    }
    done = cli(cluster, "produce", "member-changes", "-", stdin=orjson.dumps(update).decode())
    assert done.returncode == 0, done.stderr
    tail = cli(
        cluster, "tail", "--from-beginning", "--group", "acme-vip", "--max", "3", "--timeout", "45"
    )
    changes = [orjson.loads(line) for line in tail.stdout.splitlines()]  # partitions interleave
    assert {(c["type"], c["member_id"], c["reason"], c["version"]) for c in changes} == {
        ("member.added", "m1", "conditions_met", 1),
        ("member.added", "m3", "conditions_met", 1),
        ("member.removed", "m1", "ineligible_status", 2),
    }


def test_the_demo_worker_publishes_the_examples_and_logs_each_change(cluster: Cluster) -> None:
    worker = cluster.worker(0)
    env = worker.env
    log_path = worker.log_path
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "smartgroups", "worker", "--demo"],
            env=env,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        expected = "member.added demo/tennis-fans/m2 v1 (conditions_met)"
        deadline = time.monotonic() + 90
        while expected not in log_path.read_text(errors="replace"):
            assert proc.poll() is None, log_path.read_text(errors="replace")[-4000:]
            assert time.monotonic() < deadline, log_path.read_text(errors="replace")[-4000:]
            time.sleep(0.5)
        text = log_path.read_text(errors="replace")
        assert "member.added demo/acme-vip/m1 v1 (conditions_met)" in text
        assert "member.added demo/coaches/m3 v1 (manual)" in text
    finally:
        proc.terminate()
        assert proc.wait(60) == 0


async def test_a_mis_sized_existing_topic_stops_the_worker_with_its_name(
    cluster: Cluster,
) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=cluster.bootstrap)
    await admin.start()
    try:
        wrong = cluster.partitions + 1
        await admin.create_topics([NewTopic(cluster.topic("member-changes"), wrong, 1)])
    finally:
        await admin.close()
    done = cli(cluster, "worker", timeout=90)
    assert done.returncode != 0
    output = done.stdout + done.stderr
    assert f"{cluster.topic('member-changes')}" in output
    assert "SMARTGROUPS_PARTITIONS" in output
    assert "Traceback" not in output


def test_tail_of_a_missing_topic_says_so(cluster: Cluster) -> None:
    done = cli(cluster, "tail", "--topic-prefix", f"missing{uuid.uuid4().hex[:6]}.", "--max", "1")
    assert done.returncode == 1
    assert "does not exist" in done.stderr
    assert "Traceback" not in done.stderr
