"""``smartgroups dead-letters``: count, show and redrive dead letters (contract §8).

* ``smartgroups dead-letters [--code C] [--topic T] [--since TS]`` counts the dead letters by
  code and source topic (a table, then a total line).
* ``--show N`` prints the first N selected dead letters instead, one JSON object per line:
  ``{"dead_letter": "<topic>[<partition>]@<offset>", "at", "key", "code", "message",
  "source": {"topic", "partition", "offset"}}`` -- never the value, unless ``--values``.
* ``smartgroups dead-letters redrive [--code C] [--topic T] [--since TS] [--execute]``
  re-produces each selected dead letter's original key and value bytes to its source topic and
  partition, with the header ``redriven.from`` = the dead letter's coordinates
  (``<dead-letters topic>[<partition>]@<offset>``). A dry run (the count per code and topic that
  would be sent) unless ``--execute``.

``--topic`` is a contract input topic name (the prefix is added); ``--since`` an RFC 3339
instant, compared with the dead letter's Kafka timestamp (when it was dead-lettered).

**Each dead letter is redriven at most once**: every ``error.code`` has a redrive high-water
mark per ``dead-letters`` partition, kept as the committed offsets of the consumer group
``{app}-redrive-{code}``. A redrive reads, per partition, from the mark of each code to the end
the partition had when the command started, sends what the filters select, waits until the
broker acknowledged every record, then moves the marks of the codes it covered to that end. So
a second run over the same range sends nothing, while a later dead letter (a new failure) is
redriven by the next run. Why consumer-group offsets rather than a compacted topic of redriven
coordinates: they need no topic of their own (nothing for the worker to create and verify), any
Kafka tool can read and move them, and they cost one commit per run. Why one group per code: the
usual redrive is of one code after the fix of its cause (``--code processing_error``), and it
must not use up the dead letters of the other codes.

Decisions where the contract is silent:

* Dead letters of a covered code that ``--topic`` or ``--since`` leave out are passed over for
  good (the mark moves past them); the command prints how many.
* A crash between the sends and the commit of the marks sends those records again on the next
  run (at least once): applying an input twice is harmless (a member record recognises no
  change, the outputs are idempotent), losing one is not.
* A dead letter whose source is not one of this app's input topics (another prefix) is never
  sent; it is counted as passed over.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, get_args

import orjson

from smartgroups.cli import connect, groups
from smartgroups.cli.options import add_connection_flags, settings_from
from smartgroups.core.values import parse_instant
from smartgroups.errors import UsageError
from smartgroups.settings import Settings
from smartgroups.wire.deadletter import DeadLetterCode
from smartgroups.wire.topics import DEAD_LETTERS, INPUTS

CODES: tuple[str, ...] = get_args(DeadLetterCode)
REDRIVEN_FROM = "redriven.from"


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "dead-letters", help="count, show or redrive dead letters (`dead-letters redrive`)"
    )
    add_connection_flags(parser)
    parser.add_argument(
        "action", nargs="?", choices=("redrive",), help="redrive: re-produce them to their source"
    )
    parser.add_argument("--code", choices=CODES, help="only this error.code")
    parser.add_argument("--topic", choices=INPUTS, help="only those read from this input topic")
    parser.add_argument("--since", metavar="TS", help="only those dead-lettered at or after TS")
    parser.add_argument("--show", type=int, metavar="N", help="print the first N of them")
    parser.add_argument("--values", action="store_true", help="with --show: print the values")
    parser.add_argument("--execute", action="store_true", help="redrive: send (else: dry run)")


@dataclass(frozen=True, slots=True)
class Letter:
    """One dead-letter record and what its headers say."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    code: str
    message: str
    source_topic: str
    source_partition: int | None
    source_offset: int | None

    @property
    def coordinates(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}"

    @classmethod
    def from_message(cls, m: Any) -> Letter:
        headers = {name: (raw or b"").decode("utf-8", "replace") for name, raw in m.headers}
        return cls(
            m.topic, m.partition, m.offset, m.timestamp, m.key, m.value,
            headers.get("error.code", ""), headers.get("error.message", ""),
            headers.get("source.topic", ""), _int(headers.get("source.partition")),
            _int(headers.get("source.offset")),
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Filters:
    code: str | None
    topic: str | None  # full name
    since_ms: int | None

    def select(self, letter: Letter) -> bool:
        return (
            (self.code is None or letter.code == self.code)
            and (self.topic is None or letter.source_topic == self.topic)
            and (self.since_ms is None or letter.timestamp >= self.since_ms)
        )


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def run(args: argparse.Namespace) -> int:
    if args.show is not None and args.show < 1:
        raise UsageError(f"--show {args.show}: must be at least 1")
    if args.action == "redrive" and (args.show is not None or args.values):
        raise UsageError("--show and --values do not apply to redrive (drop them)")
    if args.action is None and args.execute:
        raise UsageError("--execute applies to redrive only (run `dead-letters redrive --execute`)")
    if args.values and args.show is None:
        raise UsageError("--values needs --show N (it prints the values of the shown records)")
    since_ms = None
    if args.since is not None:
        instant = parse_instant(args.since)
        if instant is None:
            raise UsageError(f"--since {args.since}: not an RFC 3339 timestamp")
        since_ms = int(instant.astimezone(UTC).timestamp() * 1000)
    settings = settings_from(args)
    topic = settings.topic(args.topic) if args.topic else None
    filters = Filters(args.code, topic, since_ms)
    if args.action == "redrive":
        return asyncio.run(_redrive(settings, filters, args.execute))
    letters = asyncio.run(_read(settings, filters, {}))
    if args.show is not None:
        for letter in letters[: args.show]:
            print(show_line(letter, values=args.values))
        return 0
    print(summary(letters))
    return 0


async def _read(
    settings: Settings, filters: Filters, marks: dict[tuple[str, int], int]
) -> list[Letter]:
    """The selected dead letters (all of them, or from each code's ``marks`` on)."""
    async with connect.kafka_session(settings) as session:
        letters, _ = await _read_in(settings, session, filters, marks)
        return letters


async def _read_in(
    settings: Settings,
    session: connect.KafkaSession,
    filters: Filters,
    marks: dict[tuple[str, int], int],
) -> tuple[list[Letter], dict[Any, int]]:
    """Read each ``dead-letters`` partition up to its end now; return the selected dead letters
    at or past their code's mark, and the ends read to."""
    consumer = await groups.reader(settings, session)
    try:
        tps = await groups.partitions(consumer, [settings.topic(DEAD_LETTERS)], session)
        ends = await consumer.end_offsets(tps)
        starts = await consumer.beginning_offsets(tps)
        lowest = {tp: min([marks.get((c, tp.partition), starts[tp]) for c in CODES]) for tp in tps}
        if filters.since_ms is not None:
            found = await consumer.offsets_for_times(dict.fromkeys(tps, filters.since_ms))
            for tp in tps:
                at = found.get(tp)
                lowest[tp] = max(lowest[tp], at.offset if at is not None else ends[tp])
        pending = [tp for tp in tps if lowest[tp] < ends[tp]]
        consumer.assign(pending)
        for tp in pending:
            consumer.seek(tp, max(lowest[tp], starts[tp]))
        letters: list[Letter] = []
        while pending:
            batch = await asyncio.wait_for(
                consumer.getmany(*pending, timeout_ms=1000), connect.CONNECT_TIMEOUT_S * 3
            )
            for tp, messages in batch.items():
                for m in messages:
                    if m.offset >= ends[tp]:
                        break
                    letter = Letter.from_message(m)
                    mark = marks.get((letter.code, tp.partition), 0)
                    if letter.offset >= mark and filters.select(letter):
                        letters.append(letter)
            pending = [tp for tp in pending if await consumer.position(tp) < ends[tp]]
        letters.sort(key=lambda x: (x.partition, x.offset))
        return letters, {tp: int(ends[tp]) for tp in tps}
    finally:
        await connect.stop(consumer)


def summary(letters: Sequence[Letter], verb: str = "") -> str:
    """Counts by code and source topic, then the total."""
    counts = Counter((x.code, x.source_topic) for x in letters)
    rows = [("code", "source topic", "count")] + [
        (code, topic, str(n)) for (code, topic), n in sorted(counts.items())
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [
        f"{r[0].ljust(widths[0])}  {r[1].ljust(widths[1])}  {r[2].rjust(widths[2])}" for r in rows
    ]
    lines.append(f"{len(letters)} dead letters{verb}")
    return "\n".join(lines)


def show_line(letter: Letter, *, values: bool) -> str:
    """One ``--show`` line (see the module docstring)."""
    line: dict[str, Any] = {
        "dead_letter": letter.coordinates,
        "at": datetime.fromtimestamp(letter.timestamp / 1000, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z"),
        **_bytes("key", letter.key),
        "code": letter.code,
        "message": letter.message,
        "source": {
            "topic": letter.source_topic,
            "partition": letter.source_partition,
            "offset": letter.source_offset,
        },
    }
    if values:
        line.update(_bytes("value", letter.value))
    return orjson.dumps(line).decode()


def _bytes(name: str, data: bytes | None) -> dict[str, str | None]:
    """``{name: text}``, or ``{name_base64: ...}`` when ``data`` is not UTF-8."""
    if data is None:
        return {name: None}
    try:
        return {name: data.decode("utf-8")}
    except UnicodeDecodeError:
        return {f"{name}_base64": base64.b64encode(data).decode("ascii")}


def redrive_group(app_id: str, code: str) -> str:
    """The consumer group whose committed offsets are ``code``'s redrive marks."""
    return f"{app_id}-redrive-{code}"


async def _redrive(settings: Settings, filters: Filters, execute: bool) -> int:
    from aiokafka import AIOKafkaProducer, TopicPartition

    app_id = f"{settings.topic_prefix}{settings.app_id}"
    codes = [filters.code] if filters.code else list(CODES)
    inputs = {settings.topic(t) for t in INPUTS}
    dead_letters = settings.topic(DEAD_LETTERS)
    async with connect.kafka_session(settings) as session:
        admin = await groups.admin_client(settings, session)
        try:
            probe = await groups.reader(settings, session)
            try:
                tps = await groups.partitions(probe, [dead_letters], session)
            finally:
                await connect.stop(probe)
            marks: dict[tuple[str, int], int] = {}
            for code in CODES:
                committed = await groups.committed(admin, redrive_group(app_id, code), tps)
                for tp, offset in committed.items():
                    # A code not covered by this run keeps a mark no record passes.
                    marks[(code, tp.partition)] = (offset or 0) if code in codes else 1 << 62
            everything = Filters(filters.code, None, None)
            covered, ends = await _read_in(settings, session, everything, marks)
            chosen = [
                x
                for x in covered
                if x.code in codes and filters.select(x) and x.source_topic in inputs
            ]
            passed = len(covered) - len(chosen)
            if not execute:
                print(summary(chosen, " would be redriven"))
                if passed:
                    print(f"{passed} dead letters of the same codes do not match; --execute passes"
                          " over them for good")  # fmt: skip
                print("dry run: add --execute to send them")
                return 0
            producer = AIOKafkaProducer(
                **settings.kafka_client_options(), acks="all", enable_idempotence=True
            )
            await connect.start(producer, session)
            try:
                for x in chosen:
                    assert x.source_partition is not None
                    await producer.send(
                        x.source_topic,
                        value=x.value,
                        key=x.key,
                        partition=x.source_partition,
                        headers=[(REDRIVEN_FROM, x.coordinates.encode())],
                    )
                await producer.flush()
            finally:
                await connect.stop(producer)
            for code in codes:
                await groups.commit(
                    settings,
                    session,
                    redrive_group(app_id, code),
                    {TopicPartition(tp.topic, tp.partition): end for tp, end in ends.items()},
                )
            print(summary(chosen, " redriven"))
            if passed:
                print(f"{passed} dead letters of the same codes did not match: passed over")
            return 0
        finally:
            await connect.stop(admin)
