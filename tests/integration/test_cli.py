"""The command line on the real broker, run as users run it (the ``smartgroups`` console script):
what `make run` shows, produce → worker → tail on every output topic, and every common mistake
(missing file, unreachable broker, missing topic) as one line on stderr with exit status 2."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from tests.conftest import _no_broker
from tests.integration.harness import Cluster

from smartgroups.devbroker import BrokerError, ensure_broker, free_port

REPO = Path(__file__).resolve().parents[2]
SMARTGROUPS = str(Path(sys.executable).with_name("smartgroups"))
"""The console script installed beside this interpreter (``.venv/bin/smartgroups``)."""


def cli(
    cluster: Cluster, *args: str, stdin: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``smartgroups ARGS`` with the cluster's environment (broker, prefix, partitions)."""
    return run_cli(*args, env=cluster.worker(0).env, stdin=stdin, timeout=timeout)


def run_cli(
    *args: str, env: dict[str, str] | None = None, stdin: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SMARTGROUPS, *args],
        env=env if env is not None else dict(os.environ),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        check=False,
    )


def assert_one_line(done: subprocess.CompletedProcess[str], starts: str) -> None:
    """Exit status 2 and exactly one stderr line, ``smartgroups: <starts>…``, no traceback."""
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(f"smartgroups: {starts}"), done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert "Traceback" not in done.stderr and "Unclosed" not in done.stderr
    assert done.stdout == ""


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
    assert done.returncode == 2
    last = done.stderr.splitlines()[-1]
    assert last.startswith("smartgroups: existing topics do not fit the configuration: ")
    assert f"{cluster.topic('member-changes')}" in last
    assert "SMARTGROUPS_PARTITIONS" in last
    assert "Traceback" not in done.stdout + done.stderr


def test_a_missing_file_is_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "nope.jsonl"
    done = run_cli("produce", "member-changes", str(missing))
    assert_one_line(done, f"{missing}: no such file (check the path)")


@pytest.mark.parametrize(
    "command",
    [
        ["produce", "member-changes", str(REPO / "examples" / "member-changes.jsonl")],
        ["tail", "--from-beginning"],
        ["worker"],
    ],
    ids=["produce", "tail", "worker"],
)
def test_an_unreachable_broker_is_one_line(command: list[str], tmp_path: Path) -> None:
    env = {**os.environ, "SMARTGROUPS_DATA_DIR": str(tmp_path / "data")}
    began = time.monotonic()
    done = run_cli(*command, "--bootstrap-servers", "127.0.0.1:1", env=env)
    assert_one_line(
        done,
        "cannot reach Kafka at 127.0.0.1:1: connection refused (is a broker running there? set"
        " KAFKA_BOOTSTRAP_SERVERS or --bootstrap-servers)",
    )
    assert time.monotonic() - began < 15


def test_a_broker_that_never_answers_fails_within_the_connection_bound(tmp_path: Path) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # accepts in the kernel, never answers
        address = f"127.0.0.1:{silent.getsockname()[1]}"
        env = {**os.environ, "SMARTGROUPS_DATA_DIR": str(tmp_path / "data")}
        began = time.monotonic()
        done = run_cli("worker", "--bootstrap-servers", address, env=env, timeout=60)
        elapsed = time.monotonic() - began
    assert_one_line(done, f"cannot reach Kafka at {address}: no answer within 10 s (")
    assert elapsed < 15


@pytest.mark.parametrize(
    ("flags", "starts"),
    [
        (
            ["--security-protocol", "SSL"],
            "cannot reach Kafka at {broker}: the broker closed the connection (does its listener"
            " expect SSL? check --security-protocol or KAFKA_SECURITY_PROTOCOL)",
        ),
        (
            ["--security-protocol", "SASL_PLAINTEXT", "--sasl-username", "svc"],
            "Kafka at {broker} does not accept SASL PLAIN there (check --security-protocol and"
            " --sasl-mechanism)",
        ),
    ],
    ids=["tls-to-plaintext", "sasl-to-plaintext"],
)
def test_a_security_setting_the_broker_does_not_speak_is_one_line(
    cluster: Cluster, flags: list[str], starts: str
) -> None:
    env = {**cluster.worker(0).env, "KAFKA_SASL_PASSWORD": "not-shown-anywhere"}
    for command in (["tail", "--timeout", "5"], ["worker"]):
        done = run_cli(*command, *flags, env=env)
        assert_one_line(done, starts.format(broker=cluster.bootstrap))
        assert "not-shown-anywhere" not in done.stderr


def test_tail_of_a_missing_topic_says_so_at_once(cluster: Cluster) -> None:
    prefix = f"missing{uuid.uuid4().hex[:6]}."
    began = time.monotonic()
    done = cli(cluster, "tail", "--topic-prefix", prefix, "--timeout", "2")
    assert_one_line(
        done,
        f"topic {prefix}membership-changes does not exist on {cluster.bootstrap} (start"
        " `smartgroups worker` once to create the topics",
    )
    assert time.monotonic() - began < 2 + 3  # at once: no waiting out the timeout first


