"""How member records are stored: byte-for-byte round trips, the outbox decoded only when used."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from smartgroups.core.record import (
    OUTBOX_APPEND_BYTES,
    OUTBOX_ENTRIES,
    Command,
    MemberRecord,
    OutboxEntry,
    Pair,
    StoredEntry,
)
from smartgroups.service.record_codec import dumps, dumps_applied, loads

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)


@given(
    profile=st.dictionaries(st.text(max_size=6), json_values, max_size=4),
    props=st.dictionaries(st.text(max_size=6), json_values, max_size=4),
    pairs=st.dictionaries(
        st.text(min_size=1, max_size=6),
        st.tuples(st.booleans(), st.integers(1, 99), st.integers(0, 2**41)),
        max_size=4,
    ),
)
def test_persistence_round_trips_byte_for_byte(
    profile: dict[str, Any], props: dict[str, Any], pairs: dict[str, Any]
) -> None:
    rec = MemberRecord()
    rec.profile = profile
    rec.properties = props
    rec.pairs = {g: Pair(*p) for g, p in pairs.items()}
    rec.static = {g: Command(True, 1) for g in pairs}
    rec.seen = {"t#0": 5}
    rec.remember(OutboxEntry("t#0", 5, 10, [{"id": "x", "v": 1}]))
    raw = dumps(rec)
    again = loads(raw)
    assert dumps(again) == raw  # the worker relies on this to spot no-op inputs
    assert again.pairs == rec.pairs and again.profile == rec.profile
    # What the state document and the outbox encode to, whichever way they are encoded.
    assert raw.partition(b"\n")[0] == orjson.dumps(rec.state_doc())


@given(
    profile=st.dictionaries(st.text(max_size=6), json_values, max_size=4),
    change=st.none() | st.tuples(st.text(max_size=6), json_values),
    seen=st.dictionaries(st.sampled_from(["t#0", "t#1"]), st.integers(0, 9), max_size=2),
)
def test_an_input_is_marked_and_encoded_once_unless_it_changed_nothing(
    profile: dict[str, Any], change: tuple[str, Any] | None, seen: dict[str, int]
) -> None:
    rec = MemberRecord()
    rec.profile = profile
    rec.seen = dict(seen)
    raw = dumps(rec)
    loaded = loads(raw)
    if change is not None:
        loaded.profile[change[0]] = change[1]
    encoded = dumps_applied(loaded, "t#1", 10, raw)
    if orjson.dumps(loaded.profile) == orjson.dumps(profile):  # the same bytes: no change
        assert encoded is None and loaded.seen == seen  # nothing changed: not even marked
        return
    assert encoded is not None and loaded.seen == {**seen, "t#1": 10}
    assert encoded == dumps(loaded)
    # With outputs the input is stored whatever: no bytes to compare with.
    again = loads(raw)
    assert dumps_applied(again, "t#1", 10, None) == dumps(again)


def test_a_loaded_outbox_is_the_one_stored_and_grows_from_it() -> None:
    rec = MemberRecord()
    rec.remember(OutboxEntry("t#0", 1, 1_000, [{"id": "a:g:m:1"}]))
    loaded = loads(dumps(rec))
    assert loaded.outbox_for("t#0", 1) == [{"id": "a:g:m:1"}]  # parsed on demand
    loaded.remember(OutboxEntry("t#0", 2, 2_000, [{"id": "a:g:m:2"}]))
    again = loads(dumps(loaded))
    assert [e.offset for e in again.outbox] == [1, 2]
    assert again.outbox_for("t#0", 2) == [{"id": "a:g:m:2"}]


def test_an_outbox_not_decoded_takes_new_entries_on_its_bytes() -> None:
    rec = MemberRecord()
    rec.remember(OutboxEntry("t#0", 1, 1_000, [{"id": "a:g:m:1"}]))
    stored = dumps(rec)
    state, _, outbox = stored.partition(b"\n")

    def refuse(_: bytes) -> Any:
        raise AssertionError("a short outbox is not decoded to take an entry")

    loaded = MemberRecord.from_docs(orjson.loads(state), outbox, refuse)
    loaded.remember(OutboxEntry("t#0", 2, 2_000, [{"id": "a:g:m:2"}]), lazy=True)
    loaded.remember(OutboxEntry("t#0", 3, 3_000, []), lazy=True)
    again = loads(dumps(loaded))
    assert [(e.offset, e.outputs) for e in again.outbox] == [
        (1, [{"id": "a:g:m:1"}]), (2, [{"id": "a:g:m:2"}]), (3, []),
    ]  # fmt: skip
    empty = MemberRecord.from_docs(orjson.loads(state), b"[]", refuse)
    empty.remember(OutboxEntry("t#0", 4, 4_000, [{"id": "x"}]), lazy=True)
    assert [e.offset for e in loads(dumps(empty)).outbox] == [4]


def test_settling_an_outbox_in_part_keeps_the_other_entries_bytes_undecoded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """At 1,000 groups most members come again while their last input's checkpoint is in
    flight: their outbox is settled in part. Only the entries' heads are read for that; the
    kept entries' outputs are written back as they were read, never decoded."""
    rec = MemberRecord()
    tricky = [{"id": "a:g:m:1", "note": "a\nline\tand a tab"}]  # escaped inside JSON
    rec.remember(OutboxEntry("t#0", 1, 1_000, tricky))
    rec.remember(OutboxEntry("t#0", 2, 2_000, [{"id": "a:g:m:2"}] * 14))
    rec.remember(OutboxEntry("r#1", 7, 2_500, [{"id": "a:h:m:1"}]))  # rerouted: kept
    rec.mark_applied("t#0", 2)
    rec.mark_applied("r#1", 7)
    raw = dumps(rec)
    lines = raw.partition(b"\n")[2].split(b"\n")
    assert len(lines) == 3 and lines[0].startswith(b'["t#0",1,1000]\t')

    loaded = loads(raw)
    decoded: list[bytes] = []
    real = StoredEntry.outputs.fget  # type: ignore[attr-defined]

    def counting(entry: StoredEntry) -> Any:
        decoded.append(entry.line)
        return real(entry)

    monkeypatch.setattr(StoredEntry, "outputs", property(counting))
    assert loaded.settle({"t#0": 2})  # the first input is durable, the second not yet
    kept = dumps(loaded)
    assert kept.partition(b"\n")[2] == lines[1] + b"\n" + lines[2]  # the very bytes
    assert decoded == []
    assert loads(kept).outbox_for("t#0", 2) == [{"id": "a:g:m:2"}] * 14
    assert loads(raw).outbox_for("t#0", 1) == tricky
    assert len(decoded) == 2  # a re-delivery decodes its own entry only


