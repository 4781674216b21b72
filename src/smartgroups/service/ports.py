"""The ports the services talk to, and the one input record type.

Every state operation names its **partition**: a member's record, its space's group copies and
the due index live on the partition of the member's key, and a group copy exists once per
partition under the same key. The faust adapter (:mod:`smartgroups.worker.store`) and the
member loop's RocksDB tables (:mod:`smartgroups.worker.rocks`) keep one RocksDB per partition;
:class:`~smartgroups.service.memory.MemoryTable` keeps one sorted map per partition. The
contract tests hold the in-memory and RocksDB tables to the same answers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from smartgroups.wire.deadletter import DeadLetter

Clock = Callable[[], datetime]
"""Now, as an aware UTC ``datetime``."""

Headers = list[tuple[str, bytes]]


def source_name(topic: str, partition: int) -> str:
    """``topic#partition``: the input source whose offsets a member record counts."""
    return f"{topic}#{partition}"


@dataclass(frozen=True, slots=True)
class Record:
    """One input record at its original coordinates (full topic name, partition, offset)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    rerouted: bool = False

    @classmethod
    def from_message(cls, message: Any) -> Record:
        """From anything with Kafka's ``topic``/``partition``/``offset``/``key``/``value``."""
        return cls(message.topic, message.partition, message.offset, message.key, message.value)

    def coordinates(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}"

    @property
    def source(self) -> str:
        """``topic#partition``: where offsets of this record's stream are counted."""
        return source_name(self.topic, self.partition)


class Table(Protocol):
    """A partitioned key-value store of bytes, ordered by key within a partition."""

    def get(self, partition: int, key: bytes) -> bytes | None:
        """The value under ``key`` on ``partition``, or None."""

    def put(self, partition: int, key: bytes, value: bytes) -> None:
        """Set ``key`` on ``partition``."""

    def delete(self, partition: int, key: bytes) -> None:
        """Remove ``key`` from ``partition`` (no error when absent)."""

    def scan(
        self, partition: int, prefix: bytes, *, after: bytes | None = None, limit: int = 500
    ) -> list[tuple[bytes, bytes]]:
        """Up to ``limit`` pairs of ``partition`` whose key starts with ``prefix``, in key
        order, strictly after ``after`` when given."""

    def scan_until(self, partition: int, bound: bytes, limit: int) -> list[tuple[bytes, bytes]]:
        """Up to ``limit`` pairs of ``partition`` from its first key, stopping before
        ``bound``."""


class Publisher(Protocol):
    """Sends output records by topic *role* (``changes``, ``state``, ``results``, ``fanout``,
    ``commands``, ``dead_letters``); delivery is the adapter's business (flushed and checked
    before offsets commit)."""

    async def send(
        self,
        role: str,
        key: bytes | None,
        value: bytes | None,
        partition: int | None = None,
        headers: Headers | None = None,
    ) -> None:
        """Send one record (``partition`` None: the key's partition)."""

    async def dead_letter(self, record: Record, letter: DeadLetter) -> None:
        """Send ``record``'s original key and bytes to ``dead-letters`` with ``letter``'s
        headers."""


class TopicNames(Protocol):
    """The topic names a service must recognise (the worker's topology)."""

    @property
    def fanout(self) -> str: ...

    @property
    def commands(self) -> str: ...

    @property
    def partitions(self) -> int: ...

    def logical(self, topic: str) -> str:
        """The contract name of a full topic name (prefix removed)."""
