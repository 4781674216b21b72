"""``smartgroups produce TOPIC FILE.jsonl``: publish events with the keys the contract requires.

Each non-blank line is one JSON event. The key is derived from the event: ``{space}`` for
``group-changes``, ``{space}:{member_id}`` for the member-keyed topics; the partition follows
from the key (Kafka's murmur2 default partitioner). ``-`` reads standard input. Lines that are not
JSON objects, or lack the fields the key needs, stop the command before anything is sent
(exit status 2), so a file is published whole or not at all.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

import orjson

from smartgroups.cli.main import add_connection_flags, settings_from
from smartgroups.errors import SmartGroupsError

TOPICS = ("member-changes", "property-changes", "form-answers", "group-changes")


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("produce", help="publish events from a JSON-lines file")
    parser.add_argument("topic", choices=TOPICS, help="contract topic name (prefix added)")
    parser.add_argument("file", help="JSON-lines file, or - for standard input")
    add_connection_flags(parser)


class ProduceError(SmartGroupsError):
    """A line cannot be published; nothing was sent."""

    exit_status = 2


def key_for(topic: str, event: Any, line: int) -> bytes:
    """The contract key of ``event`` on ``topic``."""
    if not isinstance(event, dict):
        raise ProduceError(f"line {line}: not a JSON object")
    space = event.get("space")
    if not isinstance(space, str):
        raise ProduceError(f"line {line}: 'space' is required to build the key")
    if topic == "group-changes":
        return space.encode()
    member_id = event.get("member_id")
    if not isinstance(member_id, str):
        raise ProduceError(f"line {line}: 'member_id' is required to build the key")
    return f"{space}:{member_id}".encode()


def read_events(topic: str, text: str) -> list[tuple[bytes, bytes]]:
    """(key, value) for every non-blank line; raises :class:`ProduceError` naming the line."""
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            event = orjson.loads(line)
        except orjson.JSONDecodeError:
            raise ProduceError(f"line {number}: not valid JSON") from None
        records.append((key_for(topic, event, number), orjson.dumps(event)))
    return records


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    if args.file == "-":
        text = sys.stdin.read()
    else:
        with open(args.file, encoding="utf-8") as handle:
            text = handle.read()
    records = read_events(args.topic, text)
    asyncio.run(_send(settings.kafka_client_options(), settings.topic(args.topic), records))
    print(f"published {len(records)} events to {settings.topic(args.topic)}", file=sys.stderr)
    return 0


async def _send(options: dict[str, Any], topic: str, records: list[tuple[bytes, bytes]]) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(**options, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for key, value in records:
            await producer.send(topic, value=value, key=key)
        await producer.flush()
    finally:
        await producer.stop()
