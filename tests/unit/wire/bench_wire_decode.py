"""Cost of the edge per record (not a test; pytest does not collect it). Run::

    .venv/bin/python -m tests.unit.wire.bench_wire_decode

It prints the best of 7 runs, in microseconds per call, for typical inputs and one output.
"""

from __future__ import annotations

import timeit
from collections.abc import Callable

import orjson

from smartgroups.wire import decode_member_input, encode
from smartgroups.wire.models import MembershipChange

FULL = orjson.dumps(
    {"id": "01HZY3K4M8Q2V7W9X1Y2Z3A4B5", "type": "member.upserted", "space": "acme",
     "at": "2026-11-22T10:00:00Z", "v": 1, "member_id": "m42",
     "profile": {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com",
                 "title": "Countess", "status": "accepted", "role": "member",
                 "tags": ["vip", "math", "poetry"], "registered_at": "2026-01-05T09:00:00Z",
                 "last_active_at": "2026-11-21T18:30:00.123Z"}}
)  # fmt: skip
SMALL = orjson.dumps(
    {"id": "e-1", "type": "member.upserted", "space": "acme", "member_id": "m42",
     "profile": {"status": "accepted", "last_active_at": "2026-11-21T18:30:00Z"}}
)  # fmt: skip
PROPERTY = orjson.dumps(
    {"id": "e-2", "type": "property.set", "space": "acme", "member_id": "m42",
     "property_id": "plan", "value": "pro"}
)  # fmt: skip
BAD = orjson.dumps(
    {"id": "e-3", "type": "member.upserted", "space": "acme", "member_id": "m42",
     "profile": {"status": "ACTIVE"}}
)  # fmt: skip
CHANGE = MembershipChange.model_validate(
    {"id": "acme:vip:m42:3", "type": "member.added", "space": "acme", "group_id": "vip",
     "member_id": "m42", "version": 3, "reason": "conditions_met",
     "at": "2026-11-22T10:00:01.250Z",
     "group": {"name": "VIP", "kind": "smart", "slug": "vip",
               "resources": [{"type": "course", "id": "c1"}]},
     "cause": {"kind": "event", "event_id": "e-1", "topic": "member-changes", "partition": 3,
               "offset": 1200}}
)  # fmt: skip


def best(call: Callable[[], object], number: int = 20_000) -> float:
    return min(timeit.repeat(call, number=number, repeat=7)) / number * 1e6


def main() -> None:
    key = b"acme:m42"
    cases: list[tuple[str, Callable[[], object]]] = [
        (f"decode member.upserted, full profile ({len(FULL)} B)",
         lambda: decode_member_input("member-changes", key, FULL)),
        (f"decode member.upserted, 2 fields ({len(SMALL)} B)",
         lambda: decode_member_input("member-changes", key, SMALL)),
        (f"decode property.set ({len(PROPERTY)} B)",
         lambda: decode_member_input("property-changes", key, PROPERTY)),
        (f"decode to a schema_error dead letter ({len(BAD)} B)",
         lambda: decode_member_input("member-changes", key, BAD)),
        (f"orjson.loads alone ({len(FULL)} B)", lambda: orjson.loads(FULL)),
        ("encode member.added", lambda: encode(CHANGE)),
    ]  # fmt: skip
    for label, call in cases:
        print(f"{label:<48} {best(call):5.1f} µs")


if __name__ == "__main__":
    main()
