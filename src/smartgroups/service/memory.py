"""In-memory twins of the ports: the services run on them in tests, with no Kafka or RocksDB.

:class:`MemoryTable` keeps one sorted map per partition and passes the same contract tests as
the RocksDB table (``tests/contract``). :class:`MemoryPublisher` records what was sent, in order.
:class:`ManualClock` is a clock a test moves by hand.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from smartgroups.service.ports import Headers, Record
from smartgroups.wire.deadletter import DeadLetter, dead_letter_headers


class MemoryTable:
    """A :class:`~smartgroups.service.ports.Table` in dicts, with sorted keys per partition."""

    def __init__(self) -> None:
        self._values: dict[int, dict[bytes, bytes]] = {}
        self._keys: dict[int, list[bytes]] = {}

    def get(self, partition: int, key: bytes) -> bytes | None:
        return self._values.get(partition, {}).get(key)

    def put(self, partition: int, key: bytes, value: bytes) -> None:
        values = self._values.setdefault(partition, {})
        if key not in values:
            bisect.insort(self._keys.setdefault(partition, []), key)
        values[key] = value

    def delete(self, partition: int, key: bytes) -> None:
        values = self._values.get(partition, {})
        if values.pop(key, None) is not None:
            keys = self._keys[partition]
            del keys[bisect.bisect_left(keys, key)]

    def scan(
        self, partition: int, prefix: bytes, *, after: bytes | None = None, limit: int = 500
    ) -> list[tuple[bytes, bytes]]:
        keys = self._keys.get(partition, [])
        start = bisect.bisect_right(keys, after) if after is not None else 0
        start = max(start, bisect.bisect_left(keys, prefix))
        values = self._values.get(partition, {})
        chunk: list[tuple[bytes, bytes]] = []
        for key in keys[start:]:
            if not key.startswith(prefix) or len(chunk) >= limit:
                break
            chunk.append((key, values[key]))
        return chunk

    def scan_until(self, partition: int, bound: bytes, limit: int) -> list[tuple[bytes, bytes]]:
        keys = self._keys.get(partition, [])
        values = self._values.get(partition, {})
        end = bisect.bisect_left(keys, bound)
        return [(key, values[key]) for key in keys[: max(0, min(end, limit))]]


@dataclass(frozen=True, slots=True)
class Sent:
    """One record a :class:`MemoryPublisher` was asked to send."""

    role: str
    key: bytes | None
    value: bytes | None
    partition: int | None
    headers: Headers | None = None


@dataclass(slots=True)
class MemoryPublisher:
    """A :class:`~smartgroups.service.ports.Publisher` that keeps every record, in order."""

    sent: list[Sent] = field(default_factory=list)

    async def send(
        self,
        role: str,
        key: bytes | None,
        value: bytes | None,
        partition: int | None = None,
        headers: Headers | None = None,
    ) -> None:
        self.sent.append(Sent(role, key, value, partition, headers))

    async def dead_letter(self, record: Record, letter: DeadLetter) -> None:
        headers = dead_letter_headers(letter, record.topic, record.partition, record.offset)
        await self.send("dead_letters", record.key, record.value, headers=headers)

    def take(self, role: str | None = None) -> list[Sent]:
        """The records sent so far (of ``role`` only, when given), forgetting all of them."""
        taken = [s for s in self.sent if role is None or s.role == role]
        self.sent.clear()
        return taken


@dataclass(slots=True)
class ManualClock:
    """A clock that stands still until a test moves it."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta
