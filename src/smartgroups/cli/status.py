"""``smartgroups status [--watch]``: the app's workers, their partitions, lag and backfills.

Where it looks (decision: the contract leaves the source to us):

* **The broker** says who is in the app's consumer groups and how far each input partition is:
  the committed offsets of ``{app}`` (``group-changes``) and ``{app}-members`` (the member topics)
  against the partitions' ends give the lag, whether or not a worker runs. A worker's address
  comes from faust's group metadata, where every faust worker publishes its web URL (faust uses
  it to route table requests between workers).
* **Each worker** is asked ``GET /metrics`` at that address for what only it knows: which input
  partitions it owns now (its ``smartgroups_consumer_lag`` series) and its backfills in progress
  (``smartgroups_backfill_members_*``). The workers' HTTP API rather than an internal status
  topic: it is already there, it is what Prometheus scrapes (one source of truth), and it needs
  no topic, no producer on the hot path and no retention. Workers bind 127.0.0.1, so ``status``
  reaches the workers of its own host; the others are shown as ``unreachable`` (the broker's
  part is complete anyway).

Without ``--watch`` it prints the tables once (no time left: that needs two looks). With
``--watch [S]`` it redraws every S seconds (default 2) until Ctrl-C, with a progress bar per
partition's backfills and the time left at the rate observed since the previous look.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from smartgroups.cli import connect, groups
from smartgroups.cli.options import add_connection_flags, settings_from
from smartgroups.errors import UsageError
from smartgroups.settings import Settings
from smartgroups.wire.topics import GROUP_CHANGES, INPUTS
from smartgroups.worker.topology import Topology


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "status", help="the app's workers, partitions, lag and backfills in progress"
    )
    add_connection_flags(parser)
    parser.add_argument(
        "--watch",
        nargs="?",
        const=2.0,
        type=float,
        metavar="S",
        help="redraw every S seconds (default 2) until Ctrl-C",
    )


@dataclass
class Worker:
    """One worker as its group metadata and its ``/metrics`` describe it."""

    url: str
    reachable: bool = False
    owned: set[tuple[str, int]] = field(default_factory=set)
    backfills: dict[int, tuple[int, int, int]] = field(default_factory=dict)
    """partition -> (running, scanned, total)."""


@dataclass
class Snapshot:
    at: float
    groups: dict[str, int]
    """consumer group -> members now."""
    lag: list[tuple[str, int, int | None, int]]
    """(topic, partition, committed or None, end) of every input partition."""
    workers: list[Worker]


def run(args: argparse.Namespace) -> int:
    if args.watch is not None and args.watch <= 0:
        raise UsageError(f"--watch {args.watch:g}: must be more than 0 seconds")
    settings = settings_from(args)
    from rich.console import Console

    # Piped or redirected: wide enough that no topic name or URL is cut (rich's default is 80).
    console = Console(width=None if sys.stdout.isatty() else 200)
    if args.watch is None:
        console.print(render(asyncio.run(snapshot(settings)), None))
        return 0
    from rich.live import Live

    previous: Snapshot | None = None
    with contextlib.suppress(KeyboardInterrupt), Live(console=console, auto_refresh=False) as live:
        while True:
            now = asyncio.run(snapshot(settings))
            live.update(render(now, previous), refresh=True)
            previous = now
            time.sleep(args.watch)
    return 0


async def snapshot(settings: Settings) -> Snapshot:
    topology = Topology.from_settings(settings)
    app, members = topology.app_id, topology.member_group
    async with connect.kafka_session(settings) as session:
        admin = await groups.admin_client(settings, session)
        consumer = None
        try:
            counts = await groups.members(admin, [app, members])
            urls = await worker_urls(admin, app)
            consumer = await groups.reader(settings, session)
            names = [settings.topic(t) for t in INPUTS]
            tps = await groups.partitions(consumer, names, session)
            ends = await consumer.end_offsets(tps)
            lag: list[tuple[str, int, int | None, int]] = []
            for group_id, mine in (
                (app, [tp for tp in tps if tp.topic == topology.group_changes]),
                (members, [tp for tp in tps if tp.topic != topology.group_changes]),
            ):
                committed = await groups.committed(admin, group_id, mine)
                lag.extend((tp.topic, tp.partition, committed[tp], int(ends[tp])) for tp in mine)
        finally:
            if consumer is not None:
                await connect.stop(consumer)
            await connect.stop(admin)
    workers = await asyncio.gather(*(asyncio.to_thread(ask, url, topology) for url in urls))
    return Snapshot(time.monotonic(), counts, lag, list(workers))


async def worker_urls(admin: Any, group_id: str) -> list[str]:
    """The web URL every faust worker of ``group_id`` publishes in its member metadata."""
    urls = []
    for response in await admin.describe_consumer_groups([group_id]):
        for group in response.groups:
            if group[0] != 0 or group[1] != group_id:
                continue
            for member in group[5]:
                url = metadata_url(member[3])
                if url:
                    urls.append(url)
    return sorted(set(urls))


def metadata_url(metadata: bytes) -> str | None:
    """The ``url`` in faust's consumer-protocol user data (a JSON object at the end)."""
    start = metadata.find(b"{")
    if start < 0:
        return None
    try:
        data = json.loads(metadata[start:].decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    url = data.get("url") if isinstance(data, dict) else None
    return url if isinstance(url, str) else None


def ask(url: str, topology: Topology) -> Worker:
    """What worker ``url`` says in its ``/metrics`` (unreachable: nothing)."""
    from prometheus_client.parser import text_string_to_metric_families

    worker = Worker(url)
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/metrics", timeout=3) as response:
            text = response.read().decode()
    except (OSError, urllib.error.URLError):
        return worker
    worker.reachable = True
    prefix = topology.group_changes[: -len(GROUP_CHANGES)]
    running: dict[int, list[int]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "smartgroups_consumer_lag" and s.labels.get("topic") in INPUTS:
                worker.owned.add((prefix + s.labels["topic"], int(s.labels["partition"])))
            index = {
                "smartgroups_backfills_in_progress": 0,
                "smartgroups_backfill_members_scanned": 1,
                "smartgroups_backfill_members_total": 2,
            }.get(s.name)
            if index is not None:
                running.setdefault(int(s.labels["partition"]), [0, 0, 0])[index] = int(s.value)
    worker.backfills = {p: (v[0], v[1], v[2]) for p, v in running.items()}
    return worker


def render(now: Snapshot, before: Snapshot | None) -> Any:
    """The status as rich renderables: groups, workers, lag per partition, backfills."""
    from rich.console import Group
    from rich.progress_bar import ProgressBar
    from rich.table import Table

    parts: list[Any] = []
    summary = ", ".join(f"{g}: {n} consumer(s)" for g, n in now.groups.items())
    parts.append(f"[bold]consumer groups[/bold]  {summary}")
    owners = {tp: w.url for w in now.workers for tp in w.owned}

    workers = Table(title="workers", title_justify="left")
    for column in ("worker", "input partitions", "lag", "backfills"):
        workers.add_column(column, justify="right" if column != "worker" else "left")
    lag_of = {(t, p): (end - c if c is not None else end) for t, p, c, end in now.lag}
    for w in now.workers:
        if not w.reachable:
            workers.add_row(w.url, "unreachable", "-", "-")
            continue
        behind = sum(lag_of.get(tp, 0) for tp in w.owned)
        running = sum(b[0] for b in w.backfills.values())
        workers.add_row(w.url, str(len(w.owned)), str(behind), str(running))
    if not now.workers:
        workers.add_row("(no worker in the group)", "-", "-", "-")
    parts.append(workers)

    partitions = Table(title="lag per input partition", title_justify="left")
    for column in ("topic", "partition", "committed", "end", "lag", "worker"):
        partitions.add_column(column, justify="left" if column in ("topic", "worker") else "right")
    for topic, partition, committed, end in sorted(now.lag):
        behind = end - committed if committed is not None else end
        partitions.add_row(
            topic,
            str(partition),
            "-" if committed is None else str(committed),
            str(end),
            str(behind),
            owners.get((topic, partition), "-"),
        )
    parts.append(partitions)

    backfills = Table(title="backfills in progress", title_justify="left")
    for column in ("worker", "partition", "running", "progress", "members", "time left"):
        backfills.add_column(column)
    earlier = {
        (w.url, p): b[1] for w in (before.workers if before else []) for p, b in w.backfills.items()
    }
    rows = 0
    for w in now.workers:
        for partition, (running, scanned, total) in sorted(w.backfills.items()):
            rows += 1
            bar = ProgressBar(total=max(total, 1), completed=scanned, width=30)
            left = time_left(scanned, total, earlier.get((w.url, partition)), now, before)
            backfills.add_row(w.url, str(partition), str(running), bar, f"{scanned}/{total}", left)
    if rows:
        parts.append(backfills)
    else:
        parts.append("backfills in progress: none")
    return Group(*parts)


def time_left(
    scanned: int, total: int, scanned_before: int | None, now: Snapshot, before: Snapshot | None
) -> str:
    """The time left at the rate since the previous look; ``-`` without one."""
    if before is None or scanned_before is None or scanned <= scanned_before:
        return "-"
    rate = (scanned - scanned_before) / max(now.at - before.at, 1e-3)
    seconds = (total - scanned) / rate
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"
