"""Subprocesses a benchmark starts (pipes, workers): start, wait for ``Ready``, stop, always.

:class:`Procs` is a registry used as a context manager: every process it started is stopped on
exit (SIGTERM, SIGKILL after a bound), whatever raised in between. Each process logs to its own
file; readiness is a marker in that log (:data:`READY_MARKERS`), with a bounded wait that fails
with the log tail.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

READY_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 60.0
READY_MARKERS = ("Ready", "Worker ready")
"""faust's ``[^Worker]: Ready`` or its recovery's ``Worker ready``; the raw pipe's ``Ready``."""


@dataclass
class Proc:
    """One subprocess with its log file."""

    name: str
    argv: list[str]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    web_port: int | None = None
    popen: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def start(self) -> Proc:
        log = self.log_path.open("ab")
        self.popen = subprocess.Popen(
            self.argv,
            env={**os.environ, **self.env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        return self

    def wait_ready(
        self, timeout_s: float = READY_TIMEOUT_S, markers: tuple[str, ...] = READY_MARKERS
    ) -> None:
        """Block until one of ``markers`` shows in the log; fail with the log tail if not."""
        assert self.popen is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.name} exited {self.popen.returncode}:\n{self.tail()}")
            text = self.log_path.read_text(errors="replace")
            if any(marker in text for marker in markers):
                return
            time.sleep(0.02)
        raise RuntimeError(f"{self.name} not ready after {timeout_s}s:\n{self.tail()}")

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> int | None:
        """SIGTERM, wait up to ``timeout_s``, then SIGKILL. Returns the exit status."""
        if self.popen is None or self.popen.poll() is not None:
            return None if self.popen is None else self.popen.returncode
        self.popen.send_signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            return self.popen.wait(10)

    def stats(self) -> dict[str, Any]:
        """``GET /stats/`` of a worker (empty dict when it does not answer)."""
        if self.web_port is None:
            return {}
        try:
            url = f"http://127.0.0.1:{self.web_port}/stats/"
            with urllib.request.urlopen(url, timeout=5) as response:
                stats: dict[str, Any] = orjson.loads(response.read())
                return stats
        except OSError:
            return {}

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


class Procs:
    """Every process a benchmark run started; all stopped on exit (see the module docstring)."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.started: list[Proc] = []

    def python(
        self, name: str, args: list[str], env: dict[str, str] | None = None, **extra: Any
    ) -> Proc:
        """Start ``python args…`` (this interpreter) as ``name``; not yet waited for."""
        proc = Proc(name, [sys.executable, *args], self.log_dir / f"{name}.log", env or {}, **extra)
        self.started.append(proc)
        return proc.start()

    def stop_all(self) -> None:
        for proc in reversed(self.started):
            try:
                proc.stop()
            except Exception:  # keep stopping the others
                if proc.popen is not None and proc.popen.poll() is None:
                    proc.popen.kill()

    def __enter__(self) -> Procs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()