def test_tail_reads_every_output_topic(cluster: Cluster, tmp_path: Path) -> None:
    """One space through the real worker: a group, a member added then removed, a rejected
    command and two undecodable records, each read back with ``tail --topic``."""
    cluster.worker(0).start()
    definitions = tmp_path / "group-changes.jsonl"
    definitions.write_text(
        '{"id": "c1", "type": "group.created", "space": "s", "group_id": "active",'
        ' "name": "Active", "kind": "smart", "conditions": {"all": [{"field":'
        ' "profile.last_active_at", "op": "within_last", "value": {"days": 30}}]}}\n'
        '{"id": "c2", "type": "group.deleted", "space": "s", "group_id": "no-such-group"}\n'
    )
    done = cli(cluster, "produce", "group-changes", str(definitions))
    assert done.returncode == 0, done.stderr
    results = tail(cluster, "group-change-results", 2)
    assert [(r["type"], r["command_id"]) for r in results] == [
        ("command.accepted", "c1"),
        ("command.rejected", "c2"),
    ]
    assert results[1]["code"]

    members = tmp_path / "member-changes.jsonl"
    members.write_text(  # relative instants: produce resolves them against its own clock
        '{"id": "e1", "type": "member.upserted", "space": "s", "member_id": "m1", "profile":'
        ' {"status": "accepted", "last_active_at": "now-10d"}}\n'
        '{"id": "e2", "type": "member.upserted", "space": "s", "member_id": "m2", "profile":'
        ' {"status": "accepted", "last_active_at": "now-40d"}}\n'
        '{"id": "e3", "type": "member.upserted", "space": "s", "member_id": "m1", "profile":'
        ' {"status": "deactivated", "last_active_at": "now-10d"}}\n'
    )
    done = cli(cluster, "produce", "member-changes", str(members))
    assert done.returncode == 0, done.stderr
    assert done.stderr == f"published 3 events to {cluster.topic('member-changes')}\n"
    cluster.produce_raw(
        "member-changes", [(b"s:m8", b"{oops", None), (b"s:m9", b"\xff\xfe binary", None)]
    )

    changes = tail(cluster, "membership-changes", 2, "--group", "active")
    assert [(c["type"], c["member_id"], c["version"], c["reason"]) for c in changes] == [
        ("member.added", "m1", 1, "conditions_met"),
        ("member.removed", "m1", 2, "ineligible_status"),
    ]
    state = tail(cluster, "membership-state", 2, "--group", "active")
    assert [s["key"] for s in state] == ["s:active:m1", "s:active:m1"]
    assert (state[0]["value"]["member_id"], state[0]["value"]["version"]) == ("m1", 1)
    assert state[1]["value"] is None  # the tombstone of the removal

    letters = sorted(tail(cluster, "dead-letters", 2), key=lambda d: d["key"])
    assert [d["key"] for d in letters] == ["s:m8", "s:m9"]
    assert letters[0]["value"] == "{oops"
    assert base64.b64decode(letters[1]["value_base64"]) == b"\xff\xfe binary"
    for letter in letters:
        headers = letter["headers"]
        assert headers["error.code"] == "decode_error"
        assert headers["error.message"]
        assert headers["source.topic"] == cluster.topic("member-changes")
        assert int(headers["source.partition"]) in range(cluster.partitions)
        assert int(headers["source.offset"]) >= 0


def tail(cluster: Cluster, topic: str, count: int, *flags: str) -> list[dict[str, object]]:
    """``smartgroups tail --topic TOPIC --from-beginning --max COUNT``: the decoded lines."""
    done = cli(
        cluster,
        "tail",
        "--topic",
        topic,
        "--from-beginning",
        "--max",
        str(count),
        "--timeout",
        "45",
        *flags,
        timeout=90,
    )
    assert done.returncode == 0 and done.stderr == "", done.stderr
    lines = [orjson.loads(line) for line in done.stdout.splitlines()]
    assert len(lines) == count, lines
    return lines


async def test_tail_timeout_ends_the_command_on_time(cluster: Cluster) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=cluster.bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(cluster.topic("membership-changes"), 2, 1)])
    finally:
        await admin.close()
    began = time.monotonic()
    done = cli(cluster, "tail", "--timeout", "3")
    elapsed = time.monotonic() - began
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert 3 <= elapsed < 3 + 4


def test_tail_timeout_holds_when_the_broker_goes_away(tmp_path: Path) -> None:
    """The broker of a running ``tail --timeout`` stops: the tail still ends on time, quietly
    (it used to print metadata warnings, and once never ended)."""
    try:
        broker = ensure_broker(
            port=free_port(avoid=frozenset({9092})),
            run_dir=tmp_path / "kafka",
            die_with_parent=True,
        )
    except BrokerError as exc:
        _no_broker(f"a broker of this test's own did not start: {exc}")
    try:

        async def create() -> None:
            admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
            await admin.start()
            try:
                await admin.create_topics([NewTopic("membership-changes", 2, 1)])
            finally:
                await admin.close()

        asyncio.run(create())
        began = time.monotonic()
        proc = subprocess.Popen(
            [SMARTGROUPS, "tail", "--bootstrap-servers", broker.bootstrap, "--timeout", "6"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        time.sleep(2.5)
    finally:
        broker.stop()
    out, err = proc.communicate(timeout=60)
    elapsed = time.monotonic() - began
    assert (proc.returncode, out, err) == (0, "", "")
    assert elapsed < 6 + 4
