"""``smartgroups tail``: print an output topic's records as JSON lines, as they arrive.

``--topic`` picks the output topic (prefix added): ``membership-changes`` (the default),
``membership-state``, ``group-change-results``, ``dead-letters``, ``segment-changes`` or
``segment-state``. One JSON object per line:

* ``membership-changes``, ``group-change-results``, ``segment-changes``: the record's value, the
  event itself.
* ``membership-state``, ``segment-state``: ``{"key": ..., "value": {...}}``; a tombstone (the
  member left the group, or returned to the set's fallback) is ``"value": null``.
* ``dead-letters``: ``{"key": ..., "headers": {"error.code": ..., "error.message": ...,
  "source.topic": ..., "source.partition": ..., "source.offset": ...}, "value": ...}``. Key and
  value are the original input's bytes shown as text; bytes that are not UTF-8 are shown instead
  as ``"key_base64"`` / ``"value_base64"`` (standard base64 of the exact bytes), so nothing is lost
  or garbled. A null key or value is ``null``. Header values are UTF-8 text.

A record that is not what its topic should hold (not a JSON object: someone else wrote to the
topic) is printed in the dead-letters form, ``{"key", "value"}``, whatever ``--group`` says: it
is never dropped and never stops the tail.

It reads without joining a consumer group (it never disturbs anyone's offsets), from the end, or
from the earliest retained record with ``--from-beginning``. ``--group G`` prints only group
``G``'s records (by ``group_id``; for ``membership-state`` by the key's group part, so a
tombstone is kept; for ``segment-changes``, the changes into or out of segment ``G``); it does
not apply to ``dead-letters``, whose values are raw inputs, nor to ``segment-state``, whose
tombstones name no group.
``--max N`` stops after N printed records.

``--timeout S`` ends the command S seconds after its last printed line (or its start), whatever
the broker does, even if it was wiped or is gone: one deadline bounds connecting, seeking and
fetching. Not reaching Kafka within that bound (at most 10 s) is an error, like a topic that does
not exist, which is reported at once: one line on stderr, exit status 2. Without ``--timeout`` it
runs until interrupted (Ctrl-C ends it with status 0).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import os
import sys
from collections.abc import Sequence
from typing import Any

import orjson

from smartgroups.cli import connect
from smartgroups.cli.options import add_connection_flags, settings_from
from smartgroups.errors import UsageError
from smartgroups.settings import Settings
from smartgroups.wire.topics import OUTPUTS

TOPICS = OUTPUTS


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("tail", help="print an output topic's records as JSON lines")
    add_connection_flags(parser)
    parser.add_argument(
        "--topic",
        choices=TOPICS,
        default="membership-changes",
        help="output topic to read (prefix added; default membership-changes)",
    )
    parser.add_argument("--from-beginning", action="store_true", help="start at the earliest")
    parser.add_argument("--group", help="only this group's records (not for dead-letters)")
    parser.add_argument("--max", type=int, help="stop after this many records")
    parser.add_argument(
        "--timeout", type=float, help="stop after this many seconds without a new line"
    )


def run(args: argparse.Namespace) -> int:
    if args.group is not None and args.topic == "dead-letters":
        raise UsageError(
            "--group does not apply to dead-letters (their values are raw inputs; drop --group)"
        )
    if args.group is not None and args.topic == "segment-state":
        raise UsageError(
            "--group does not apply to segment-state (its tombstones name no group; use "
            "--topic segment-changes --group G)"
        )
    if args.timeout is not None and args.timeout <= 0:
        raise UsageError(f"--timeout {args.timeout:g}: must be more than 0 seconds")
    if args.max is not None and args.max < 1:
        raise UsageError(f"--max {args.max}: must be at least 1")
    settings = settings_from(args)
    try:
        with contextlib.suppress(KeyboardInterrupt):
            return asyncio.run(_tail(settings, args))
        return 0
    except BrokenPipeError:  # `smartgroups tail | head -3`: the reader has what it wanted
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


async def _tail(settings: Settings, args: argparse.Namespace) -> int:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    topic = settings.topic(args.topic)
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with connect.kafka_session(settings) as session:
        consumer = AIOKafkaConsumer(
            **settings.kafka_client_options(),
            enable_auto_commit=False,
            group_id=None,
            request_timeout_ms=int(connect.CONNECT_TIMEOUT_S * 1000),
        )
        await connect.start(consumer, session, bound=args.timeout)
        try:
            deadline = None if args.timeout is None else started + args.timeout
            idle = asyncio.timeout_at(deadline)
            try:
                async with idle:
                    partitions = await connect.topic_partitions(consumer, topic, session)
                    tps = [TopicPartition(topic, p) for p in partitions]
                    consumer.assign(tps)
                    if args.from_beginning:
                        await consumer.seek_to_beginning(*tps)
                    else:
                        await consumer.seek_to_end(*tps)
                    await _print_records(consumer, args, idle)
            except TimeoutError:
                if not idle.expired():
                    raise
            return 0
        finally:
            await connect.stop(consumer)


async def _print_records(consumer: Any, args: argparse.Namespace, idle: asyncio.Timeout) -> None:
    """Print records until ``--max`` is reached (or forever); each line moves ``idle`` on."""
    loop = asyncio.get_running_loop()
    printed = 0
    while args.max is None or printed < args.max:
        batch = await consumer.getmany(timeout_ms=1000)
        for message in (m for records in batch.values() for m in records):
            line = format_record(
                args.topic, message.key, message.value, message.headers, args.group
            )
            if line is None:
                continue
            sys.stdout.write(line + "\n")
            printed += 1
            if args.timeout is not None:
                idle.reschedule(loop.time() + args.timeout)
            if args.max is not None and printed >= args.max:
                break
        sys.stdout.flush()


def format_record(
    topic: str,
    key: bytes | None,
    value: bytes | None,
    headers: Sequence[tuple[str, bytes]] = (),
    group: str | None = None,
) -> str | None:
    """The JSON line for a record of contract topic ``topic``; ``None`` when ``group`` filters
    it out (see the module docstring for each topic's form)."""
    if topic == "dead-letters":
        return _dump({**_bytes("key", key), "headers": _headers(headers), **_bytes("value", value)})
    if topic in ("membership-state", "segment-state"):
        state = _object(value)
        if value is not None and state is None:
            return _dump({**_bytes("key", key), **_bytes("value", value)})
        if group is not None and _state_group(key) != group:
            return None
        return _dump({**_bytes("key", key), "value": state})
    event = _object(value)
    if event is None:
        return _dump({**_bytes("key", key), **_bytes("value", value)})
    if group is not None:
        named = (
            (event.get("segment"), event.get("previous"))
            if topic == "segment-changes"
            else (event.get("group_id"),)
        )
        if group not in named:
            return None
    return _dump(event)


def _object(value: bytes | None) -> dict[str, Any] | None:
    if value is None:
        return None
    try:
        decoded = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    return decoded if isinstance(decoded, dict) else None


def _state_group(key: bytes | None) -> str | None:
    parts = (key or b"").decode("utf-8", "replace").split(":")
    return parts[1] if len(parts) == 3 else None


def _bytes(name: str, data: bytes | None) -> dict[str, str | None]:
    """``{name: text}``, or ``{name_base64: ...}`` when ``data`` is not UTF-8."""
    if data is None:
        return {name: None}
    try:
        return {name: data.decode("utf-8")}
    except UnicodeDecodeError:
        return {f"{name}_base64": base64.b64encode(data).decode("ascii")}


def _headers(headers: Sequence[tuple[str, bytes]]) -> dict[str, str]:
    return {name: (raw or b"").decode("utf-8", "backslashreplace") for name, raw in headers}


def _dump(record: dict[str, Any]) -> str:
    return orjson.dumps(record).decode()
