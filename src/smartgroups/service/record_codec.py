"""How a :class:`~smartgroups.core.record.MemberRecord` is stored: compact JSON, in lines.

``state JSON`` ``\\n`` ``outbox``. The state is decoded on every input of the member. The
outbox is ``[]`` when empty, else one line per entry, ``["source",offset,at_ms]`` ``\\t``
``outputs JSON`` (orjson writes neither a newline nor a tab inside JSON). It is read only when
used (a re-delivery, new outputs, a settle that keeps entries), and then only the entries'
heads: an entry's outputs are decoded when its input is re-delivered, and otherwise written
back as the very bytes they were read as (:class:`~smartgroups.core.record.StoredEntry`).
:func:`dumps` of :func:`loads` is byte for byte the input, which the worker relies on to
recognise an input that changed nothing.

An outbox stored before the lines (one JSON array of ``[source, offset, at_ms, outputs]``
entries, ``[[…]]``) is read whole, and written as lines the next time it changes.
"""

from __future__ import annotations

from collections.abc import Iterable

import orjson

from smartgroups.core.record import Entry, MemberRecord, OutboxEntry, StoredEntry, StoredState
from smartgroups.core.snapshot import MemberSnapshot

_EMPTY_OUTBOX = b"[]"
_ARRAY_OUTBOX = b"[["
"""How an outbox stored as one JSON array (before the lines) begins."""


def _line(entry: Entry) -> bytes:
    if isinstance(entry, StoredEntry):
        return entry.line
    head = orjson.dumps([entry.source, entry.offset, entry.at_ms])
    return head + b"\t" + orjson.dumps(entry.outputs)


def _lines(entries: Iterable[Entry]) -> bytes:
    return b"\n".join(map(_line, entries)) or _EMPTY_OUTBOX


def _read_outbox(raw: bytes) -> list[Entry]:
    """The entries of stored outbox bytes, their outputs left encoded."""
    if raw == _EMPTY_OUTBOX:
        return []
    if raw.startswith(_ARRAY_OUTBOX):
        return [OutboxEntry(e[0], int(e[1]), int(e[2]), e[3]) for e in orjson.loads(raw)]
    entries: list[Entry] = []
    for line in raw.split(b"\n"):
        cut = line.index(b"\t")
        source, offset, at_ms = orjson.loads(line[:cut])
        entries.append(StoredEntry(source, offset, at_ms, line, cut + 1, orjson.loads))
    return entries


def dumps(record: MemberRecord) -> bytes:
    """The stored bytes of ``record``. An outbox that was not read is written back as it was,
    followed by the lines of the entries added since."""
    head, tail = _parts(record)
    return _join(head, record, tail)


def dumps_applied(
    record: MemberRecord, source: str, offset: int, raw: bytes | None
) -> bytes | None:
    """Mark input (``source``, ``offset``) applied to ``record`` and return its stored bytes;
    or, when without the mark they would be ``raw`` (the input changed nothing: a profile
    update with the values the member has), leave it unmarked and return None.

    The same as comparing :func:`dumps` with ``raw``, marking, and calling :func:`dumps` again,
    with the state and the outbox encoded once: only ``seen`` is encoded twice (most inputs
    without outputs change something, and encoding those records twice was 4 % of the member
    service's CPU at 10 groups).
    """
    head, tail = _parts(record)
    if raw is not None and _join(head, record, tail) == raw:
        return None
    record.mark_applied(source, offset)
    return _join(head, record, tail)


def _parts(record: MemberRecord) -> tuple[bytes, bytes]:
    """The stored bytes around ``seen``: ``{…state head`` and ``…state tail}\noutbox``."""
    entries = record.outbox_entries()
    if entries is not None:
        encoded = _lines(entries)
    else:
        encoded = record.outbox_bytes
        appended = record.appended()
        if appended:
            if encoded == _EMPTY_OUTBOX:
                encoded = _lines(appended)
            elif encoded.startswith(_ARRAY_OUTBOX):
                encoded = _lines(record.outbox)  # read whole, written as lines from now on
            else:
                encoded += b"\n" + _lines(appended)
    head = orjson.dumps(record.state_head())[:-1]
    tail = orjson.dumps(record.state_tail())[1:]
    return head, tail + b"\n" + encoded


def _join(head: bytes, record: MemberRecord, tail: bytes) -> bytes:
    """What ``orjson.dumps(record.state_doc())`` and the outbox make: the head's keys, ``seen``
    as the record holds it now, the tail's keys (neither half is ever empty)."""
    return head + b',"n":' + orjson.dumps(record.seen) + b"," + tail


def loads(raw: bytes) -> MemberRecord:
    """The record :func:`dumps` wrote (its outbox stays encoded until used)."""
    state, _, outbox = raw.partition(b"\n")
    return MemberRecord.from_docs(orjson.loads(state), outbox or _EMPTY_OUTBOX, _read_outbox)


def stored_state(raw: bytes) -> StoredState:
    """The state of a stored record, read without building the record (a backfill's first look
    at each member)."""
    return StoredState(orjson.loads(raw.partition(b"\n")[0]))


def snapshot(raw: bytes) -> MemberSnapshot | None:
    """The condition view of a stored record when its status is eligible, else None, without
    building the record (the live preview reads every member of a space this way)."""
    state = stored_state(raw)
    return state.snapshot() if state.eligible else None


def segment_view(raw: bytes, set_id: str) -> tuple[dict[str, object], list[object] | None] | None:
    """A stored member's profile and its segment in ``set_id`` (``[group id or None, version,
    since_ms]``, None when it was always the fallback), without building the record; None when
    the member does not exist (see :func:`~smartgroups.core.explain.member_exists`). The segment
    set listing reads members this way."""
    state = orjson.loads(raw.partition(b"\n")[0])
    profile = state["p"]
    if not (profile or state["v"] or state["a"] or any(p[0] for p in state["m"].values())):
        return None
    segment = state.get("g", {}).get(set_id)
    return profile, segment
