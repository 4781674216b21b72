"""The worker on a SASL_SSL listener of a real broker (TLS + SCRAM-SHA-512), and how a wrong
password or an untrusted certificate fails: fast, one line, no secret in any log line.

The broker is a private ``devbroker`` with its optional SASL_SSL listener (certificates made
with ``cryptography`` at its first start, the SCRAM user created when its storage is formatted).
The test's own producer and checker use the broker's plaintext listener.
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.faults.workload import Workload
from tests.faults.world import World
from tests.integration.harness import Cluster, WorkerProcess

from smartgroups.devbroker import Broker, ensure_broker, free_port
from smartgroups.devbroker.config import SaslSsl
from smartgroups.devbroker.tls import make_certificates

USER = "sgworker"
PASSWORD = "SentinelPw4f1c9e0b"  # must never show in a log line
WRONG = "WrongPw77d2a6c5e3"
DEBUG = [sys.executable, "-m", "smartgroups", "worker", "--loglevel", "debug"]


@pytest.fixture(scope="module")
def secure_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Broker, int, Path]]:
    root = tmp_path_factory.mktemp("secure-kafka")
    port = free_port()
    secure = free_port(avoid=frozenset({port}))
    broker = ensure_broker(
        port=port, run_dir=root, die_with_parent=True, sasl_ssl=SaslSsl(secure, ((USER, PASSWORD),))
    )
    try:
        yield broker, secure, root / "tls" / "ca.pem"
    finally:
        broker.stop()


def _secure_env(port: int, ca: Path, password: str) -> dict[str, str]:
    return {
        "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{port}",
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "KAFKA_SASL_USERNAME": USER,
        "KAFKA_SASL_PASSWORD": password,
        "KAFKA_SSL_CAFILE": str(ca),
    }


def _world(broker: Broker, env: dict[str, str], tmp_path: Path, name: str) -> World:
    cluster = Cluster(broker.bootstrap, tmp_path, f"s{uuid.uuid4().hex[:10]}", env=env)
    return World(name, broker.bootstrap, cluster, Workload(4242))


def test_a_scenario_runs_on_sasl_ssl_and_no_log_line_holds_the_password(
    secure_broker: tuple[Broker, int, Path], tmp_path: Path
) -> None:
    broker, port, ca = secure_broker
    world = _world(broker, _secure_env(port, ca, PASSWORD), tmp_path, "security")
    try:
        worker = world.cluster.worker()
        worker.start(timeout=120, command=DEBUG)
        world.define()
        began = time.monotonic()
        world.send(world.workload.events(300, poison_every=100))
        world.converge()
        verdict = world.verdict("SASL_SSL + SCRAM-SHA-512 scenario", time.monotonic() - began)
        assert verdict.ok, verdict.problems
        assert worker.stop() == 0
        log = worker.log_path.read_text(errors="replace")
        assert "SASL_SSL" in log  # the banner names the protocol...
        assert PASSWORD not in log  # ...and nothing, at debug, names the secret
    finally:
        world.cluster.stop_all()


def _fails_fast(worker: WorkerProcess) -> str:
    began = time.monotonic()
    worker.start(wait=False, command=DEBUG)
    assert worker.wait_exit(timeout=40) == 2
    assert time.monotonic() - began < 30
    log = worker.log_path.read_text(errors="replace")
    assert "Traceback" not in log
    lines = [line for line in log.splitlines() if line.strip() and line != "--- start ---"]
    assert len(lines) == 1, lines
    return lines[0]


def test_a_wrong_password_fails_fast_in_one_line_without_the_password(
    secure_broker: tuple[Broker, int, Path], tmp_path: Path
) -> None:
    broker, port, ca = secure_broker
    world = _world(broker, _secure_env(port, ca, WRONG), tmp_path, "wrong-password")
    line = _fails_fast(world.cluster.worker())
    assert line.startswith("smartgroups: "), line
    assert "authentication" in line.lower() or "sasl" in line.lower(), line
    assert WRONG not in line and PASSWORD not in line


def test_an_untrusted_certificate_fails_fast_in_one_line(
    secure_broker: tuple[Broker, int, Path], tmp_path: Path
) -> None:
    broker, port, _ = secure_broker
    stranger = make_certificates(tmp_path / "other-ca", "someone else").ca
    world = _world(broker, _secure_env(port, stranger, PASSWORD), tmp_path, "untrusted")
    line = _fails_fast(world.cluster.worker())
    assert line.startswith("smartgroups: "), line
    assert "certificate" in line.lower(), line
    assert PASSWORD not in line
