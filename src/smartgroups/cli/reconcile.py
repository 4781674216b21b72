"""``smartgroups reconcile [--space S] [--group G] [--dry-run]``: re-decide every member of the
scope against the current definitions and emit only the differences (contract §8).

For use after an upgrade that fixed an evaluation bug. The command sends one reconcile message to
every partition of the app's fan-out topic; each worker re-decides, in steps of
``SMARTGROUPS_SCAN_CHUNK`` members interleaved with live inputs, every member of the scope on the
partitions it owns (:mod:`smartgroups.service.reconcile`): the transitions are the corrections,
emitted with ``cause.kind = "reconcile"``. With ``--dry-run`` the decisions are thrown away and
only counted. The command waits for every partition's report and prints the differences per
group (``space  group  differences``), then one line:

* ``dry run: N differences in G groups over M members; nothing emitted``
* ``reconciled M members: N corrections emitted (cause.kind reconcile)``

Decisions where the contract is silent: it refuses (exit 2) when no worker of the app is running
(nobody would do the work); ``--group`` without ``--space`` means that group id in every space;
after ``--timeout`` seconds (default 600) without every report it stops waiting, says how many
partitions reported (exit 1) and the workers finish the reconcile anyway.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from collections import Counter
from typing import Any

import orjson

from smartgroups.cli import connect, groups
from smartgroups.cli.options import add_connection_flags, settings_from
from smartgroups.core.ids import is_id
from smartgroups.errors import NotRunning, Unfinished, UsageError
from smartgroups.service.reconcile import REPORT, reconcile_message
from smartgroups.settings import Settings
from smartgroups.worker.topology import Topology


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "reconcile", help="re-decide every member of a scope; emit only the differences"
    )
    add_connection_flags(parser)
    parser.add_argument("--space", help="only this space (default: every space)")
    parser.add_argument("--group", help="only this group (default: every group of the scope)")
    parser.add_argument("--dry-run", action="store_true", help="count the differences only")
    parser.add_argument(
        "--timeout", type=float, default=600.0, help="seconds to wait for the workers (600)"
    )


def run(args: argparse.Namespace) -> int:
    for flag, value in (("--space", args.space), ("--group", args.group)):
        if value is not None and not is_id(value):
            raise UsageError(
                f"{flag} {value}: not an id (1 to 200 of A-Z a-z 0-9 _ . @ + -, no ':')"
            )
    if args.timeout <= 0:
        raise UsageError(f"--timeout {args.timeout:g}: must be more than 0 seconds")
    settings = settings_from(args)
    reports = asyncio.run(_reconcile(settings, args.space, args.group, args.dry_run, args.timeout))
    counts: Counter[str] = Counter()
    for report in reports:
        counts.update(report["counts"])
    scanned = sum(int(r["scanned"]) for r in reports)
    print(table(counts))
    total = sum(counts.values())
    if args.dry_run:
        print(
            f"dry run: {total} differences in {len(counts)} groups over {scanned} members;"
            " nothing emitted"
        )
    else:
        print(f"reconciled {scanned} members: {total} corrections emitted (cause.kind reconcile)")
    return 0


def table(counts: Counter[str]) -> str:
    rows = [("space", "group", "differences")]
    for key, n in sorted(counts.items()):
        space, _, group = key.partition(":")
        rows.append((space, group, str(n)))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return "\n".join(
        f"{r[0].ljust(widths[0])}  {r[1].ljust(widths[1])}  {r[2].rjust(widths[2])}" for r in rows
    )


async def _reconcile(
    settings: Settings, space: str | None, group: str | None, dry: bool, timeout: float
) -> list[dict[str, Any]]:
    from aiokafka import AIOKafkaProducer

    topology = Topology.from_settings(settings)
    run_id = uuid.uuid4().hex[:12]
    async with connect.kafka_session(settings) as session:
        admin = await groups.admin_client(settings, session)
        try:
            counts = await groups.members(admin, [topology.app_id, topology.member_group])
        finally:
            await connect.stop(admin)
        if not any(counts.values()):
            raise NotRunning(
                f"no worker of app {topology.app_id} is running (start `smartgroups worker`:"
                " the workers carry out the reconcile)"
            )
        reader = await groups.reader(settings, session)
        try:
            tps = await groups.partitions(reader, [topology.fanout], session)
            ends = await reader.end_offsets(tps)
            producer = AIOKafkaProducer(
                **settings.kafka_client_options(), acks="all", enable_idempotence=True
            )
            await connect.start(producer, session)
            try:
                message = reconcile_message(run_id, space, group, dry)
                for tp in tps:
                    await producer.send(tp.topic, message, key=b"reconcile", partition=tp.partition)
                await producer.flush()
            finally:
                await connect.stop(producer)
            reader.assign(tps)
            for tp in tps:
                reader.seek(tp, ends[tp])
            reports: dict[int, dict[str, Any]] = {}
            deadline = time.monotonic() + timeout
            while len(reports) < len(tps):
                if time.monotonic() > deadline:
                    raise Unfinished(
                        f"reconcile {run_id}: {len(reports)} of {len(tps)} partitions reported"
                        f" within {timeout:g} s (the workers go on; raise --timeout to wait"
                        " longer)"
                    )
                batch = await reader.getmany(timeout_ms=500)
                for messages in batch.values():
                    for m in messages:
                        if m.value is None or REPORT.encode() not in m.value:
                            continue
                        doc = orjson.loads(m.value)
                        if doc.get("k") == REPORT and doc.get("run") == run_id:
                            reports[int(doc["partition"])] = doc
            return [reports[p] for p in sorted(reports)]
        finally:
            await connect.stop(reader)
