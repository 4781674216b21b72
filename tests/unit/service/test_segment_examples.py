"""``examples/segments``: the Poool-style and Atlas-style walkthroughs do what the docs say.

The members are published first, then each definition in turn (the services run to idle in
between), as ``smartgroups produce`` of the two files would, in that order, with a worker up.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from tests.unit.service.bus import Bus

FOLDER = Path(__file__).resolve().parents[3] / "examples" / "segments"


def lines(name: str) -> list[dict[str, Any]]:
    text = (FOLDER / name).read_text(encoding="utf-8")
    return [orjson.loads(line) for line in text.splitlines() if line.strip()]


async def test_the_segment_walkthroughs() -> None:
    bus = Bus(partitions=3, scan_chunk=2)
    for event in lines("member-changes.jsonl"):
        bus.event("member-changes", event)
    await bus.run()
    steps: list[tuple[str, list[tuple[str, str, str | None]]]] = []
    for command in lines("group-changes.jsonl"):
        bus.event("group-changes", command)
        await bus.run()
        moved = [orjson.loads(o.value or b"") for o in bus.take("segments")]
        steps.append(
            (command["id"], sorted((m["space"], m["member_id"], m["segment"]) for m in moved))
        )
    results = [orjson.loads(o.value or b"") for o in bus.take("results")]
    assert {r["type"] for r in results} == {"command.accepted"}
    assert steps == [
        ("pool-1", []),
        ("pool-2", []),
        ("pool-3", []),
        # custom groups before the native category, the rest in the fallback (no output)
        (
            "pool-4",
            [
                ("news", "r1", "vip-readers"),
                ("news", "r2", "sports-fans"),
                ("news", "r3", "vip-readers"),
                ("news", "r4", "subscribers"),
            ],
        ),
        # deactivating the custom group redistributes its readers
        ("pool-5", [("news", "r1", "sports-fans"), ("news", "r3", None)]),
        ("atlas-1", []),
        ("atlas-2", []),
        # t3 is blacklisted at creation: never in enterprise, routed by premium or the fallback
        ("atlas-3", [("help", "t1", "enterprise"), ("help", "t4", "premium")]),
        # the edited segment takes megacorp.com too: only t2 moves
        ("atlas-4", [("help", "t2", "enterprise")]),
    ]
    added = {(c["group_id"], c["member_id"]) for c in bus.changes() if c["type"] == "member.added"}
    assert ("enterprise", "t3") not in added
