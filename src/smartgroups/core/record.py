"""The state the processor keeps for one member of one space, and how member inputs change it.

A :class:`MemberRecord` holds everything needed to decide the member's memberships without
looking anywhere else: the profile, custom property values, form answers, static-membership and
blacklist commands (each with the ``seq`` of the definition command that set it), and one
:class:`Pair` per group the member was ever in (membership flag, transition ``version``, since).

``dues`` maps each field that time-relative triggers read to the instant (epoch microseconds)
at which the first of them changes for the member's value: until then, time alone changes
nothing for the member. A field has none when no such change is to come, or while every group
reading it that way is settled for the member whatever the time (see
``membership._ensure_dues``).

It also holds the bookkeeping that makes at-least-once delivery exact:

* ``seen`` — per input source (``topic#partition``) the highest offset applied. An input at or
  below it is a re-delivery: nothing is recomputed.
* ``outbox`` — the output events of the member's most recent inputs (at most
  :data:`OUTBOX_ENTRIES` once trimmed, see :meth:`MemberRecord.remember`), so a re-delivered
  input re-sends identical outputs (same ids) in case they never reached the broker before a
  crash. A caller that knows which inputs are durably committed drops the entries of those
  (:meth:`MemberRecord.settle`): they cannot come again.

``segments`` holds the member's segment in each segment set it ever left the fallback of
(:mod:`smartgroups.core.segments`), with the set's change counter.

Erasure (``member.deleted``) forgets everything personal; only numbers survive: the per-group
(and per-segment-set) transition counters, so the ids of a later member with the same id never
collide with the erased member's ones, and ``command_seq``, the highest definition command
applied to the member, so a late duplicate of an old command cannot bring an erased membership
back.

A record converts to and from a JSON-ready state document and its outbox entries
(:meth:`MemberRecord.state_doc`, :meth:`MemberRecord.outbox_entries`,
:meth:`MemberRecord.from_docs`); the bytes are the store adapter's business
(:mod:`smartgroups.service.record_codec`), so the core imports no codec. The outbox is read
only when it is used (re-delivery, new outputs, a settle that keeps entries) and otherwise
carried as the stored bytes; read, its entries keep their outputs encoded until a re-delivery
needs them (:class:`StoredEntry`): a member that just joined a hundred groups does not pay for
decoding those hundred outputs on each of its next inputs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from smartgroups.core.fields import is_eligible
from smartgroups.core.segments import Segment
from smartgroups.core.snapshot import MemberSnapshot

OutboxDecoder = Callable[[bytes], "list[Entry]"]
"""Reads stored outbox bytes into its entries (the store adapter's business: a
:class:`StoredEntry` per stored entry, its outputs left encoded)."""

OUTBOX_ENTRIES = 16
"""Inputs whose outputs a record remembers for re-sending after a crash (the newest kept)."""

OUTBOX_MAX_AGE_MS = 15 * 60 * 1000
"""Outbox entries older than this are dropped: their offsets are long committed."""

OUTBOX_APPEND_BYTES = 64 * 1024
"""A stored outbox shorter than this takes new entries without being decoded (they are
appended to its bytes when the record is stored); a longer one is decoded and trimmed to the
count and age bounds first."""


@dataclass(slots=True, frozen=True)
class Pair:
    """Membership of the member in one group: ``member`` flag, ``version`` and ``since`` (ms)."""

    member: bool
    version: int
    since_ms: int


class Pairs:
    """A member's :class:`Pair` per group, kept as stored: group id -> ``[member, version,
    since_ms]``, in the order the groups were first joined.

    A record is decoded and encoded at every input of its member, and a member of a space of
    1,000 groups has a pair for each of the hundred or so it was ever in: building a
    :class:`Pair` per group on every load, and a list per group again to store it, was 9 % of
    the worker's CPU at 1,000 groups (py-spy, ``make bench``'s drain). So the stored lists are
    kept as they are (:meth:`doc` is what is stored), and a :class:`Pair` is built for the
    group a caller asks about. Pairs are values: change one by setting it again.
    """

    __slots__ = ("_raw",)

    def __init__(self, raw: dict[str, list[Any]] | None = None) -> None:
        self._raw: dict[str, list[Any]] = {} if raw is None else raw

    @classmethod
    def of(cls, pairs: Mapping[str, Pair]) -> Pairs:
        """The pairs of a mapping of group id to :class:`Pair`."""
        return cls({g: [p.member, p.version, p.since_ms] for g, p in pairs.items()})

    def get(self, group_id: str) -> Pair | None:
        raw = self._raw.get(group_id)
        return None if raw is None else Pair(raw[0], raw[1], raw[2])

    def __getitem__(self, group_id: str) -> Pair:
        raw = self._raw[group_id]
        return Pair(raw[0], raw[1], raw[2])

    def __setitem__(self, group_id: str, pair: Pair) -> None:
        self._raw[group_id] = [pair.member, pair.version, pair.since_ms]

    def pop(self, group_id: str, default: Pair | None = None) -> Pair | None:
        raw = self._raw.pop(group_id, None)
        return default if raw is None else Pair(raw[0], raw[1], raw[2])

    def __contains__(self, group_id: object) -> bool:
        return group_id in self._raw

    def __len__(self) -> int:
        return len(self._raw)

    def __iter__(self) -> Iterator[str]:
        return iter(self._raw)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Pairs) and self._raw == other._raw

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"Pairs({dict(self.items())!r})"

    def items(self) -> Iterator[tuple[str, Pair]]:
        for group_id, raw in self._raw.items():
            yield group_id, Pair(raw[0], raw[1], raw[2])

    def values(self) -> Iterator[Pair]:
        for raw in self._raw.values():
            yield Pair(raw[0], raw[1], raw[2])

    def is_member(self, group_id: str) -> bool:
        """Whether the member is in ``group_id`` now."""
        raw = self._raw.get(group_id)
        return raw is not None and bool(raw[0])

    def member_of(self) -> list[str]:
        """The ids of the groups the member is in now, in the pairs' order."""
        return [group_id for group_id, raw in self._raw.items() if raw[0]]

    def doc(self) -> dict[str, list[Any]]:
        """The stored form (the record's state document holds it as it is)."""
        return self._raw


