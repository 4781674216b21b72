"""The pid file of a running broker, and whether the pid it names is still that broker.

The file is JSON ``{"pid", "port", "controller_port", "started_at", "cds_partial"}``, written
after the JVM is spawned and removed when it is stopped. A pid is trusted only while the process
is alive, not a zombie, and its command line names ``kafka.Kafka`` with this run directory's
server.properties: a recycled pid never makes ``up`` a no-op or ``down`` kill a stranger.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

BROKER_MAIN = "kafka.Kafka"


@dataclass(frozen=True)
class PidRecord:
    """What ``up`` recorded about the broker it started."""

    pid: int
    port: int
    controller_port: int
    started_at: float
    cds_partial: str = ""  # the AppCDS archive this JVM writes at exit, if any (see cds.py)


def write_pid_file(path: Path, record: PidRecord) -> None:
    """Write ``record`` atomically (rename), so a reader never sees half a file."""
    scratch = path.with_suffix(".tmp")
    scratch.write_text(json.dumps(asdict(record)) + "\n", encoding="utf-8")
    scratch.replace(path)


def read_pid_file(path: Path) -> PidRecord | None:
    """The record, or ``None`` when the file is missing or unreadable (treated as stale)."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return PidRecord(
            pid=int(raw["pid"]),
            port=int(raw["port"]),
            controller_port=int(raw["controller_port"]),
            started_at=float(raw["started_at"]),
            cds_partial=str(raw.get("cds_partial", "")),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def remove_pid_file(path: Path) -> None:
    path.unlink(missing_ok=True)


def is_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie (exited, not yet reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    try:
        # "pid (comm) S ...": the state follows the last ")" (comm may contain spaces).
        return stat.read_text().rpartition(")")[2].split()[0] != "Z"
    except (OSError, IndexError):
        return True  # no procfs (macOS): kill(0) succeeded, so it is alive


def command_line(pid: int) -> list[str]:
    """The argv of ``pid`` (procfs, else ``ps``); empty when it cannot be read."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        return [part.decode(errors="replace") for part in raw.split(b"\0") if part]
    except OSError:
        pass
    try:
        done = subprocess.run(
            ["ps", "-o", "args=", "-p", str(pid)],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return []
    return done.stdout.split()


def is_our_broker(pid: int, server_properties: Path) -> bool:
    """True when ``pid`` is a live Kafka broker started with this ``server_properties``."""
    if not is_alive(pid):
        return False
    argv = command_line(pid)
    return BROKER_MAIN in argv and str(server_properties) in argv


def live_record(path: Path, server_properties: Path) -> PidRecord | None:
    """The pid file's record if its broker still runs; a stale file is removed."""
    record = read_pid_file(path)
    if record is None:
        remove_pid_file(path)
        return None
    if is_our_broker(record.pid, server_properties):
        return record
    remove_pid_file(path)
    return None
