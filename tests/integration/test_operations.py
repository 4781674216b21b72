"""Operations (contract §8) on one real worker and the real broker, in the order an operator
meets them: metrics and JSON logs of a scenario, then dead letters and their redrive, then a
reset to earliest and a restart that replays everything and emits nothing new.

The tests share one worker and run in file order (each builds on the state the previous left).
"""

from __future__ import annotations

import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer
from prometheus_client.parser import text_string_to_metric_families
from tests.integration.harness import PARTITIONS, Cluster
from tests.integration.scenario import Scenario
from tests.integration.test_cli import assert_one_line, cli

SECRET = "Qz-sasl-secret-7781"
"""A SASL password given to the worker: it must never reach its log."""

PROFILE = [f"Qzfirst{i}" for i in range(6)]
EMAILS = [f"qz{i}.mail@qzdomain.example" for i in range(6)]
PLAN = "QzplanGold"
ANSWER = "QzanswerBlue"
BAD = b"Qz-not-json-at-all"
PRIVATE = [*PROFILE, *EMAILS, PLAN, ANSWER, "qzdomain", SECRET]
"""Every profile, property and answer value of the scenario, and the secret."""


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture(scope="module")
def cluster(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root: Path = tmp_path_factory.mktemp("operations")
    world = Cluster(kafka_bootstrap, root, f"op{uuid.uuid4().hex[:8]}")
    world.env = {"SMARTGROUPS_LOG_FORMAT": "json", "KAFKA_SASL_PASSWORD": SECRET}
    world.worker(0).start(command=_worker_argv("debug"))
    yield world
    world.stop_all()


@pytest.fixture(scope="module")
def sc(cluster: Cluster) -> Scenario:
    return Scenario(cluster, f"ops-{uuid.uuid4().hex[:6]}")


def _worker_argv(level: str) -> list[str]:
    import sys

    return [sys.executable, "-m", "smartgroups", "worker", "--loglevel", level]


def scrape(cluster: Cluster) -> Samples:
    """``GET /metrics`` parsed with prometheus-client's own parser: (name, labels) -> value."""
    url = f"http://127.0.0.1:{cluster.worker(0).web_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = response.read().decode()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        assert family.name.startswith("smartgroups_"), family.name
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def wait_metrics(
    cluster: Cluster, holds: Callable[[Samples], bool], timeout: float = 30
) -> Samples:
    deadline = time.monotonic() + timeout
    samples = scrape(cluster)
    while not holds(samples) and time.monotonic() < deadline:
        time.sleep(0.3)
        samples = scrape(cluster)
    return samples


def test_metrics_count_the_scenario_and_json_logs_hold_no_value_or_secret(
    cluster: Cluster, sc: Scenario
) -> None:
    sc.define("property.defined", property_id="plan", name="Plan", value_type="text")
    sc.define("question.defined", question_id="color", name="Color", value_type="text")
    for i in range(6):
        sc.upsert(f"m{i}", first_name=PROFILE[i], email=EMAILS[i], status="accepted")
    for i in range(3):
        sc.set_property(f"m{i}", "plan", PLAN)
    sc.answer("m4", "color", ANSWER)
    cluster.produce_raw("member-changes", [(f"{sc.space}:bad".encode(), BAD, None)])
    cluster.wait_records("dead-letters", 1)
    sc.wait_results()
    sc.barrier("m5")  # every member input above is applied before the group is created
    conditions = {"field": "property.plan", "op": "eq", "value": PLAN}
    sc.define("group.created", group_id="gold", name="Gold", kind="smart", conditions=conditions)
    sc.define("group.deleted", group_id="missing")
    sc.wait_members("gold", {"m0", "m1", "m2"})
    sc.wait_results()

    member_inputs = 6 + 3 + 1 + 1  # upserts, properties, answer, the bad record

    def complete(s: Samples) -> bool:
        return (
            value(s, "smartgroups_latency_seconds_count") >= member_inputs
            and value(s, "smartgroups_backfills_total") >= PARTITIONS
            and all(
                value(s, "smartgroups_consumer_lag", topic="member-changes", partition=str(p)) == 0
                for p in range(PARTITIONS)
            )
        )

    s = wait_metrics(cluster, complete)
    inputs = "smartgroups_inputs_total"
    assert value(s, inputs, topic="member-changes", outcome="applied") == 6
    assert value(s, inputs, topic="property-changes", outcome="applied") == 3
    assert value(s, inputs, topic="form-answers", outcome="applied") == 1
    assert value(s, inputs, topic="member-changes", outcome="dead_lettered") == 1
    assert value(s, inputs, topic="group-changes", outcome="applied") == 6  # 2 barrier commands
    dead = "smartgroups_dead_letters_total"
    assert value(s, dead, topic="member-changes", code="decode_error") == 1
    assert value(s, "smartgroups_transitions_total", reason="group_created") == 3
    assert value(s, "smartgroups_transitions_total", reason="manual") == 1  # the barrier
    commands = "smartgroups_commands_total"
    assert value(s, commands, result="accepted", code="") == 5
    assert value(s, commands, result="rejected", code="group_not_found") == 1
    # One backfill per partition: gold's (the barrier's group is static: nobody to scan).
    assert value(s, "smartgroups_backfills_total") == PARTITIONS
    assert value(s, "smartgroups_latency_seconds_count") == member_inputs
    assert value(s, "smartgroups_batch_records_sum") >= member_inputs
    assert value(s, "smartgroups_batch_seconds_count") == value(
        s, "smartgroups_batch_records_count"
    )
    assert value(s, "smartgroups_checkpoint_delivery_seconds_count") >= 1
    lags = {k for k in s if k[0] == "smartgroups_consumer_lag"}
    assert {dict(k[1])["partition"] for k in lags} == {str(p) for p in range(PARTITIONS)}
    assert {dict(k[1])["topic"] for k in lags} >= {"member-changes", "group-changes", "fanout"}
    for labels in (dict(k[1]) for k in s):
        assert not set(labels) & {"space", "group", "group_id", "member", "member_id"}

    log = cluster.worker(0).log_path.read_text()
    lines = [x for x in log.splitlines() if x.strip() and x != "--- start ---"]
    assert len(lines) > 20
    for line in lines:
        record = orjson.loads(line)
        assert {"time", "level", "logger", "message"} <= set(record), line
    found = [word for word in PRIVATE if word.lower() in log.lower()]
    assert found == [], f"the log shows {found}"
    assert BAD.decode() not in log
    dead_lettered = [orjson.loads(x) for x in lines if "dead-lettered" in x]
    assert dead_lettered and {"topic", "partition", "offset"} <= set(dead_lettered[0])


def test_status_shows_the_worker_its_partitions_and_their_lag(cluster: Cluster) -> None:
    done = cli(cluster, "status")
    assert done.returncode == 0, done.stderr
    url = f"http://127.0.0.1:{cluster.worker(0).web_port}"
    app = f"{cluster.prefix}sg"
    assert f"{app}: 1 consumer(s), {app}-members: 1 consumer(s)" in done.stdout
    rows = [[c for c in line.split() if c not in "│┃"] for line in done.stdout.splitlines()]
    inputs = 4 * PARTITIONS  # four input topics
    assert [url, str(inputs), "0", "0"] in rows, done.stdout
    lag_rows = [r for r in rows if len(r) == 6 and r[-1] == url]
    assert len(lag_rows) == inputs and all(r[4] == "0" for r in lag_rows)
    assert "backfills in progress: none" in done.stdout


def test_reset_and_redrive_refuse_bad_arguments(cluster: Cluster) -> None:
    assert_one_line(cli(cluster, "reset", "--topics", "nope"), "--topics nope: nope is not")
    assert_one_line(cli(cluster, "reset", "--to-datetime", "yesterday"), "--to-datetime")
    assert_one_line(cli(cluster, "dead-letters", "--since", "soon"), "--since soon")
    assert_one_line(cli(cluster, "dead-letters", "--execute"), "--execute applies to redrive")
    assert_one_line(cli(cluster, "dead-letters", "--values"), "--values needs --show")
    assert_one_line(cli(cluster, "status", "--watch", "0"), "--watch 0: must be more than 0")


def test_reset_refuses_while_a_worker_runs(cluster: Cluster) -> None:
    for extra in ([], ["--execute"]):
        done = cli(cluster, "reset", "--to-earliest", *extra)
        assert_one_line(done, "the app's workers are running (")
        assert "stop every `smartgroups worker` of the app" in done.stderr


def test_dead_letters_counted_shown_and_redriven_once(cluster: Cluster, sc: Scenario) -> None:
    topic = cluster.topic("member-changes")
    done = cli(cluster, "dead-letters")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1].split() == ["decode_error", topic, "1"]
    assert done.stdout.splitlines()[-1] == "1 dead letters"
    assert cli(cluster, "dead-letters", "--code", "schema_error").stdout.endswith(
        "0 dead letters\n"
    )

    shown = cli(cluster, "dead-letters", "--show", "5")
    line = orjson.loads(shown.stdout)
    assert line["code"] == "decode_error" and line["key"] == f"{sc.space}:bad"
    assert line["source"]["topic"] == topic and "value" not in line
    assert BAD.decode() not in shown.stdout
    with_values = orjson.loads(cli(cluster, "dead-letters", "--show", "1", "--values").stdout)
    assert with_values["value"] == BAD.decode()

    cluster.worker(0).stop()  # the worker would dead-letter the redriven record again
    dry = cli(cluster, "dead-letters", "redrive")
    assert "1 dead letters would be redriven" in dry.stdout, dry.stdout + dry.stderr
    sent = cli(cluster, "dead-letters", "redrive", "--execute")
    assert "1 dead letters redriven" in sent.stdout, sent.stdout + sent.stderr
    again = cli(cluster, "dead-letters", "redrive", "--execute")
    assert "0 dead letters redriven" in again.stdout, again.stdout + again.stderr

    redriven = [
        m for m in cluster.read("member-changes") if any(h == "redriven.from" for h, _ in m.headers)
    ]
    assert len(redriven) == 1
    assert redriven[0].key == f"{sc.space}:bad".encode() and redriven[0].value == BAD
    assert dict(redriven[0].headers)["redriven.from"].decode() == line["dead_letter"]


