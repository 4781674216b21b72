"""``smartgroups produce TOPIC FILE.jsonl``: publish events with the keys the contract requires.

Each non-blank line is one JSON event. The key is derived from the event: ``{space}`` for
``group-changes``, ``{space}:{member_id}`` for the member-keyed topics; the partition follows
from the key (Kafka's murmur2 default partitioner). ``-`` reads standard input. Relative instants
under ``*_at`` keys (``"now"``, ``"now-10d"``, see :mod:`smartgroups.cli.relative`) become RFC 3339
instants, all relative to one moment, read before anything is sent.

A file is published whole or not at all: a file that cannot be read or is not UTF-8, a line that is
not a JSON object or lacks the fields its key needs, and a topic that does not exist all stop the
command before anything is sent (one line on stderr, exit status 2). The topic is never created
here, even on a broker that auto-creates topics: ``smartgroups worker`` creates every topic with
the partition count the keys rely on, and a topic made by a first ``produce`` would have the
broker's default count and stop the worker.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

from smartgroups.cli import connect
from smartgroups.cli.options import add_connection_flags, settings_from
from smartgroups.cli.relative import resolve_relative
from smartgroups.errors import ProduceError
from smartgroups.settings import Settings
from smartgroups.wire.topics import GROUP_CHANGES, INPUTS

__all__ = ["TOPICS", "ProduceError", "add_parser", "key_for", "read_events", "run"]

TOPICS = INPUTS


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("produce", help="publish events from a JSON-lines file")
    parser.add_argument("topic", choices=TOPICS, help="contract topic name (prefix added)")
    parser.add_argument("file", help="JSON-lines file, or - for standard input")
    add_connection_flags(parser)


def key_for(topic: str, event: Any, line: int) -> bytes:
    """The contract key of ``event`` on ``topic``."""
    if not isinstance(event, dict):
        raise ProduceError(f"line {line}: not a JSON object (write one event object per line)")
    space = event.get("space")
    if not isinstance(space, str):
        raise ProduceError(f"line {line}: 'space' is required to build the key (add it)")
    if topic == GROUP_CHANGES:
        return space.encode()
    member_id = event.get("member_id")
    if not isinstance(member_id, str):
        raise ProduceError(f"line {line}: 'member_id' is required to build the key (add it)")
    return f"{space}:{member_id}".encode()


def read_events(topic: str, text: str, now: datetime | None = None) -> list[tuple[bytes, bytes]]:
    """(key, value) for every non-blank line, relative instants resolved against ``now``
    (default: the current time, read once); raises :class:`ProduceError` naming the line."""
    moment = now or datetime.now(UTC)
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            event = orjson.loads(line)
        except orjson.JSONDecodeError:
            raise ProduceError(f"line {number}: not valid JSON (fix or remove the line)") from None
        key = key_for(topic, event, number)
        records.append((key, orjson.dumps(resolve_relative(event, moment))))
    return records


def read_text(path: str) -> str:
    """The UTF-8 text of ``path`` (``-``: standard input); OSError for a file that cannot be
    read (the CLI reports it), :class:`ProduceError` for bytes that are not UTF-8."""
    data = sys.stdin.buffer.read() if path == "-" else _read_bytes(path)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        name = "standard input" if path == "-" else path
        raise ProduceError(f"{name}: line {line} is not UTF-8 (save the file as UTF-8)") from None


def _read_bytes(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    records = read_events(args.topic, read_text(args.file))
    topic = settings.topic(args.topic)
    asyncio.run(_send(settings, topic, records))
    noun = "event" if len(records) == 1 else "events"
    print(f"published {len(records)} {noun} to {topic}", file=sys.stderr)
    return 0


async def _send(settings: Settings, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    from aiokafka import AIOKafkaProducer

    async with connect.kafka_session(settings) as session:
        producer = AIOKafkaProducer(
            **settings.kafka_client_options(),
            acks="all",
            enable_idempotence=True,
            request_timeout_ms=int(connect.CONNECT_TIMEOUT_S * 1000),
        )
        await connect.start(producer, session)
        try:
            await connect.topic_partitions(producer, topic, session)
            deliveries = [
                await producer.send(topic, value=value, key=key) for key, value in records
            ]
            await producer.flush()
            await asyncio.gather(*deliveries)  # a refused record is an error, not a silent loss
        finally:
            await connect.stop(producer)
