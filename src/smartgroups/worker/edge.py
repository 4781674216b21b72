"""What the agents share at the edge: sending, dead letters, and what a failure means.

* :class:`~smartgroups.service.ports.Record` is an input as the services see it (full topic
  name, partition, offset, key and value bytes), built from faust's message.
* :class:`Sender`, the services' :class:`~smartgroups.service.ports.Publisher`, sends by topic
  *role* (``changes``, ``state``, ``results``, ``fanout``, ``commands``, ``dead_letters``), and
  dead-letters a record with the contract's headers.
* :func:`register_agent` runs a handler over a stream and decides what a failure means
  (:func:`blames_record`): a failure of the record's processing dead-letters the record
  (``processing_error``) and the stream goes on; a failure of what the worker stands on (faust,
  Kafka, RocksDB, the OS) **stops the worker** without committing the record, so it is read
  again when the worker restarts. Dead-lettering those would consume every record while the
  failure lasts (issue 14: a changelog missing from faust's metadata dead-lettered every
  definition), and retrying in place would hide a worker that cannot work behind a live process.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Protocol

from aiokafka.errors import KafkaError
from faust.exceptions import FaustError

from smartgroups.service.ports import Headers, Publisher, Record
from smartgroups.wire.decode import DeadLetter, dead_letter_headers
from smartgroups.worker.runtime import Runtime

log = logging.getLogger("smartgroups.edge")


class Sender:
    """Sends outputs through the app's producer, flushed by faust before offsets commit.

    Records go to the producer driver directly
    (:meth:`~smartgroups.worker.runtime.Runtime.send_raw`), not through faust's ``Topic.send``:
    the bytes are final already, and faust's channel layer (codecs, future
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

    async def send(
        self,
        role: str,
        key: bytes | None,
        value: bytes | None,
        partition: int | None = None,
        headers: Headers | None = None,
    ) -> None:
        # The changelog records of the tables' writes so far are handed to the producer before
        # the outputs those writes led to: a changelog record the producer refuses stops the
        # worker before the record's outputs leave (the record is left unacked).
        await self.rt.flush_changelog()
        delivery: asyncio.Future[Any] = await self.rt.send_raw(
            self._name(role), key, value, partition, headers
        )
        delivery.add_done_callback(self._delivered)

    def _delivered(self, delivery: Any) -> None:
        if delivery.cancelled() or delivery.exception() is None:
            return
        self.rt.stats["outputs.failed"] += 1
        log.error("output not delivered: %r", delivery.exception())

    async def dead_letter(self, record: Record, letter: DeadLetter) -> None:
        """Send ``record``'s original bytes to ``dead-letters`` with the contract's headers."""
        await send_dead_letter(self, self.rt, record, letter)

    async def processing_error(self, record: Record) -> None:
        """Dead-letter a record whose processing failed in our code (never lost, never acked
        silently); ``error.code`` is ``processing_error``. Raises if it cannot be sent: the
        caller then stops the worker rather than lose the record."""
        await self.dead_letter(
            record, DeadLetter("processing_error", "the processor failed on this record")
        )


async def send_dead_letter(
    publisher: Publisher, runtime: Runtime, record: Record, letter: DeadLetter
) -> None:
    """Send ``record``'s original key and bytes to ``dead-letters`` with the contract's headers
    (``error.*``, ``source.*``), count it by code (and source topic, in the metrics) and log its
    coordinates (never its value)."""
    headers = dead_letter_headers(letter, record.topic, record.partition, record.offset)
    await publisher.send("dead_letters", record.key, record.value, headers=headers)
    runtime.stats[f"dead_letters.{letter.code}"] += 1
    runtime.metrics.dead_letter(record.topic, letter.code)
    log.warning(
        "dead-lettered %s: %s (%s)",
        record.coordinates(),
        letter.code,
        letter.message,
        extra=record_extra(record),
    )


def record_extra(record: Record) -> dict[str, Any]:
    """A log call's ``extra=`` naming ``record``'s coordinates (fields of a JSON log line)."""
    return {"topic": record.topic, "partition": record.partition, "offset": record.offset}


class Handler(Protocol):
    """What an agent delegates to: one record at a time, and a cache to drop on rebalance."""

    async def handle(self, record: Record) -> None: ...

    def forget(self) -> None: ...