def test_reset_to_earliest_replays_and_emits_nothing_new(cluster: Cluster, sc: Scenario) -> None:
    before = cluster.events("membership-changes")
    ends = _ends(cluster, ["member-changes", "property-changes", "form-answers", "group-changes"])
    dry = cli(cluster, "reset", "--to-earliest")
    assert dry.returncode == 0, dry.stderr
    rows = [r.split() for r in dry.stdout.splitlines()[1:-1]]
    app = f"{cluster.prefix}sg"
    assert {r[0] for r in rows} == {app, f"{app}-members"}
    by_topic: dict[str, int] = {}
    for group, topic, _partition, current, target, reread in rows:
        assert target == "0" and reread == (current if current != "-" else "0")
        by_topic[topic] = by_topic.get(topic, 0) + int(reread)
        assert (group == app) == topic.endswith("group-changes")
    # Everything was processed but the redriven record (the worker was stopped before it).
    ends["member-changes"] -= 1
    assert by_topic == {cluster.topic(t): n for t, n in ends.items()}
    assert dry.stdout.splitlines()[-1].startswith("dry run: ")
    assert cli(cluster, "reset", "--to-earliest").stdout == dry.stdout  # nothing moved

    done = cli(cluster, "reset", "--to-earliest", "--execute")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1].startswith(f"reset {len(rows)} partitions")
    after_dry = cli(cluster, "reset")
    assert all(r.split()[3] == "0" for r in after_dry.stdout.splitlines()[1:-1])

    cluster.worker(0).start(command=_worker_argv("info"))
    inputs = "smartgroups_inputs_total"
    s = wait_metrics(
        cluster,
        lambda s: (
            value(s, inputs, topic="member-changes", outcome="redelivered") >= 6
            and value(s, inputs, topic="group-changes", outcome="redelivered") >= 6
        ),
        timeout=60,
    )
    assert value(s, inputs, topic="member-changes", outcome="applied") == 0
    assert value(s, inputs, topic="member-changes", outcome="redelivered") == 6
    after = cluster.settle("membership-changes")
    assert {e["id"] for e in after} == {e["id"] for e in before}  # nothing new
    assert value(scrape(cluster), "smartgroups_transitions_total", reason="group_created") == 0


def _ends(cluster: Cluster, logical: list[str]) -> dict[str, int]:
    """Records on each topic (sum of its partitions' end offsets)."""
    import asyncio

    from aiokafka import TopicPartition

    async def read() -> dict[str, int]:
        consumer = AIOKafkaConsumer(bootstrap_servers=cluster.bootstrap, group_id=None)
        await consumer.start()
        try:
            out = {}
            for name in logical:
                tps = [TopicPartition(cluster.topic(name), p) for p in range(PARTITIONS)]
                out[name] = sum((await consumer.end_offsets(tps)).values())
            return out
        finally:
            await consumer.stop()

    return asyncio.run(read())
