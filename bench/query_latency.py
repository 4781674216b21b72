"""The stream's input latency with and without query traffic (a report, not a test).

    KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092 python -m bench.query_latency \\
        [--members 20000] [--groups 20] [--rate 200] [--seconds 30] [--qps 50]

One worker (8 partitions, the batch member path) over ``bench.workload``'s space: definitions,
then the members, drained. Then three open-loop latency runs of ``--seconds`` at ``--rate``
input events per second (``bench.latency``: intended send time to output consumed), alone,
then while a client sends ``--qps`` query requests per second to the worker, then alone again
(the spread of the two alone runs is the machine's noise). The queries are, in turn: the first
page of a group, a ``q`` search over it, a member lookup and an explain. It prints the three
latency summaries and the queries' own latencies.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from bench import kafka_io
from bench.latency import open_loop
from bench.procs import Procs
from bench.workload import Event, Workload, WorkloadSpec, encode

APP_ID = "sgq"
INPUTS = ("member-changes", "property-changes", "form-answers", "group-changes")
OUTPUTS = ("membership-changes", "membership-state", "group-change-results", "dead-letters")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def queries(
    port: int, space: str, group: str, members: list[str], qps: float, stop: asyncio.Event
) -> list[float]:
    """Send ``qps`` requests per second (open loop) until ``stop``; their latencies in ms."""
    rng = random.Random(3)
    base = f"http://127.0.0.1:{port}/v1/spaces/{space}"
    paths = [
        lambda: f"{base}/groups/{group}/members?limit=50",
        lambda: f"{base}/groups/{group}/members?q=a&limit=50",
        lambda: f"{base}/members/{rng.choice(members)}",
        lambda: f"{base}/groups/{group}/members/{rng.choice(members)}/explain",
    ]
    took: list[float] = []
    pending: set[asyncio.Task[None]] = set()
    async with aiohttp.ClientSession() as http:

        async def one(url: str) -> None:
            started = time.perf_counter()
            async with http.get(url) as answer:
                await answer.read()
            took.append((time.perf_counter() - started) * 1000)

        t0 = time.monotonic()
        i = 0
        while not stop.is_set():
            due = t0 + i / qps
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            task = asyncio.create_task(one(paths[i % len(paths)]()))
            pending.add(task)
            task.add_done_callback(pending.discard)
            i += 1
        await asyncio.gather(*pending, return_exceptions=True)
    return took


def summary(samples: list[float]) -> dict[str, float | int]:
    ordered = sorted(samples)
    if not ordered:
        return {"n": 0}
    return {
        "n": len(ordered),
        "p50_ms": round(statistics.median(ordered), 1),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 1),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=20_000)
    parser.add_argument("--groups", type=int, default=20)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--qps", type=float, default=50)
    args = parser.parse_args()
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    run = uuid.uuid4().hex[:8]
    prefix = f"sgq-{run}."
    root = Path(tempfile.mkdtemp(prefix="bench-query-latency-"))
    workload = Workload(
        WorkloadSpec(spaces=1, members=args.members, groups=args.groups, tag=f"q{run}")
    )
    definitions = workload.definitions()
    smart = [e.value for e in definitions if e.value.get("kind") == "smart"]
    group = smart[0]["group_id"]
    space = smart[0]["space"]
    creations = [*workload.probe_members(20), *workload.creations()]
    members = sorted({e.value["member_id"] for e in creations if "member_id" in e.value})
    names = [prefix + t for t in (*INPUTS, *OUTPUTS)]
    names += [f"{prefix}{APP_ID}-fanout", f"{prefix}{APP_ID}-commands"]
    await kafka_io.create_topics(bootstrap, names, 8, compacted=[prefix + "membership-state"])
    await kafka_io.preload(bootstrap, [(prefix + t, k, v) for t, k, v in map(encode, definitions)])
    port = free_port()
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "SMARTGROUPS_TOPIC_PREFIX": prefix,
        "SMARTGROUPS_APP_ID": APP_ID,
        "SMARTGROUPS_PARTITIONS": "8",
        "SMARTGROUPS_DATA_DIR": str(root / "data"),
        "SMARTGROUPS_WEB_PORT": str(port),
    }
    with Procs(root) as procs:
        worker = procs.python("worker", ["-m", "smartgroups", "worker"], env, web_port=port)
        worker.wait_ready()
        started = time.monotonic()
        records = [(prefix + t, k, v) for t, k, v in map(encode, creations)]
        await kafka_io.preload(bootstrap, records)
        ends = await kafka_io.end_offsets(bootstrap, [prefix + "member-changes"])
        groups = lambda topic: f"{prefix}{APP_ID}-members"  # noqa: E731
        await kafka_io.watch_drain(bootstrap, groups, ends, timeout_s=600)
        loaded_s = time.monotonic() - started
        probe_ids: set[str] = set()

        def events(count: int) -> list[Event]:
            out = []
            changes = workload.changes(count, definitions=False)
            for i in range(count):
                if i % 5 == 0:
                    probe = workload.probe()
                    probe_ids.add(probe.value["id"])
                    out.append(probe)
                else:
                    out.append(next(changes))
            return out

        async def latency() -> dict[str, Any]:
            result = await open_loop(
                bootstrap,
                lambda t: prefix + t,
                # exactly the events sent: a probe generated but not sent would leave the
                # workload's idea of a probe member's value wrong for the next run
                events(int(args.rate * args.seconds)),
                rate=args.rate,
                seconds=args.seconds,
                probe_ids=probe_ids,
            )
            return result.summary()

        alone = await latency()
        stop = asyncio.Event()
        asking = asyncio.create_task(queries(port, space, group, members, args.qps, stop))
        with_queries = await latency()
        stop.set()
        took = await asking
        alone_again = await latency()
        report = {
            "members": args.members,
            "groups": args.groups,
            "load_s": round(loaded_s, 1),
            "rate": args.rate,
            "seconds": args.seconds,
            "stream_alone": alone,
            "stream_with_queries": with_queries,
            "stream_alone_again": alone_again,
            "queries": {"qps": args.qps, **summary(took)},
        }
        print(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    asyncio.run(main())
