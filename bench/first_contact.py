"""First contact: seconds from ``make run``'s worker launch to its first membership change line.

A report, not a test. Each **cold** run starts a fresh local broker (``python -m
smartgroups.devbroker up``) on a free port in a new temporary directory, timing it, then a
``smartgroups worker --demo`` with a fresh data directory, and measures the seconds from
launching the worker to the first ``member.added``/``member.removed`` line on its standard
output. Each **warm** run reuses one broker started beforehand (not timed) and starts a fresh
worker with a fresh data directory and its own topic prefix, as a clean clone's first
``make run`` would on a broker that already runs. The worker runs from the repository root
(``examples/``) exactly as ``make run`` starts it.

A run counts as a success when its first change line shows within ``--target`` seconds (15) and
all four of the demo's change lines show within ``--timeout``. ERROR lines on the worker's
standard error are counted too (a healthy start has none).

    .venv/bin/python -m bench.first_contact --cold 10 --warm 3

prints one line per run and a summary (min / median / max), and with ``--out FILE`` writes the
runs as JSON.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import orjson

from smartgroups.devbroker import free_port

REPO = Path(__file__).resolve().parents[1]
DEMO_CHANGES = 4
PYTHON = sys.executable


@dataclass
class Run:
    """One measured start."""

    kind: str  # "cold" or "warm"
    broker_s: float | None = None  # cold runs: seconds for `devbroker up` to return
    first_change_s: float | None = None  # worker launch -> first change line
    all_changes_s: float | None = None  # worker launch -> the demo's last change line
    changes: list[str] = field(default_factory=list)
    error_lines: list[str] = field(default_factory=list)
    note: str = ""


class Watch:
    """A process whose output lines are timestamped as they arrive (one thread per stream)."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.began = time.monotonic()
        self.proc = subprocess.Popen(
            argv,
            env=env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        self.out: list[tuple[float, str]] = []
        self.err: list[tuple[float, str]] = []
        for stream, sink in ((self.proc.stdout, self.out), (self.proc.stderr, self.err)):
            threading.Thread(target=self._pump, args=(stream, sink), daemon=True).start()

    def _pump(self, stream: object, sink: list[tuple[float, str]]) -> None:
        for raw in iter(stream.readline, b""):  # type: ignore[attr-defined]
            sink.append((time.monotonic() - self.began, raw.decode(errors="replace").rstrip()))

    def changes(self) -> list[tuple[float, str]]:
        return [(t, line) for t, line in list(self.out) if line.startswith("member.")]

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


def broker_up(port: int, run_dir: Path) -> float:
    """Start a fresh local broker; seconds until it answers."""
    began = time.monotonic()
    subprocess.run(
        [PYTHON, "-m", "smartgroups.devbroker", "up", "--port", str(port), "--dir", str(run_dir)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return time.monotonic() - began


def broker_down(run_dir: Path) -> None:
    subprocess.run(
        [PYTHON, "-m", "smartgroups.devbroker", "down", "--dir", str(run_dir)],
        check=False,
        capture_output=True,
        timeout=120,
    )


def measure_worker(run: Run, bootstrap: str, root: Path, timeout: float) -> Run:
    """Launch ``worker --demo`` as ``make run`` does and time its change lines."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SMARTGROUPS_") and k != "KAFKA_BOOTSTRAP_SERVERS"
    }
    env.update(
        SMARTGROUPS_DATA_DIR=str(root / "data"),
        SMARTGROUPS_WEB_PORT=str(free_port()),
        SMARTGROUPS_TOPIC_PREFIX=f"fc{uuid.uuid4().hex[:8]}." if run.kind == "warm" else "",
    )
    argv = [PYTHON, "-m", "smartgroups", "worker", "--demo", "--bootstrap-servers", bootstrap]
    watch = Watch(argv, env)
    try:
        deadline = time.monotonic() + timeout
        while len(watch.changes()) < DEMO_CHANGES and time.monotonic() < deadline:
            if watch.proc.poll() is not None:
                run.note = f"worker exited with {watch.proc.returncode}"
                break
            time.sleep(0.05)
        changes = watch.changes()
        if changes:
            run.first_change_s = round(changes[0][0], 2)
        if len(changes) >= DEMO_CHANGES:
            run.all_changes_s = round(changes[DEMO_CHANGES - 1][0], 2)
        run.changes = [line for _, line in changes]
    finally:
        watch.stop()
    run.error_lines = [line for _, line in watch.err if " ERROR " in line or "Traceback" in line]
    return run


def cold(timeout: float) -> Run:
    run = Run("cold")
    root = Path(tempfile.mkdtemp(prefix="first-contact-cold-"))
    port = free_port()
    try:
        run.broker_s = round(broker_up(port, root / "kafka"), 2)
        return measure_worker(run, f"127.0.0.1:{port}", root, timeout)
    finally:
        broker_down(root / "kafka")
        shutil.rmtree(root, ignore_errors=True)


def warm(bootstrap: str, timeout: float) -> Run:
    root = Path(tempfile.mkdtemp(prefix="first-contact-warm-"))
    try:
        return measure_worker(Run("warm"), bootstrap, root, timeout)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def spread(values: Sequence[float | None]) -> str:
    got = [v for v in values if v is not None]
    if not got:
        return "none"
    return f"min {min(got):.1f} s, median {statistics.median(got):.1f} s, max {max(got):.1f} s"


def summary(runs: list[Run], kind: str, target: float) -> list[str]:
    mine = [r for r in runs if r.kind == kind]
    if not mine:
        return []
    ok = [
        r
        for r in mine
        if r.first_change_s is not None
        and r.first_change_s <= target
        and r.all_changes_s is not None
    ]
    lines = [
        f"{kind}: {len(ok)} of {len(mine)} showed the first change within {target:.0f} s"
        f" and all {DEMO_CHANGES}",
        f"  first change after worker launch: {spread([r.first_change_s for r in mine])}",
        f"  all {DEMO_CHANGES} changes:" + " " * 20 + spread([r.all_changes_s for r in mine]),
        f"  runs with ERROR lines: {sum(1 for r in mine if r.error_lines)}",
    ]
    if kind == "cold":
        total = [
            r.broker_s + r.first_change_s
            for r in mine
            if r.broker_s is not None and r.first_change_s is not None
        ]
        lines[1:1] = [
            f"  broker start (devbroker up):      {spread([r.broker_s for r in mine])}",
            f"  broker start + first change:      {spread(total)}",
        ]
    return lines


def report_line(index: int, run: Run) -> str:
    broker = f"broker {run.broker_s:5.1f} s  " if run.broker_s is not None else ""
    first = f"{run.first_change_s:5.1f} s" if run.first_change_s is not None else "  none "
    last = f"{run.all_changes_s:5.1f} s" if run.all_changes_s is not None else "  none "
    errors = f"  ERROR lines: {len(run.error_lines)}" if run.error_lines else ""
    note = f"  ({run.note})" if run.note else ""
    return f"{run.kind} {index:2d}: {broker}first change {first}  all {last}{errors}{note}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--cold", type=int, default=10, help="cold starts (fresh broker each)")
    parser.add_argument(
        "--warm", type=int, default=3, help="warm starts (one broker, fresh worker)"
    )
    parser.add_argument(
        "--bootstrap", help="warm runs use this running broker instead of starting one"
    )
    parser.add_argument("--target", type=float, default=15.0, help="seconds to the first change")
    parser.add_argument("--timeout", type=float, default=90.0, help="seconds per worker run")
    parser.add_argument("--out", type=Path, help="write the runs as JSON here")
    args = parser.parse_args(argv)

    runs: list[Run] = []
    for index in range(1, args.cold + 1):
        runs.append(cold(args.timeout))
        print(report_line(index, runs[-1]), flush=True)
    if args.warm:
        root = Path(tempfile.mkdtemp(prefix="first-contact-broker-"))
        bootstrap = args.bootstrap
        try:
            if bootstrap is None:
                port = free_port()
                broker_up(port, root / "kafka")
                bootstrap = f"127.0.0.1:{port}"
            for index in range(1, args.warm + 1):
                runs.append(warm(bootstrap, args.timeout))
                print(report_line(index, runs[-1]), flush=True)
        finally:
            if args.bootstrap is None:
                broker_down(root / "kafka")
            shutil.rmtree(root, ignore_errors=True)

    for kind in ("cold", "warm"):
        for line in summary(runs, kind, args.target):
            print(line)
    for run in runs:
        for line in run.error_lines[:3]:
            print(f"  {run.kind} ERROR: {line[:200]}")
    if args.out:
        args.out.write_bytes(orjson.dumps([asdict(r) for r in runs], option=orjson.OPT_INDENT_2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