_INFRASTRUCTURE = (OSError, MemoryError, KafkaError, FaustError)
"""Failures that are never a record's doing, wherever they are raised."""

_INFRASTRUCTURE_CODE = (
    "faust",
    "mode",
    "aiokafka",
    "rocksdict",
    "smartgroups.worker.store",
    "smartgroups.worker.rocks",
)
"""Modules whose frames in a traceback mean the failure happened in what the worker stands on
(the table adapters stand for RocksDB, whose binding raises plain ``Exception``)."""


def blames_record(exc: BaseException) -> bool:
    """True when ``exc`` is the processed record's doing, so dead-lettering it is right.

    That is an exception raised while smartgroups' own code (the core, the decoders, the
    handlers, or the standard library they call) worked on the record: a bug the record
    triggers, which the next record need not trigger. It is not the record's doing when it is
    an instance of :data:`_INFRASTRUCTURE` or when any frame of its traceback is in
    :data:`_INFRASTRUCTURE_CODE` (faust, mode, aiokafka, RocksDB): the worker cannot process
    right now, whatever the record.
    """
    if isinstance(exc, _INFRASTRUCTURE):
        return False
    tb = exc.__traceback__
    while tb is not None:
        module = str(tb.tb_frame.f_globals.get("__name__", ""))
        if any(module == m or module.startswith(m + ".") for m in _INFRASTRUCTURE_CODE):
            return False
        tb = tb.tb_next
    return True


async def halt(runtime: Runtime, name: str, event: Any, record: Record, exc: BaseException) -> None:
    """Stop the worker because ``record`` could not be processed for a reason not its own.

    The record's message is never acked (an extra reference is taken), so its offset is not
    committed and the record is read again when the worker restarts; outputs already sent for
    it are re-sent or recognised then (deterministic ids, per-pair versions). ``/v1/health``
    reports the failure until the process exits (with a non-zero status).
    """
    event.message.incref()
    detail = " ".join(str(exc).split()).rstrip(".")  # faust's messages span lines
    runtime.failure = f"{name} could not process {record.coordinates()}: {type(exc).__name__}"
    runtime.failure += f": {detail}" if detail else ""
    log.critical(
        "stopping the worker: %s. This is not the record's fault, so it is not dead-lettered: "
        "its offset is not committed and it is processed when the worker starts again.",
        runtime.failure,
    )
    runtime.exit_within()
    await runtime.app.crash(exc)  # faust logs the traceback ("Crashed reason=...")


def register_agent(
    runtime: Runtime,
    topics: str,
    name: str,
    handler: Handler,
    sender: Sender,
    counted: Callable[[str], None],
) -> None:
    """A ``concurrency=1`` agent over ``runtime.topics[topics]`` that hands each record to
    ``handler``, hands the changelog records of the tables it wrote to the producer
    (:meth:`~smartgroups.worker.runtime.Runtime.flush_changelog`: before faust may commit the
    record's offset), then calls ``counted`` with the record's topic (the metrics' input
    outcomes).
    Nothing escapes it: a record the handler fails on is dead-lettered
    (``processing_error``) when the failure is the record's (:func:`blames_record`); otherwise,
    or when the dead letter cannot be sent, the worker stops (:func:`halt`) and nothing more is
    processed. The handler's caches are dropped whenever partitions are assigned."""

    @runtime.app.agent(runtime.topics[topics], name=name, concurrency=1)
    async def agent(stream: Any) -> None:
        async for event in stream.events():
            if runtime.failure is not None:
                event.message.incref()  # another agent stopped the worker: leave it unread
                return
            record = Record.from_message(event.message)
            try:
                await handler.handle(record)
                await runtime.flush_changelog()
            except Exception as exc:
                if not blames_record(exc):
                    await halt(runtime, name, event, record, exc)
                    return
                log.exception(
                    "%s: failed on %s", name, record.coordinates(), extra=record_extra(record)
                )
                try:  # the dead letter is sent after the changelog of the writes made so far
                    await sender.processing_error(record)
                except Exception as failure:
                    await halt(runtime, name, event, record, failure)
                    return
            counted(event.message.topic)

    @runtime.app.on_partitions_assigned.connect  # type: ignore[arg-type]
    async def _forget(app: Any, assigned: Any, **_: Any) -> None:
        handler.forget()
