"""Time-relative triggers: how late are exits, and what does a tick cost? (issue 5)

A script with a report, not a test. Against a real broker and a real ``smartgroups worker``:

1. **Delay** on the real clock: ``--delay-members`` members of a group "active in the last
   minute" fall due one after another over ~20 s; for each ``member.removed`` (cause ``time``)
   the delay is its ``at`` minus the instant the member fell due. Reports p50 and max.
2. **Tick cost** at scale: ``--members`` members (default 100,000) are in a group "active in the
   last 30 days"; ``--due-share`` of them (default 1 %) were last active 29 days ago, the rest
   1 day ago. With nothing due, the worker's CPU per tick is measured over ``--idle-seconds``.
   Then the worker's clock jumps one day (``SMARTGROUPS_CLOCK_FILE``) and the report gives the
   wall time from the jump to the last of those exits, and the worker CPU it took.

Run: ``.venv/bin/python -m bench.ticks`` (uses ``KAFKA_BOOTSTRAP_SERVERS`` if set, else starts a
private broker). Writes ``bench/results/ticks.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.broker import bench_broker
from bench.kafka_io import preload
from bench.latency import percentiles
from bench.procs import Procs
from bench.procstats import cpu_seconds

PARTITIONS = 8
TICK_INTERVAL_S = 1.0
RESULTS = Path(__file__).parent / "results" / "ticks.json"


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class Changes:
    """Collects ``membership-changes`` in the background, from the beginning."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.bootstrap, self.topic = bootstrap, topic
        self.events: list[dict[str, Any]] = []
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Changes:
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None)
        await consumer.start()
        tps = [TopicPartition(self.topic, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)

        async def run() -> None:
            try:
                while True:
                    batch = await consumer.getmany(timeout_ms=200)
                    for messages in batch.values():
                        self.events.extend(orjson.loads(m.value) for m in messages)
            finally:
                await consumer.stop()

        self._task = asyncio.create_task(run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def wait(self, predicate: Any, timeout: float, what: str) -> float:
        """Wait until ``predicate(events)``; returns the monotonic time it first held."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self.events):
                return time.monotonic()
            await asyncio.sleep(0.05)
        raise TimeoutError(f"timed out waiting for {what}")


def group_created(space: str, group_id: str, window: dict[str, int]) -> dict[str, Any]:
    rule = {"field": "profile.last_active_at", "op": "within_last", "value": window}
    return {
        "id": f"{space}-{group_id}", "type": "group.created", "space": space,
        "group_id": group_id, "name": group_id, "kind": "smart", "conditions": {"all": [rule]},
    }  # fmt: skip


def upsert(space: str, member_id: str, active_at: datetime) -> dict[str, Any]:
    return {
        "id": f"{space}-{member_id}-{uuid.uuid4().hex[:6]}", "type": "member.upserted",
        "space": space, "member_id": member_id,
        "profile": {"status": "accepted", "last_active_at": iso(active_at)},
    }  # fmt: skip


def records(topic: str, events: list[dict[str, Any]], keyed_by_space: bool = False) -> list[Any]:
    out = []
    for e in events:
        key = e["space"] if keyed_by_space else f"{e['space']}:{e['member_id']}"
        out.append((topic, key.encode(), orjson.dumps(e)))
    return out


async def run(args: argparse.Namespace) -> dict[str, Any]:
    prefix = f"ticks{uuid.uuid4().hex[:6]}."
    work = Path(tempfile.mkdtemp(prefix="smartgroups-ticks-"))
    clock = work / "clock-offset"
    clock.write_text("0")
    result: dict[str, Any] = {"members": args.members, "due_share": args.due_share}
    with bench_broker() as (bootstrap, broker), Procs(work) as procs:
        env = {
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "SMARTGROUPS_TOPIC_PREFIX": prefix,
            "SMARTGROUPS_PARTITIONS": str(PARTITIONS),
            "SMARTGROUPS_DATA_DIR": str(work / "data"),
            "SMARTGROUPS_WEB_PORT": str(_free_port()),
            "SMARTGROUPS_TICK_INTERVAL": str(TICK_INTERVAL_S),
            "SMARTGROUPS_CLOCK_FILE": str(clock),
        }
        worker = procs.python("worker", ["-m", "smartgroups", "worker"], env)
        worker.wait_ready()
        async with Changes(bootstrap, f"{prefix}membership-changes") as changes:
            # -- 1. delay on the real clock -----------------------------------------------------
            space = "delay"
            await preload(
                bootstrap,
                records(f"{prefix}group-changes",
                        [group_created(space, "minute", {"minutes": 1})], keyed_by_space=True),
            )  # fmt: skip
            await asyncio.sleep(2)
            start = datetime.now(UTC)
            spread = 20.0 / args.delay_members
            due: dict[str, datetime] = {}
            batch = []
            for i in range(args.delay_members):
                falls_due = start + timedelta(seconds=5 + i * spread)
                due[f"d{i}"] = falls_due
                batch.append(upsert(space, f"d{i}", falls_due - timedelta(minutes=1)))
            await preload(bootstrap, records(f"{prefix}member-changes", batch))

            def removed(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
                return [e for e in events if e["space"] == space and e["type"] == "member.removed"]

            await changes.wait(lambda ev: len(removed(ev)) >= args.delay_members, 90, "exits")
            delays = [
                (parse(e["at"]) - due[e["member_id"]]).total_seconds() * 1000
                for e in removed(changes.events)
            ]
            assert all(e["cause"] == {"kind": "time"} for e in removed(changes.events))
            result["delay_ms"] = percentiles(delays)

            # -- 2. tick cost with N members, a share of them due -------------------------------
            space = "scale"
            await preload(
                bootstrap,
                records(f"{prefix}group-changes",
                        [group_created(space, "month", {"days": 30})], keyed_by_space=True),
            )  # fmt: skip
            await asyncio.sleep(2)
            now = datetime.now(UTC)
            n_due = int(args.members * args.due_share)
            load = [
                upsert(space, f"m{i}", now - timedelta(days=29 if i < n_due else 1))
                for i in range(args.members)
            ]
            t0 = time.monotonic()
            await preload(bootstrap, records(f"{prefix}member-changes", load))

            def added(events: list[dict[str, Any]]) -> int:
                return sum(1 for e in events if e["space"] == space and e["type"] == "member.added")

            await changes.wait(lambda ev: added(ev) >= args.members, 1800, "the load")
            result["load_seconds"] = round(time.monotonic() - t0, 1)
            await asyncio.sleep(3)
            cpu0, w0 = cpu_seconds(worker.pid), time.monotonic()
            await asyncio.sleep(args.idle_seconds)
            cpu1, w1 = cpu_seconds(worker.pid), time.monotonic()
            ticks = (w1 - w0) / TICK_INTERVAL_S * PARTITIONS
            result["idle_tick_cpu_us"] = round((cpu1 - cpu0) / ticks * 1e6, 1)
            result["idle_worker_cpu_share"] = round((cpu1 - cpu0) / (w1 - w0), 4)

            def gone(events: list[dict[str, Any]]) -> int:
                return sum(
                    1 for e in events if e["space"] == space and e["type"] == "member.removed"
                )

            cpu0, jump = cpu_seconds(worker.pid), time.monotonic()
            clock.write_text(str(86400 + 60))
            done = await changes.wait(lambda ev: gone(ev) >= n_due, 600, "the due exits")
            cpu1 = cpu_seconds(worker.pid)
            await asyncio.sleep(3)
            result["due_members"] = n_due
            result["due_exits"] = gone(changes.events)
            result["due_wall_ms"] = round((done - jump) * 1000, 1)
            result["due_cpu_ms"] = round((cpu1 - cpu0) * 1000, 1)
            result["due_cpu_us_per_member"] = round((cpu1 - cpu0) / max(n_due, 1) * 1e6, 1)
        result["broker"] = broker.get("broker")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--due-share", type=float, default=0.01)
    parser.add_argument("--delay-members", type=int, default=200)
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    args = parser.parse_args(argv)
    result = asyncio.run(run(args))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