@dataclass(slots=True)
class Command:
    """The last static-membership or blacklist command for a (group, member) pair."""

    on: bool
    seq: int


@dataclass(slots=True)
class OutboxEntry:
    """Outputs produced by one input (``source``, ``offset``), kept for re-sending."""

    source: str
    offset: int
    at_ms: int
    outputs: list[dict[str, Any]]


@dataclass(slots=True)
class StoredEntry:
    """An outbox entry as read from the store: its input and instant decoded, its outputs
    left as the stored bytes (``line[start:]``) until they are used, a re-delivery of that
    input; it is written back as the very ``line`` it was read as. Settling and trimming an
    outbox read only the entries' inputs and instants: at 1,000 groups an entry holds some 14
    transitions, and decoding whole outboxes to drop their settled entries was 13 to 19 % of
    the worker's time."""

    source: str
    offset: int
    at_ms: int
    line: bytes
    start: int
    decode: Callable[[bytes], Any]

    @property
    def outputs(self) -> list[dict[str, Any]]:
        """The outputs, decoded from the stored bytes at each access (a fresh list: changing
        it changes nothing stored)."""
        outputs: list[dict[str, Any]] = self.decode(self.line[self.start :])
        return outputs


Entry = OutboxEntry | StoredEntry
"""An outbox entry: made by this process, or read from the store."""


