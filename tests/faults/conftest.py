"""The fault suite (issue 19): every test here is marked ``integration`` and ``faults``; the long
ones also ``slow`` (``make test`` skips them, ``make test-faults`` runs them all).

Fixtures:

* ``cluster``: a test's own topics and workers on the shared broker (erasure, isolation).
* ``world``: a scenario on the session's shared broker (worker faults: kills, pauses, disks).
* ``private_world``: a scenario on a broker of its own behind a TCP proxy (broker and network
  faults), so stopping, killing or partitioning it touches no other test.

At the end of the session each scenario's report line is printed (scenario, inputs, outputs,
I1-I6, recovery time).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.faults.workload import Workload
from tests.faults.world import REPORT, PrivateBroker, World
from tests.integration.harness import Cluster

_HERE = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in item.path.parents:
            item.add_marker(pytest.mark.integration)
            item.add_marker(pytest.mark.faults)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if REPORT:
        terminalreporter.section("fault scenarios")
        for line in REPORT:
            terminalreporter.write_line(line)


def _seed(request: pytest.FixtureRequest) -> int:
    return sum(request.node.name.encode()) * 7919 % 100_003


@pytest.fixture
def cluster(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Cluster]:
    """A test's own topics and workers on the shared broker (as in tests/integration)."""
    world = Cluster(kafka_bootstrap, tmp_path, f"e{uuid.uuid4().hex[:10]}")
    yield world
    world.stop_all()


@pytest.fixture
def world(kafka_bootstrap: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[World]:
    name = f"f{uuid.uuid4().hex[:10]}"
    cluster = Cluster(kafka_bootstrap, tmp_path, name)
    yield World(request.node.name, kafka_bootstrap, cluster, Workload(_seed(request)))
    cluster.stop_all()


@pytest.fixture
def private_world(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[World]:
    broker = PrivateBroker(tmp_path)
    try:
        name = f"f{uuid.uuid4().hex[:10]}"
        cluster = Cluster(
            broker.bootstrap, tmp_path, name, env={"KAFKA_BOOTSTRAP_SERVERS": broker.proxied}
        )
        yield World(request.node.name, broker.bootstrap, cluster, Workload(_seed(request)), broker)
        cluster.stop_all()
    finally:
        broker.close()
