"""``smartgroups worker --demo``: publish the examples once started and log every change.

For ``make run``: a newcomer sees the processor decide memberships on real topics without a
second terminal. The examples are ordinary events; publishing them twice is harmless (the
definitions are rejected as existing, the member updates change nothing).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import orjson

from smartgroups.cli.produce import read_events
from smartgroups.worker.app import Runtime

log = logging.getLogger("smartgroups.demo")

EXAMPLES = Path("examples")
ORDER = ("group-changes", "member-changes", "property-changes", "form-answers")


def register_demo(runtime: Runtime) -> None:
    app = runtime.app
    changes = app.topic(
        runtime.topology.membership_changes, key_type=bytes, value_type=bytes,
        value_serializer="raw", key_serializer="raw",
    )  # fmt: skip

    @app.task  # type: ignore[untyped-decorator]
    async def publish_examples() -> None:
        await asyncio.sleep(2)
        for logical in ORDER:
            path = EXAMPLES / f"{logical}.jsonl"
            if not path.exists():
                log.warning("demo: %s not found (run from the repository root)", path)
                continue
            topic = app.topic(runtime.settings.topic(logical), value_serializer="raw")
            for key, value in read_events(logical, path.read_text(encoding="utf-8")):
                await topic.send(key=key, value=value, key_serializer="raw")
            log.info("demo: published %s", path)
            await asyncio.sleep(1)

    @app.agent(changes, name="demo-printer")
    async def print_changes(stream: Any) -> None:
        async for value in stream:
            event = orjson.loads(value)
            log.info(
                "%s %s/%s/%s v%s (%s)",
                event["type"], event["space"], event["group_id"], event["member_id"],
                event["version"], event["reason"],
            )  # fmt: skip
