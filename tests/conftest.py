"""Shared fixtures: one real Kafka broker per session, and unique names per test.

``kafka_bootstrap`` ("host:port") picks its broker in this order:

1. ``KAFKA_BOOTSTRAP_SERVERS`` is set: use it as is (docker-compose, a shared cluster).
2. A Docker engine answers: ``apache/kafka:4.1.1`` through testcontainers.
3. Otherwise the local jar broker (``smartgroups.devbroker``) on a free port, never 9092, so a
   developer's ``make run`` broker is left alone; its data live in a tmp dir; stopped at the end.

When no broker can be had, the fixture skips with the reason on a laptop and **fails** under CI
(``CI`` set). Topics are not auto-created: create yours (aiokafka admin) with the partition count
the test needs. Add area-specific fixtures in your own directory's conftest.py, not here.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

from smartgroups.devbroker import BrokerError, ensure_broker, free_port

KAFKA_IMAGE = "apache/kafka:4.1.1"


def _no_broker(reason: str) -> NoReturn:
    if os.environ.get("CI"):
        pytest.fail(f"no Kafka broker under CI: {reason}", pytrace=False)
    pytest.skip(f"no Kafka broker: {reason}")


def docker_available() -> bool:
    """True when a Docker engine answers a ping within a few seconds (never raises)."""
    if not os.environ.get("DOCKER_HOST") and not Path("/var/run/docker.sock").exists():
        return False
    try:
        import docker

        client = docker.from_env(timeout=3)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


def _docker_broker() -> Iterator[str]:
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.docker_client import DockerClient
    from testcontainers.core.wait_strategies import LogMessageWaitStrategy

    port = free_port()
    host = DockerClient().host()
    container = (
        DockerContainer(KAFKA_IMAGE)
        .with_bind_ports(port, port)  # same port both sides, so the advertised listener is right
        .with_envs(
            KAFKA_NODE_ID="1",
            KAFKA_PROCESS_ROLES="broker,controller",
            KAFKA_LISTENERS=f"PLAINTEXT://:{port},CONTROLLER://:9093",
            KAFKA_ADVERTISED_LISTENERS=f"PLAINTEXT://{host}:{port}",
            KAFKA_CONTROLLER_LISTENER_NAMES="CONTROLLER",
            KAFKA_LISTENER_SECURITY_PROTOCOL_MAP="CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            KAFKA_CONTROLLER_QUORUM_VOTERS="1@localhost:9093",
            KAFKA_INTER_BROKER_LISTENER_NAME="PLAINTEXT",
            KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR="1",
            KAFKA_OFFSETS_TOPIC_NUM_PARTITIONS="1",
            KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR="1",
            KAFKA_TRANSACTION_STATE_LOG_MIN_ISR="1",
            KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR="1",
            KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR="1",
            KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS="0",
            KAFKA_AUTO_CREATE_TOPICS_ENABLE="false",
            KAFKA_HEAP_OPTS="-Xms256m -Xmx512m",
        )
        .waiting_for(LogMessageWaitStrategy("Kafka Server started"))
    )
    try:
        container.start()
    except Exception as exc:
        _no_broker(f"docker answers but {KAFKA_IMAGE} did not start: {exc}")
    try:
        yield f"{host}:{port}"
    finally:
        container.stop()


def _local_broker(root: Path) -> Iterator[str]:
    try:
        broker = ensure_broker(
            port=free_port(avoid=frozenset({9092})), run_dir=root, die_with_parent=True
        )
    except BrokerError as exc:
        _no_broker(f"the local jar broker did not start: {exc}")
    try:
        yield broker.bootstrap
    finally:
        broker.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``host:port`` of a real Kafka broker for the whole session (see the module docstring)."""
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip()
    if configured:
        yield configured
    elif docker_available():
        yield from _docker_broker()
    else:
        yield from _local_broker(tmp_path_factory.mktemp("kafka"))


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> str:
    """A name unique to this test run, valid for topics and groups: ``{test}-{8 hex}``."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", request.node.name).strip("-.")[:60]
    return f"{stem}-{uuid.uuid4().hex[:8]}"
