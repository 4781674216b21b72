"""``make run`` reaches one broker: the one on ``KAFKA_PORT``, or ``KAFKA_BOOTSTRAP_SERVERS``.

Read from ``make -n`` (the recipe as it would run; nothing is started), so no broker is needed.
The demo publisher runs inside the worker, so the worker's address is the publisher's too.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def recipe(*assignments: str, env: dict[str, str] | None = None) -> list[str]:
    """The commands ``make run`` would run (``.venv`` taken as installed)."""
    environ = {k: v for k, v in os.environ.items() if k not in {"KAFKA_PORT", "MAKEFLAGS"}}
    environ.pop("KAFKA_BOOTSTRAP_SERVERS", None)
    environ.update(env or {})
    done = subprocess.run(
        ["make", "--no-print-directory", "-n", "-o", ".venv/.installed", "run", *assignments],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.splitlines()


def worker_line(lines: list[str]) -> str:
    (line,) = [line for line in lines if "smartgroups worker" in line]
    return line


def test_kafka_port_reaches_the_broker_and_the_worker() -> None:
    lines = recipe("KAFKA_PORT=19192")
    assert any("smartgroups.devbroker up --port 19192" in line for line in lines)
    assert worker_line(lines).endswith("--demo --bootstrap-servers 127.0.0.1:19192")
    assert not any("9092" in line.replace("19192", "") for line in lines)


def test_kafka_port_from_the_environment_counts_too() -> None:
    lines = recipe(env={"KAFKA_PORT": "19193"})
    assert any("devbroker up --port 19193" in line for line in lines)
    assert worker_line(lines).endswith("--bootstrap-servers 127.0.0.1:19193")


def test_default_port_is_9092() -> None:
    lines = recipe()
    assert any("devbroker up --port 9092" in line for line in lines)
    assert worker_line(lines).endswith("--bootstrap-servers 127.0.0.1:9092")


def test_bootstrap_servers_set_means_no_local_broker() -> None:
    lines = recipe("KAFKA_PORT=19192", env={"KAFKA_BOOTSTRAP_SERVERS": "kafka.example:9093"})
    assert not any("devbroker" in line for line in lines)
    assert worker_line(lines).endswith("--bootstrap-servers kafka.example:9093")


def test_help_lists_run_without_terminal_codes_in_a_pipe() -> None:
    done = subprocess.run(
        ["make", "--no-print-directory", "help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert any(line.split()[:1] == ["run"] for line in done.stdout.splitlines())
    assert "\x1b" not in done.stdout