def test_an_outbox_stored_as_one_array_is_read_and_written_as_lines_once_changed() -> None:
    """Records written before the outbox lines keep working: read whole, rewritten on change."""
    rec = MemberRecord()
    rec.mark_applied("t#0", 4)
    state = orjson.dumps(rec.state_doc())
    old = state + b'\n[["t#0",3,1000,[{"id":"a"}]],["t#0",4,1001,[{"id":"b"}]]]'
    loaded = loads(old)
    assert dumps(loaded) == old  # untouched: the same bytes
    assert loaded.outbox_for("t#0", 4) == [{"id": "b"}]
    appended = loads(old)
    appended.remember(OutboxEntry("t#0", 5, 1_002, [{"id": "c"}]), lazy=True)
    settled = loads(old)
    assert settled.settle({"t#0": 4})
    for changed, offsets in ((appended, [3, 4, 5]), (settled, [4])):
        raw = dumps(changed)
        assert not raw.partition(b"\n")[2].startswith(b"[[")
        again = loads(raw)
        assert [e.offset for e in again.outbox] == offsets
        assert dumps(again) == raw
    assert loads(dumps(appended)).outbox_for("t#0", 5) == [{"id": "c"}]


def test_a_long_outbox_is_decoded_and_trimmed_when_it_takes_an_entry() -> None:
    rec = MemberRecord()
    big = [{"id": "x" * 1000}] * 8
    for offset in range(OUTBOX_ENTRIES):
        rec.remember(OutboxEntry("t#0", offset, 1_000, big))
    raw = dumps(rec)
    assert len(raw) > OUTBOX_APPEND_BYTES
    loaded = loads(raw)
    loaded.remember(OutboxEntry("t#0", 99, 2_000, []), lazy=True)
    assert len(loaded.outbox) == OUTBOX_ENTRIES and loaded.outbox[-1].offset == 99
    small = loads(dumps(MemberRecord()))  # a caller that never settles: bounds at every input
    for offset in range(OUTBOX_ENTRIES + 3):
        small = loads(dumps(small))
        small.remember(OutboxEntry("t#0", offset, 1_000, []))
    assert len(small.outbox) == OUTBOX_ENTRIES


def test_segments_round_trip_and_a_record_without_them_keeps_its_bytes() -> None:
    from smartgroups.core.segments import Segment

    plain = MemberRecord()
    plain.pairs["g"] = Pair(True, 1, 5)
    raw = dumps(plain)
    assert b'"g":{' not in raw.partition(b"\n")[0]  # no segment key until one is set
    assert dumps(loads(raw)) == raw
    plain.segments["plan"] = Segment("g", 1, 5)
    plain.segments["other"] = Segment(None, 2, 6)
    again = loads(dumps(plain))
    assert again.segments == plain.segments
    assert dumps(again) == dumps(plain)