class MemberRecord:
    """Mutable state of one member; see the module docstring for the meaning of each part."""

    __slots__ = (
        "_appended",
        "_decode_outbox",
        "_outbox",
        "_outbox_raw",
        "_pairs",
        "answers",
        "blacklist",
        "command_seq",
        "dues",
        "profile",
        "properties",
        "seen",
        "segments",
        "static",
    )

    def __init__(self) -> None:
        self.profile: dict[str, Any] = {}
        self.properties: dict[str, Any] = {}
        self.answers: dict[str, Any] = {}
        self.static: dict[str, Command] = {}
        self.blacklist: dict[str, Command] = {}
        self._pairs = Pairs()
        self.seen: dict[str, int] = {}
        self._outbox: list[Entry] | None = []
        self._outbox_raw = b"[]"
        self._decode_outbox: OutboxDecoder | None = None
        self._appended: list[OutboxEntry] = []
        self.dues: dict[str, int] = {}
        self.command_seq = 0
        self.segments: dict[str, Segment] = {}  # set id -> segment (contract section 9)

    # -- derived views -------------------------------------------------------------------------
    @property
    def pairs(self) -> Pairs:
        """The member's pair per group it was ever in (see :class:`Pairs`)."""
        return self._pairs

    @pairs.setter
    def pairs(self, pairs: Pairs | Mapping[str, Pair]) -> None:
        self._pairs = pairs if isinstance(pairs, Pairs) else Pairs.of(pairs)

    @property
    def outbox(self) -> list[Entry]:
        """The remembered outputs, oldest first (read on first use; each entry's outputs only
        when used, see :class:`StoredEntry`)."""
        if self._outbox is None:
            assert self._decode_outbox is not None, "from_docs keeps the decoder with the bytes"
            self._outbox = self._decode_outbox(self._outbox_raw) + self._appended
            self._appended = []
        return self._outbox

    @outbox.setter
    def outbox(self, entries: list[Entry]) -> None:
        self._outbox = entries
        self._appended = []

    @property
    def eligible(self) -> bool:
        """Whether the profile status lets the member count for smart groups."""
        return is_eligible(self.profile)

    def groups(self) -> frozenset[str]:
        """The ids of the groups the member is in now (static and smart)."""
        return frozenset(self._pairs.member_of())

    def is_member(self, group_id: str) -> bool:
        return self._pairs.is_member(group_id)

    def next_due_ms(self) -> int | None:
        """The earliest due instant, in epoch ms rounded up (never early), if any."""
        return -(-min(self.dues.values()) // 1000) if self.dues else None

    def value(self, field: str) -> Any:
        """The value of a condition field (``profile.x``, ``property.x``, ``answer.x``) or None."""
        return field_value(self.profile, self.properties, self.answers, field)

    # -- inputs --------------------------------------------------------------------------------
    def patch_profile(self, patch: Mapping[str, Any]) -> set[str]:
        """Apply a partial profile update (``None`` clears); return the changed field names."""
        changed: set[str] = set()
        for name, value in patch.items():
            if value is None:
                if self.profile.pop(name, None) is not None:
                    changed.add(f"profile.{name}")
            elif self.profile.get(name) != value:
                self.profile[name] = value
                changed.add(f"profile.{name}")
        return changed

    def set_value(self, kind: str, key: str, value: Any) -> set[str]:
        """Set (``None``: unset) a property or answer; ``kind`` is ``property`` or ``answer``."""
        values = self.properties if kind == "property" else self.answers
        if value is None:
            if values.pop(key, None) is None:
                return set()
        elif values.get(key) == value and type(values.get(key)) is type(value):
            return set()
        else:
            values[key] = value
        return {f"{kind}.{key}"}

    def erase(self) -> None:
        """Forget everything personal; keep only transition counters (see module docstring)."""
        self.profile.clear()
        self.properties.clear()
        self.answers.clear()
        self.static.clear()
        self.blacklist.clear()
        self.dues.clear()

    # -- delivery bookkeeping ------------------------------------------------------------------
    def already_applied(self, source: str, offset: int) -> bool:
        """True when input ``offset`` of ``source`` (or a later one) was applied before."""
        return self.seen.get(source, -1) >= offset

    def mark_applied(self, source: str, offset: int) -> None:
        self.seen[source] = offset

    def remember(self, entry: OutboxEntry, *, lazy: bool = False) -> None:
        """Keep ``entry``'s outputs for re-sending, dropping the oldest and stale entries.

        ``lazy``: the caller settles this record's outbox (:meth:`settle`), which drops its
        entries as their inputs become durable. Then a stored outbox that was not decoded, and
        is short (:data:`OUTBOX_APPEND_BYTES`, at most :data:`OUTBOX_ENTRIES` entries added),
        takes the entry without being decoded (:meth:`appended`), and is trimmed to the
        count and age bounds when it is next decoded: a member whose last input is not
        committed yet when its next one comes does not pay for decoding and encoding the
        outputs of the last one. A caller that never settles keeps the bounds at every input.
        """
        if (
            lazy
            and self._outbox is None
            and len(self._outbox_raw) < OUTBOX_APPEND_BYTES
            and len(self._appended) < OUTBOX_ENTRIES
        ):
            self._appended.append(entry)
            return
        horizon = entry.at_ms - OUTBOX_MAX_AGE_MS
        kept = [e for e in self.outbox if e.at_ms >= horizon]
        kept.append(entry)
        self.outbox = kept[-OUTBOX_ENTRIES:]

    def settle(self, settled: Mapping[str, int]) -> bool:
        """Drop the outbox entries of inputs that can no longer be re-delivered: an entry of
        ``source`` whose offset is below ``settled[source]`` (the first offset of that source
        not yet durably committed by the caller). Return whether any was dropped.

        Only the caller knows what is durable (the batch member loop after its checkpoint
        commits); sources it does not name keep their entries, within the age and count bounds
        of :meth:`remember`. The outbox is not decoded when it is empty, nor when every input the
        record applied is settled (each entry's input is at or below ``seen`` of its source):
        then every entry goes (the common case: a member's last input is long committed when
        its next one comes, and decoding the outbox was a tenth of the worker's time at 1,000
        groups).
        """
        if self._outbox is None and not self._appended:
            if self._outbox_raw == b"[]":
                return False
            if all(offset < settled.get(source, -1) for source, offset in self.seen.items()):
                self._outbox = []
                return True
        entries = self.outbox
        kept = [e for e in entries if e.offset >= settled.get(e.source, -1)]
        if len(kept) == len(entries):
            return False
        self._outbox = kept
        return True

    def outbox_for(self, source: str, offset: int) -> list[dict[str, Any]] | None:
        """Outputs that input (``source``, ``offset``) produced, if still remembered."""
        for entry in self.outbox:
            if entry.source == source and entry.offset == offset:
                return entry.outputs
        return None

    # -- persistence ---------------------------------------------------------------------------
    def state_doc(self) -> dict[str, Any]:
        """Everything but the outbox, as a JSON-ready document (short keys: it is stored per
        member): :meth:`state_head`, then ``"n"`` (``seen``), then :meth:`state_tail`."""
        return {**self.state_head(), "n": self.seen, **self.state_tail()}

    def state_head(self) -> dict[str, Any]:
        """The state document's keys before ``seen`` (``"n"``): the profile, values,
        commands and pairs. Encoded apart, so an input's bytes are encoded once whether or not
        it changed anything (:func:`~smartgroups.service.record_codec.dumps_applied`)."""
        return {
            "p": self.profile,
            "v": self.properties,
            "a": self.answers,
            "s": {g: [c.on, c.seq] for g, c in self.static.items()},
            "b": {g: [c.on, c.seq] for g, c in self.blacklist.items()},
            "m": self._pairs.doc(),
        }

    def state_tail(self) -> dict[str, Any]:
        """The state document's keys after ``seen``: due instants, the command counter and
        (only when the member ever left a set's fallback: records stay byte for byte)
        segments."""
        tail: dict[str, Any] = {"d": self.dues, "c": self.command_seq}
        if self.segments:
            tail["g"] = {k: [g.segment, g.version, g.since_ms] for k, g in self.segments.items()}
        return tail

    def outbox_entries(self) -> list[Entry] | None:
        """The outbox's entries, or None when it was never read: then :attr:`outbox_bytes`
        are the stored bytes, to be written back as they are followed by the entries of
        :meth:`appended`."""
        return self._outbox

    def appended(self) -> list[OutboxEntry]:
        """The entries added to an outbox that was not read, oldest first: they follow the
        entries of :attr:`outbox_bytes`."""
        return self._appended

    @property
    def outbox_bytes(self) -> bytes:
        """The outbox bytes the record was loaded with (meaningful while
        :meth:`outbox_entries` is None)."""
        return self._outbox_raw

    @classmethod
    def from_docs(
        cls, doc: Mapping[str, Any], outbox: bytes, decode_outbox: OutboxDecoder
    ) -> MemberRecord:
        """The record whose :meth:`state_doc` was ``doc``; ``outbox`` stays encoded until used,
        then ``decode_outbox`` reads its entries.

        The document's numbers are taken as stored (:meth:`state_doc` wrote ints), and its
        dicts are the record's own: a record is loaded at every input of its member, and
        copying ``seen`` and ``dues`` with ``int()`` on each value, then filling a fresh record
        only to overwrite it, was a tenth of the member service's CPU at 10 groups (py-spy).
        """
        record = cls.__new__(cls)
        record._outbox = None
        record._outbox_raw = outbox
        record._decode_outbox = decode_outbox
        record._appended = []
        record.profile = doc["p"]
        record.properties = doc["v"]
        record.answers = doc["a"]
        static, blacklist = doc["s"], doc["b"]
        record.static = {g: Command(c[0], c[1]) for g, c in static.items()} if static else {}
        record.blacklist = (
            {g: Command(c[0], c[1]) for g, c in blacklist.items()} if blacklist else {}
        )
        record._pairs = Pairs(doc["m"])
        record.seen = doc["n"]
        record.dues = doc["d"]
        record.command_seq = doc["c"]
        segments = doc.get("g")
        record.segments = (
            {k: Segment(g[0], g[1], g[2]) for k, g in segments.items()} if segments else {}
        )
        return record


class StoredState:
    """A stored record's state document (:meth:`MemberRecord.state_doc`) read as it is,
    without building the record: the few things a backfill needs to see that a member's
    verdict for a group stays (:func:`smartgroups.core.membership.rescan_changes_nothing`),
    and the condition view the live preview reads."""

    __slots__ = ("doc",)

    def __init__(self, doc: Mapping[str, Any]) -> None:
        self.doc = doc

    @property
    def eligible(self) -> bool:
        return is_eligible(self.doc["p"])

    def snapshot(self) -> MemberSnapshot:
        """The member's condition view: profile, values, answers, the groups it is in."""
        doc = self.doc
        groups = frozenset(g for g, pair in doc["m"].items() if pair[0])
        return MemberSnapshot(doc["p"], doc["v"], doc["a"], groups)

    @property
    def dues(self) -> Mapping[str, int]:
        """The due instants by field, epoch microseconds (:attr:`MemberRecord.dues`)."""
        return self.doc["d"]  # type: ignore[no-any-return]

    def value(self, field: str) -> Any:
        """As :meth:`MemberRecord.value`."""
        doc = self.doc
        return field_value(doc["p"], doc["v"], doc["a"], field)

    def is_member(self, group_id: str) -> bool:
        pair = self.doc["m"].get(group_id)
        return pair is not None and bool(pair[0])

    def static(self, group_id: str) -> Command | None:
        """The last static-membership command of the pair, if any."""
        return _command(self.doc["s"].get(group_id))

    def blacklist(self, group_id: str) -> Command | None:
        """The last blacklist command of the pair, if any."""
        return _command(self.doc["b"].get(group_id))

    def already_applied(self, source: str, offset: int) -> bool:
        """As :meth:`MemberRecord.already_applied`."""
        return int(self.doc["n"].get(source, -1)) >= offset


def field_value(
    profile: Mapping[str, Any],
    properties: Mapping[str, Any],
    answers: Mapping[str, Any],
    field: str,
) -> Any:
    """The value of a condition field (``profile.x``, ``property.x``, ``answer.x``) or None."""
    source, _, key = field.partition(".")
    if source == "profile":
        return profile.get(key)
    if source == "property":
        return properties.get(key)
    return answers.get(key) if source == "answer" else None


def _command(stored: Any) -> Command | None:
    return None if stored is None else Command(bool(stored[0]), int(stored[1]))
