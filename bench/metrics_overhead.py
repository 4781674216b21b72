"""The cost of the worker's metrics on the hot path: the same load on two builds, interleaved.

``python -m bench.metrics_overhead --base-src DIR [--reps 3] [--members 6000] [--rounds 5]``

``DIR`` is the ``src`` directory of a build without the metrics (for instance
``git archive <commit> src | tar -x -C /tmp/base`` and the built ``_native*.so`` copied into
``/tmp/base/src/smartgroups/core/``); the other build is this checkout's. Each repetition runs
both, one after the other, on fresh topics of the broker at ``KAFKA_BOOTSTRAP_SERVERS``
(default 127.0.0.1:9092): 20 smart groups defined first, then ``members`` upserts and ``rounds
- 1`` profile changes per member on ``member-changes`` only (one topic, so the order of the
inputs, and therefore the transitions, are the same on every run), drained by a restarted
worker. It prints events per second (wall clock, noisy on a shared machine) and the worker's CPU
microseconds per event between its first ready answer and the last input applied (the figure to
compare), and the transitions, which must be equal.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from tests.integration.harness import Cluster

SPACE = "bench"


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _definitions() -> list[dict[str, Any]]:
    acme = {"field": "profile.email", "op": "email_domain", "value": ["acme.com"]}
    return [
        {
            "id": f"g{g}",
            "type": "group.created",
            "space": SPACE,
            "group_id": f"g{g}",
            "name": f"G{g}",
            "kind": "smart",
            "conditions": {
                "all": [{"field": "profile.tags", "op": "has_any", "value": [f"t{g}"]}, acme]
            },
        }
        for g in range(20)
    ]


def _inputs(members: int, rounds: int) -> list[dict[str, Any]]:
    events = []
    for r in range(rounds):
        for m in range(members):
            profile: dict[str, Any] = {"tags": [f"t{(m * 7 + r * 3) % 25}", f"t{(m + r) % 40}"]}
            if r == 0:
                profile.update(email=f"m{m}@acme.com", status="accepted")
            events.append(
                {
                    "id": f"e{r}-{m}",
                    "type": "member.upserted",
                    "space": SPACE,
                    "member_id": f"m{m}",
                    "profile": profile,
                }
            )
    return events


def run(
    bootstrap: str, src: str, root: Path, members: int, rounds: int
) -> tuple[float, float, int]:
    """(events/s, CPU µs per event, transitions) of one drain by the build at ``src``."""
    cluster = Cluster(bootstrap, root / uuid.uuid4().hex[:8], f"mo{uuid.uuid4().hex[:8]}")
    cluster.root.mkdir(parents=True)
    cluster.env = {"PYTHONPATH": src}
    worker = cluster.worker(0)
    try:
        worker.start()
        definitions = _definitions()
        cluster.produce("group-changes", definitions)
        cluster.wait_for("group-change-results", lambda rs: len(rs) >= len(definitions))
        time.sleep(2)
        worker.stop()
        events = _inputs(members, rounds)
        cluster.produce("member-changes", events)
        worker.start(wait=False)
        assert worker.proc is not None
        while (health := worker.health()) is None or health[0] != 200:
            time.sleep(0.05)
        started, cpu = time.monotonic(), _cpu_seconds(worker.proc.pid)
        while True:
            stats = worker.stats()
            done = sum(stats.get(k, 0) for k in ("inputs.applied", "inputs.noop"))
            if done >= len(events):
                elapsed = time.monotonic() - started
                used = _cpu_seconds(worker.proc.pid) - cpu
                return len(events) / elapsed, used * 1e6 / len(events), stats["transitions"]
            time.sleep(0.1)
    finally:
        cluster.stop_all()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-src", required=True, help="src/ of the build without metrics")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--members", type=int, default=6000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    builds = {"without": args.base_src, "with": str(Path(__file__).parents[1] / "src")}
    results: dict[str, list[tuple[float, float, int]]] = {name: [] for name in builds}
    with tempfile.TemporaryDirectory(prefix="metrics-overhead-") as tmp:
        for rep in range(args.reps):
            for name, src in builds.items():
                eps, us, transitions = run(bootstrap, src, Path(tmp), args.members, args.rounds)
                results[name].append((eps, us, transitions))
                print(
                    f"{name:8} rep {rep}: {eps:7.0f} ev/s  {us:6.1f} µs CPU/ev"
                    f"  {transitions} transitions"
                )
    for name, runs in results.items():
        print(
            f"{name:8} median: {statistics.median(r[0] for r in runs):7.0f} ev/s"
            f"  {statistics.median(r[1] for r in runs):6.1f} µs CPU/ev"
        )
    without = statistics.median(r[1] for r in results["without"])
    with_ = statistics.median(r[1] for r in results["with"])
    print(f"metrics cost: {100 * (with_ - without) / without:+.1f} % CPU per event")
    return 0


if __name__ == "__main__":
    sys.exit(main())
