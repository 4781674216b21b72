"""``smartgroups tail``: print membership changes as JSON lines, as they happen.

Reads ``membership-changes`` without joining a consumer group (it never disturbs anyone's
offsets). ``--from-beginning`` starts at the earliest retained change; ``--group G`` prints only
group ``G``'s changes; ``--max N`` and ``--timeout S`` stop after N changes or S idle seconds
(handy in scripts); otherwise it runs until interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from typing import Any

import orjson

from smartgroups.cli.main import add_connection_flags, settings_from


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("tail", help="print membership changes as JSON lines")
    add_connection_flags(parser)
    parser.add_argument("--from-beginning", action="store_true", help="start at the earliest")
    parser.add_argument("--group", help="only this group's changes")
    parser.add_argument("--max", type=int, help="stop after this many changes")
    parser.add_argument("--timeout", type=float, help="stop after this many idle seconds")


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    topic = settings.topic("membership-changes")
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(_tail(settings.kafka_client_options(), topic, args))
    return 0


async def _tail(options: dict[str, Any], topic: str, args: argparse.Namespace) -> int:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(**options, enable_auto_commit=False, group_id=None)
    await consumer.start()
    try:
        partitions = await _partitions(consumer, topic)
        if not partitions:
            print(f"smartgroups: topic {topic} does not exist", file=sys.stderr)
            return 1
        tps = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(tps)
        if args.from_beginning:
            await consumer.seek_to_beginning(*tps)
        else:
            await consumer.seek_to_end(*tps)
        printed = 0
        while args.max is None or printed < args.max:
            batch = await consumer.getmany(timeout_ms=int((args.timeout or 3600) * 1000))
            if not batch and args.timeout is not None:
                break
            for message in (m for records in batch.values() for m in records):
                if args.max is not None and printed >= args.max:
                    break
                if message.value is None:
                    continue
                event = orjson.loads(message.value)
                if args.group and event.get("group_id") != args.group:
                    continue
                sys.stdout.write(message.value.decode() + "\n")
                printed += 1
            sys.stdout.flush()
        return 0
    finally:
        await consumer.stop()


async def _partitions(consumer: Any, topic: str, wait_s: float = 10.0) -> list[int]:
    """The topic's partitions, refreshing metadata for up to ``wait_s`` (a new topic's
    metadata can lag); empty when it does not exist."""
    deadline = asyncio.get_running_loop().time() + wait_s
    while True:
        found = consumer.partitions_for_topic(topic)
        if found or asyncio.get_running_loop().time() > deadline:
            return sorted(found or ())
        await consumer._client.force_metadata_update()
        await asyncio.sleep(0.2)
