"""The broker a benchmark runs against: the one given by ``KAFKA_BOOTSTRAP_SERVERS``, or its own.

:func:`bench_broker` is a context manager yielding ``(bootstrap, info)``. When
``KAFKA_BOOTSTRAP_SERVERS`` is set it only checks that the broker answers and never stops it.
Otherwise it starts a private single-node KRaft broker (Kafka 4.1.1 from the jar cache of
:mod:`smartgroups.devbroker`, same settings and JVM flags) on free ports in a temporary
directory, and stops it (SIGTERM, then SIGKILL after a bound) and removes the directory on exit,
whatever happens in between. A private broker keeps benchmark runs off the developer broker
that ``make run`` and the tests share.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

from smartgroups.devbroker import config
from smartgroups.devbroker.fetch import KAFKA_VERSION, ensure_jars
from smartgroups.devbroker.probe import broker_answers

START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 30.0


@contextlib.contextmanager
def bench_broker() -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield ``(bootstrap, info)`` for a broker that answers (see the module docstring)."""
    given = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip()
    if given:
        if not broker_answers(given, timeout_s=10.0):
            raise RuntimeError(f"KAFKA_BOOTSTRAP_SERVERS={given} does not answer")
        yield given, {"broker": "external", "bootstrap": given}
        return
    run_dir = Path(tempfile.mkdtemp(prefix="smartgroups-bench-broker-"))
    proc: subprocess.Popen[bytes] | None = None
    try:
        proc, broker = _start(run_dir)
        info = {
            "broker": "private",
            "kafka_version": KAFKA_VERSION,
            "jvm_heap": " ".join(config.HEAP_OPTS),
            "bootstrap": broker.bootstrap,
            "pid": proc.pid,
        }
        yield broker.bootstrap, info
    finally:
        if proc is not None:
            _stop(proc)
        shutil.rmtree(run_dir, ignore_errors=True)


def _start(run_dir: Path) -> tuple[subprocess.Popen[bytes], config.BrokerConfig]:
    libs = ensure_jars()
    port = config.free_port()
    broker = config.BrokerConfig(
        port=port,
        controller_port=config.free_port(avoid=frozenset({port})),
        run_dir=run_dir,
    )
    broker.log_dir.mkdir(parents=True)
    broker.server_properties.write_text(
        config.render_properties(config.server_properties(broker), "benchmark broker")
    )
    log4j = resources.files("smartgroups.devbroker").joinpath("log4j2.properties").read_bytes()
    broker.log4j2_properties.write_bytes(log4j)
    java = shutil.which("java") or "java"
    classpath = f"{libs}/*"
    format_cmd = config.java_command(
        java,
        classpath,
        broker.log4j2_properties,
        "kafka.tools.StorageTool",
        [
            "format",
            "-t",
            config.new_cluster_id(),
            "-c",
            str(broker.server_properties),
            "--ignore-formatted",
        ],
        server=False,
    )
    subprocess.run(format_cmd, check=True, capture_output=True, timeout=120)
    log = broker.broker_log.open("wb")
    command = config.java_command(
        java,
        classpath,
        broker.log4j2_properties,
        "kafka.Kafka",
        [str(broker.server_properties)],
        server=True,
    )
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"benchmark broker exited:\n{_tail(broker.broker_log)}")
        if config.port_accepts(port) and broker_answers(broker.bootstrap, timeout_s=5.0):
            return proc, broker
        time.sleep(0.5)
    _stop(proc)
    raise RuntimeError(f"benchmark broker not ready in {START_TIMEOUT_S}s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


if __name__ == "__main__":  # manual use: hold a private broker open until Ctrl-C
    with bench_broker() as (bootstrap, info):
        print(bootstrap, info, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()
