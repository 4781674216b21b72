"""A :class:`~smartgroups.service.ports.Table` that holds a batch's writes in memory over a
:class:`~smartgroups.worker.rocks.RocksTable` until the batch's changelog is delivered.

The member path runs in batches, in quix-streams' checkpoint order: the batch's changelog
records are produced and flushed, its offsets committed, and only then is its state written to
RocksDB. Meanwhile the service must read its own writes, scans included (a backfill scan must see
a member created earlier in the same batch). :class:`BatchTable` does both: ``put`` and
``delete`` land in an **overlay** per partition (key -> value, or a deletion marker), and
``get``, ``scan`` and ``scan_until`` answer as if the overlay were applied to the base. It passes
the same contract suite as the other tables (``tests/contract``), flushed or not.

The batch's owner then uses what the port does not have:

* :meth:`BatchTable.pending` -- a partition's changes in key order (``None``: a deletion), what
  the batch writes to its changelog;
* :meth:`BatchTable.dirty` -- the partitions with changes;
* :meth:`BatchTable.flush` -- apply a partition's changes to RocksDB in one atomic
  ``write_batch`` and forget them; :meth:`BatchTable.discard` -- forget them unapplied (the
  batch failed: the base and the view go back to the last flush).

**Pipelined checkpoints.** The member loop goes on processing while a checkpoint's changelog is
on its way: :meth:`BatchTable.seal` moves the overlay's changes to a second, *sealed* overlay
between the overlay and RocksDB (the changes whose changelog is in flight), and a fresh overlay
takes the next writes. Reads see the overlay, then the sealed changes, then RocksDB.
:meth:`BatchTable.sealed` lists the partitions with sealed changes and
:meth:`BatchTable.flush_sealed` writes one partition's to RocksDB once their changelog is
delivered. One checkpoint is in flight at a time: :meth:`~BatchTable.seal` refuses while sealed
changes remain. :meth:`~BatchTable.flush` applies both (sealed first).

Decisions where the port is silent:

* A ``delete`` always records a deletion marker, without reading RocksDB to see whether the key
  exists, so :meth:`~BatchTable.pending` may list the deletion of a key the base never held (its
  changelog tombstone is harmless). A key put then deleted in one batch is pending as a deletion.
* Each key is pending once, with its last value: a batch's changelog carries one record per key.
* A failed :meth:`~BatchTable.flush` (RocksDB refused the batch) leaves the partition's changes
  pending and the base as it was; the caller retries, discards or stops.
* :meth:`~BatchTable.close_partition` and :meth:`~BatchTable.close` drop the unflushed changes
  of what they close (a revoked partition's batch is not committed; its next owner replays it).
* Scans are exact with ``limit``: the base is read for ``limit`` pairs plus as many as the
  overlay's deletions could hide (at most ``limit`` more, doubled on each further read), and an
  overlay key beyond the last key of a truncated base read waits for the next read.
* Cost: ``get``/``put``/``delete`` are one dict operation on top of the base's (a ``get`` of a
  key in the overlay never reaches RocksDB). The overlay's keys are sorted lazily, only when a
  scan of a partition with changes needs them (new keys are appended; one sort of a sorted list
  with a short unsorted tail is near linear). A partition without changes scans RocksDB directly.
* Not thread-safe, like :class:`~smartgroups.worker.rocks.RocksTable`.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable
from typing import Protocol

from smartgroups.worker.rocks import RocksTable

Pairs = list[tuple[bytes, bytes]]


class _Overlay:
    """One partition's pending changes: values (None = deleted), their keys, lazily sorted."""

    __slots__ = ("deletions", "dropped", "keys", "sorted", "values")

    def __init__(self) -> None:
        self.values: dict[bytes, bytes | None] = {}
        self.keys: list[bytes] = []
        self.sorted = True
        self.deletions = 0  # how many values are None
        self.dropped = False  # keys left values (Layer.settle): ``keys`` is rebuilt

    def sorted_keys(self) -> list[bytes]:
        if self.dropped:
            self.keys = sorted(self.values)
            self.sorted = True
            self.dropped = False
        elif not self.sorted:
            self.keys.sort()
            self.sorted = True
        return self.keys


