"""What the agents share at the edge: the input record, sending, dead letters and re-routing.

* :class:`Record` is an input as the agents see it: full topic name, partition, offset, key and
  value bytes. A record re-routed through an internal topic is unwrapped back to its original
  coordinates, so everything downstream (dedupe, ``cause``) refers to where it was produced.
* :class:`Sender` sends by topic *role* (``changes``, ``state``, ``results``, ``fanout``,
  ``commands``, ``dead_letters``), and dead-letters a record with the contract's headers.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from smartgroups.wire.decode import DeadLetter, dead_letter_headers
from smartgroups.worker.app import Runtime

log = logging.getLogger("smartgroups.edge")


@dataclass(frozen=True, slots=True)
class Record:
    """One input record at its original coordinates."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    rerouted: bool = False

    @classmethod
    def from_message(cls, message: Any) -> Record:
        return cls(message.topic, message.partition, message.offset, message.key, message.value)

    def coordinates(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}"


def reroute_value(record: Record) -> bytes:
    """Wrap a record found on the wrong partition, to be sent to its key's partition."""
    return orjson.dumps(
        {
            "k": "reroute",
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "key": None if record.key is None else base64.b64encode(record.key).decode(),
            "value": None if record.value is None else base64.b64encode(record.value).decode(),
        }
    )


def unwrap_reroute(record: Record) -> Record:
    """The original record inside a re-route wrapper (see :func:`reroute_value`)."""
    doc = orjson.loads(record.value or b"{}")
    return Record(
        topic=doc["topic"],
        partition=int(doc["partition"]),
        offset=int(doc["offset"]),
        key=None if doc["key"] is None else base64.b64decode(doc["key"]),
        value=None if doc["value"] is None else base64.b64decode(doc["value"]),
        rerouted=True,
    )


class Sender:
    """Sends outputs through the app's producer, flushed by faust before offsets commit.

    Records go to the producer driver directly (``app.producer.send``), not through faust's
    ``Topic.send``: the bytes are final already, and faust's channel layer (codecs, future
    messages, callbacks) cost several times the send itself on the hot path. faust's commit
    still flushes this producer before committing offsets (``Consumer.commit``), so delivery
    stays at-least-once. A record the producer fails to deliver after its retries is logged and
    counted (``outputs.failed``).
    """

    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime
        self._names: dict[str, str] = {}

    def _name(self, role: str) -> str:
        name = self._names.get(role)
        if name is None:
            name = self._names[role] = self.rt.topics[role].get_topic_name()
        return name

    async def raw(
        self,
        role: str,
        key: bytes | None,
        value: bytes | None,
        partition: int | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        delivery: asyncio.Future[Any] = await self.rt.app.producer.send(  # type: ignore[assignment]
            self._name(role), key, value, partition, None, headers
        )
        delivery.add_done_callback(self._delivered)

    def _delivered(self, delivery: Any) -> None:
        if delivery.cancelled() or delivery.exception() is None:
            return
        self.rt.stats["outputs.failed"] += 1
        log.error("output not delivered: %r", delivery.exception())

    async def dead_letter(self, record: Record, letter: DeadLetter) -> None:
        """Send ``record``'s original bytes to ``dead-letters`` with the contract's headers."""
        headers = dead_letter_headers(letter, record.topic, record.partition, record.offset)
        await self.raw("dead_letters", record.key, record.value, headers=headers)
        self.rt.stats[f"dead_letters.{letter.code}"] += 1
        log.warning("dead-lettered %s: %s (%s)", record.coordinates(), letter.code, letter.message)

    async def processing_error(self, record: Record) -> None:
        """Dead-letter a record whose processing failed in our code (never lost, never acked
        silently); ``error.code`` is ``processing_error``. Never raises."""
        try:
            await self.dead_letter(
                record, DeadLetter("processing_error", "the processor failed on this record")
            )
        except Exception:
            log.exception("could not dead-letter %s", record.coordinates())


class Handler(Protocol):
    """What an agent delegates to: one record at a time, and a cache to drop on rebalance."""

    async def handle(self, record: Record) -> None: ...

    def forget(self) -> None: ...


def register_agent(
    runtime: Runtime, topics: str, name: str, handler: Handler, sender: Sender
) -> None:
    """A ``concurrency=1`` agent over ``runtime.topics[topics]`` that hands each record to
    ``handler``. Nothing escapes it: a record the handler fails on is dead-lettered
    (``processing_error``) instead of being acked silently by faust. The handler's caches are
    dropped whenever partitions are assigned."""

    @runtime.app.agent(runtime.topics[topics], name=name, concurrency=1)
    async def agent(stream: Any) -> None:
        async for event in stream.events():
            record = Record.from_message(event.message)
            try:
                await handler.handle(record)
            except Exception:
                log.exception("%s: failed on %s", name, record.coordinates())
                await sender.processing_error(record)

    @runtime.app.on_partitions_assigned.connect  # type: ignore[arg-type]
    async def _forget(app: Any, assigned: Any, **_: Any) -> None:
        handler.forget()
