"""How a :class:`~smartgroups.core.record.MemberRecord` is stored: compact JSON, two parts.

``state JSON`` ``\\n`` ``outbox JSON``. The state is decoded on every input of the member; the
outbox only when it is used (a re-delivery, new outputs), and an outbox never decoded is written
back as the very bytes it was read as. :func:`dumps` of :func:`loads` is byte for byte the input,
which the worker relies on to recognise an input that changed nothing.
"""

from __future__ import annotations

import orjson

from smartgroups.core.record import MemberRecord, StoredState
from smartgroups.core.snapshot import MemberSnapshot

_EMPTY_OUTBOX = b"[]"


def dumps(record: MemberRecord) -> bytes:
    """The stored bytes of ``record``. An outbox that was not decoded is written back as it was
    read, with the entries added since spliced onto the end of its JSON array."""
    outbox = record.outbox_doc()
    if outbox is not None:
        encoded = orjson.dumps(outbox)
    else:
        encoded = record.outbox_bytes
        appended = record.appended_doc()
        if appended:
            tail = orjson.dumps(appended)
            encoded = tail if encoded == _EMPTY_OUTBOX else encoded[:-1] + b"," + tail[1:]
    return orjson.dumps(record.state_doc()) + b"\n" + encoded


def loads(raw: bytes) -> MemberRecord:
    """The record :func:`dumps` wrote (its outbox stays encoded until used)."""
    state, _, outbox = raw.partition(b"\n")
    return MemberRecord.from_docs(orjson.loads(state), outbox or _EMPTY_OUTBOX, orjson.loads)


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