def _prefix_end(prefix: bytes) -> bytes | None:
    """The least key greater than every key starting with ``prefix`` (None: there is none)."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return None
    return stripped[:-1] + bytes([stripped[-1] + 1])


class Readable(Protocol):
    """What a :class:`Layer` reads through to: RocksDB, or the sealed layer over it."""

    def get(self, partition: int, key: bytes) -> bytes | None: ...

    def scan(
        self, partition: int, prefix: bytes, *, after: bytes | None = None, limit: int = 500
    ) -> Pairs: ...

    def scan_until(self, partition: int, bound: bytes, limit: int) -> Pairs: ...


class Layer:
    """One overlay of changes per partition over ``base``, read through to it: the two layers
    of :class:`BatchTable`, and the unsettled writes of the faust tables
    (:class:`~smartgroups.worker.store.PartitionTable`)."""

    def __init__(self, base: Readable) -> None:
        self.base = base
        self._overlays: dict[int, _Overlay] = {}

    # --- the port ------------------------------------------------------------------------

    def get(self, partition: int, key: bytes) -> bytes | None:
        """The value under ``key`` on ``partition``, or None."""
        overlay = self._overlays.get(partition)
        if overlay is not None:
            values = overlay.values
            if key in values:
                return values[key]
        return self.base.get(partition, key)

    def put(self, partition: int, key: bytes, value: bytes) -> None:
        """Set ``key`` on ``partition`` (in the overlay)."""
        overlay = self._overlay(partition)
        values = overlay.values
        if key not in values:
            overlay.keys.append(key)
            overlay.sorted = False
        elif values[key] is None:
            overlay.deletions -= 1
        values[key] = value

    def delete(self, partition: int, key: bytes) -> None:
        """Remove ``key`` from ``partition`` (a deletion marker in the overlay; no error when
        absent)."""
        overlay = self._overlay(partition)
        values = overlay.values
        if key not in values:
            overlay.keys.append(key)
            overlay.sorted = False
            overlay.deletions += 1
        elif values[key] is not None:
            overlay.deletions += 1
        values[key] = None

    def scan(
        self, partition: int, prefix: bytes, *, after: bytes | None = None, limit: int = 500
    ) -> Pairs:
        """Up to ``limit`` pairs of ``partition`` whose key starts with ``prefix``, in key
        order, strictly after ``after`` when given."""
        overlay = self._overlays.get(partition)
        if overlay is None or limit <= 0:
            return self.base.scan(partition, prefix, after=after, limit=limit)
        keys = overlay.sorted_keys()
        start = prefix if after is None else max(prefix, after + b"\x00")
        end = _prefix_end(prefix)
        first = bisect_left(keys, start)
        stop = len(keys) if end is None else bisect_left(keys, end)
        if first >= stop:  # no change in range
            return self.base.scan(partition, prefix, after=after, limit=limit)

        def read(cursor: bytes | None, count: int) -> tuple[Pairs, bool]:
            pairs = self.base.scan(
                partition, prefix, after=after if cursor is None else cursor, limit=count
            )
            return pairs, len(pairs) == count

        return self._merge(overlay, keys, first, stop, read, limit)

    def scan_until(self, partition: int, bound: bytes, limit: int) -> Pairs:
        """Up to ``limit`` pairs of ``partition`` from its first key, stopping before
        ``bound``."""
        overlay = self._overlays.get(partition)
        if overlay is None or limit <= 0:
            return self.base.scan_until(partition, bound, limit)
        keys = overlay.sorted_keys()
        stop = bisect_left(keys, bound)
        if not stop:  # no change in range
            return self.base.scan_until(partition, bound, limit)

        def read(cursor: bytes | None, count: int) -> tuple[Pairs, bool]:
            if cursor is None:
                pairs = self.base.scan_until(partition, bound, count)
                return pairs, len(pairs) == count
            # The port's scan_until has no ``after``: page on with a scan, cut at the bound.
            pairs = self.base.scan(partition, b"", after=cursor, limit=count)
            truncated = len(pairs) == count
            if pairs and pairs[-1][0] >= bound:
                pairs = [pair for pair in pairs if pair[0] < bound]
                truncated = False
            return pairs, truncated

        return self._merge(overlay, keys, 0, stop, read, limit)

    # --- the batch -----------------------------------------------------------------------

    def pending(self, partition: int) -> list[tuple[bytes, bytes | None]]:
        """``partition``'s changes since its last flush, in key order (None: deleted)."""
        overlay = self._overlays.get(partition)
        if overlay is None:
            return []
        values = overlay.values
        return [(key, values[key]) for key in overlay.sorted_keys()]

    def dirty(self) -> list[int]:
        """The partitions with pending changes, in order."""
        return sorted(self._overlays)

    def write_to(self, rocks: RocksTable, partition: int) -> None:
        """Apply ``partition``'s changes to ``rocks`` in one atomic ``write_batch`` and forget
        them; when RocksDB refuses the batch, nothing is applied and the changes stay."""
        overlay = self._overlays.get(partition)
        if overlay is None:
            return
        values = overlay.values
        puts = [(key, value) for key, value in values.items() if value is not None]
        deletes = [key for key, value in values.items() if value is None]
        rocks.write_batch(partition, puts, deletes)
        del self._overlays[partition]

    def discard(self, partition: int) -> None:
        """Forget ``partition``'s changes unapplied."""
        self._overlays.pop(partition, None)

    def settle(self, partition: int, key: bytes, value: bytes | None) -> None:
        """Forget ``key``'s change if it is ``value`` (None: a deletion), which the base now
        holds: the overlay no longer changes what reads see. A later change of the key stays."""
        overlay = self._overlays.get(partition)
        if overlay is None or key not in overlay.values or overlay.values[key] != value:
            return
        del overlay.values[key]
        if value is None:
            overlay.deletions -= 1
        if overlay.values:
            overlay.dropped = True
        else:
            del self._overlays[partition]

    def take(self) -> dict[int, _Overlay]:
        """Every change, handed over (this layer starts empty)."""
        overlays, self._overlays = self._overlays, {}
        return overlays

    def adopt(self, overlays: dict[int, _Overlay]) -> None:
        """Hold ``overlays`` (taken from the layer above) as this layer's changes."""
        assert not self._overlays, "a layer adopts changes only when it holds none"
        self._overlays = overlays

    # --- internals -----------------------------------------------------------------------

    def _overlay(self, partition: int) -> _Overlay:
        overlay = self._overlays.get(partition)
        if overlay is None:
            overlay = self._overlays[partition] = _Overlay()
        return overlay

    @staticmethod
    def _merge(
        overlay: _Overlay,
        keys: list[bytes],
        first: int,
        stop: int,
        read: Callable[[bytes | None, int], tuple[Pairs, bool]],
        limit: int,
    ) -> Pairs:
        """Up to ``limit`` pairs of the base's range (paged by ``read(after, count)``, which
        also says whether it was cut by ``count``) with ``keys[first:stop]`` applied over them.

        Exact: an overlay key beyond the last key of a cut base read is held for the next read,
        since base keys may lie between. Each read asks for the pairs still wanted plus room for
        the overlay's deletions to hide some (as many as the partition has, at most ``limit`` at
        first, twice as many on each further read).
        """
        values = overlay.values
        out: Pairs = []
        i = first
        cursor: bytes | None = None
        room = limit
        while True:
            want = limit - len(out)
            pairs, truncated = read(cursor, want + min(overlay.deletions, room))
            # The overlay keys this read decides: up to its last key when cut, else all.
            j = bisect_right(keys, pairs[-1][0], i, stop) if truncated else stop
            if i == j:
                out += pairs
            else:
                base_keys = [pair[0] for pair in pairs]
                lo = 0  # base pairs before lo are in out
                for key in keys[i:j]:
                    at = bisect_left(base_keys, key, lo)
                    out += pairs[lo:at]
                    if at < len(base_keys) and base_keys[at] == key:
                        at += 1  # the overlay's value replaces (or deletes) the base's
                    value = values[key]
                    if value is not None:
                        out.append((key, value))
                    lo = at
                    if len(out) >= limit:
                        break
                else:
                    out += pairs[lo:]
            if len(out) >= limit or not truncated:
                del out[limit:]
                return out
            i = j
            cursor = pairs[-1][0]
            room *= 2


