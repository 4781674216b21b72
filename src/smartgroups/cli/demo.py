"""``smartgroups worker --demo``: publish the examples once ready and print every change.

For ``make run``: a newcomer sees the processor decide memberships on real topics without a
second terminal. Once the worker's first rebalance has finished (partitions assigned and
recovered), the four topic files of ``examples/`` (relative to the working directory) are
published in the order of :data:`ORDER`, one second apart, so each file is applied before the
next arrives and the printed lines come in the same order on every run. The members come first
and the definitions after them, as in a community that exists before its admin defines groups:
adding m3 to the static group ``coaches`` then cascades into the smart group ``acme-vip`` (whose
conditions read ``groups``), both changes with the same cause, the ``group.member_added``
command. Relative instants (``"now-10d"``, :mod:`smartgroups.cli.relative`) are resolved at
publishing time, so the demo never goes stale.

Each ``member.added`` / ``member.removed`` the worker emits is printed to standard output as one
plain line, ``member.added demo/acme-vip/m1 v1 (conditions_met)``: type, space/group/member,
version, reason. The examples are ordinary events; publishing them again (a second ``make run``
on the same broker and data) is harmless: the definitions are rejected as existing, the member
updates change nothing, so no line is printed.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path
from typing import Any, TextIO

import orjson

from smartgroups.cli.produce import read_events
from smartgroups.cli.relative import resolve_relative
from smartgroups.wire.topics import FORM_ANSWERS, GROUP_CHANGES, MEMBER_CHANGES, PROPERTY_CHANGES
from smartgroups.worker.clock import utc_now
from smartgroups.worker.runtime import Runtime

log = logging.getLogger("smartgroups.demo")

EXAMPLES = Path("examples")
ORDER = (MEMBER_CHANGES, GROUP_CHANGES, PROPERTY_CHANGES, FORM_ANSWERS)
PAUSE_S = 1.0
"""Seconds between two files: enough for a live worker to apply the previous one."""


def change_line(event: dict[str, Any]) -> str:
    """``member.added demo/acme-vip/m1 v1 (conditions_met)`` for a membership change."""
    return (
        f"{event['type']} {event['space']}/{event['group_id']}/{event['member_id']}"
        f" v{event['version']} ({event['reason']})"
    )


def example_records(logical: str, text: str) -> list[tuple[bytes, bytes]]:
    """(key, value) of a topic file's events, relative instants resolved against now."""
    now = utc_now()
    return [
        (key, orjson.dumps(resolve_relative(orjson.loads(value), now)))
        for key, value in read_events(logical, text)
    ]


def register_demo(runtime: Runtime, out: TextIO | None = None) -> None:
    """Add the publishing task and the printing agent to ``runtime``'s app."""
    app = runtime.app
    stdout = out if out is not None else sys.stdout
    changes = app.topic(
        runtime.topology.membership_changes, key_type=bytes, value_type=bytes,
        value_serializer="raw", key_serializer="raw",
    )  # fmt: skip

    @app.task  # type: ignore[untyped-decorator]
    async def publish_examples() -> None:
        recovery: Any = app.tables.recovery  # type: ignore[attr-defined]  # TableManager has it
        await recovery.completed.wait()  # set once, when the first rebalance is done
        log.info("demo: publishing %s/*.jsonl; each membership change follows", EXAMPLES)
        for logical in ORDER:
            path = EXAMPLES / f"{logical}.jsonl"
            if not path.exists():
                log.warning("demo: %s not found (run from the repository root)", path)
                continue
            topic = app.topic(runtime.settings.topic(logical), value_serializer="raw")
            records = example_records(logical, path.read_text(encoding="utf-8"))
            for key, value in records:
                await topic.send(key=key, value=value, key_serializer="raw")
            log.debug("demo: published %d events of %s", len(records), path)
            await asyncio.sleep(PAUSE_S)

    @app.agent(changes, name="demo-printer")
    async def print_changes(stream: Any) -> None:
        async for value in stream:
            print(change_line(orjson.loads(value)), file=stdout, flush=True)