class BatchTable:
    """A :class:`~smartgroups.service.ports.Table` whose writes wait in memory over ``base``
    (see the module docstring): the overlay, over the sealed changes, over RocksDB.

    ``base`` is read for what the overlays do not hold and written only by :meth:`flush` and
    :meth:`flush_sealed`.
    """

    def __init__(self, base: RocksTable) -> None:
        self.base = base
        self._sealed = Layer(base)
        self._current = Layer(self._sealed)

    # --- the port ------------------------------------------------------------------------

    def get(self, partition: int, key: bytes) -> bytes | None:
        """The value under ``key`` on ``partition``, or None."""
        return self._current.get(partition, key)

    def put(self, partition: int, key: bytes, value: bytes) -> None:
        """Set ``key`` on ``partition`` (in the overlay)."""
        self._current.put(partition, key, value)

    def delete(self, partition: int, key: bytes) -> None:
        """Remove ``key`` from ``partition`` (a deletion marker in the overlay; no error when
        absent)."""
        self._current.delete(partition, key)

    def scan(
        self, partition: int, prefix: bytes, *, after: bytes | None = None, limit: int = 500
    ) -> Pairs:
        """Up to ``limit`` pairs of ``partition`` whose key starts with ``prefix``, in key
        order, strictly after ``after`` when given."""
        return self._current.scan(partition, prefix, after=after, limit=limit)

    def scan_until(self, partition: int, bound: bytes, limit: int) -> Pairs:
        """Up to ``limit`` pairs of ``partition`` from its first key, stopping before
        ``bound``."""
        return self._current.scan_until(partition, bound, limit)

    # --- the batch -----------------------------------------------------------------------

    def pending(self, partition: int) -> list[tuple[bytes, bytes | None]]:
        """``partition``'s changes in the overlay (not sealed), in key order (None:
        deleted)."""
        return self._current.pending(partition)

    def dirty(self) -> list[int]:
        """The partitions with changes in the overlay, in order."""
        return self._current.dirty()

    def seal(self) -> None:
        """Move every change of the overlay to the sealed changes (their changelog is on its
        way); the overlay starts empty. Refused (``RuntimeError``) while sealed changes are not
        flushed: one checkpoint is in flight at a time."""
        if self._sealed.dirty():
            raise RuntimeError("the sealed changes of the last checkpoint are not flushed yet")
        self._sealed.adopt(self._current.take())

    def sealed(self) -> list[int]:
        """The partitions with sealed changes, in order."""
        return self._sealed.dirty()

    def flush_sealed(self, partition: int) -> None:
        """Apply ``partition``'s sealed changes to RocksDB in one atomic ``write_batch`` and
        forget them; when RocksDB refuses the batch, nothing is applied and they stay."""
        self._sealed.write_to(self.base, partition)

    def flush(self, partition: int) -> None:
        """Apply all of ``partition``'s changes, sealed then overlay, to RocksDB (one atomic
        ``write_batch`` each) and forget them."""
        self._sealed.write_to(self.base, partition)
        self._current.write_to(self.base, partition)

    def discard(self, partition: int) -> None:
        """Forget ``partition``'s changes, sealed or not, unapplied: it reads as RocksDB
        again."""
        self._current.discard(partition)
        self._sealed.discard(partition)

    def close_partition(self, partition: int) -> None:
        """Drop ``partition``'s unflushed changes and close its RocksDB (a revoked partition)."""
        self.discard(partition)
        self.base.close_partition(partition)

    def close(self) -> None:
        """Drop every unflushed change and close every open partition."""
        self._current.take()
        self._sealed.take()
        self.base.close()
