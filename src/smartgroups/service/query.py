"""The read side (contract section 7) over the member path's tables, one set of partitions.

:class:`QueryService` answers from the partitions it is given: the worker hands it the ones it
owns and merges what other workers answer for theirs (:func:`merge`). Every listing is a
:class:`Partial`, the first ``limit + 1`` matching entries after the cursor in the contract's
order plus the count of every match, so partials of disjoint partitions merge into exactly the
page one worker holding every partition would give.

Reads happen between batches: each bounded slice of work runs under ``guard`` (the member
loop's lock, so never inside a batch), and the loop gets a turn between slices. A listing with
filters, and a preview, read their whole scope slice by slice; an unfiltered page reads at most
``limit + 1`` index entries per partition, and its ``total`` comes from the index's counters.

Decisions where the contract is silent:

* **Cursors** are the last entry's sort key (casefolded display name, NUL, member id) in URL-safe
  base64: opaque to clients, valid on any worker, and stable while members change (a page after
  a cursor starts after that key, so an entry is neither skipped nor repeated unless its own
  name changed in between).
* ``q`` is casefolded and matched against the casefolded first name, last name, display name and
  email; an empty ``q``, ``status`` or ``role`` means no filter. ``status``/``role`` items are
  casefolded and trimmed; a member whose value is missing matches none.
* A **space exists** when a partition holds a copy of one of its groups (every partition gets
  every group) or one of its members; otherwise every request of the space is
  ``404 space_not_found``.
* A member's ``segments`` names every live segment set of the space (``None``: the fallback).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import heapq
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import orjson

from smartgroups.core.conditions import Condition, compile_condition
from smartgroups.core.explain import explain, member_exists
from smartgroups.core.ids import member_key, space_prefix
from smartgroups.core.outputs import iso_ms
from smartgroups.core.record import MemberRecord
from smartgroups.core.segments import SetEntry
from smartgroups.core.space import GroupEntry, SpaceGroups
from smartgroups.core.values import fold
from smartgroups.errors import QueryError
from smartgroups.service import index, record_codec
from smartgroups.service.ports import Clock, Table

MAX_LIMIT = 1000
DEFAULT_LIMIT = 50
SLICE = 2000
"""Index entries or member records read per slice (under the guard) before the loop's turn."""

Guard = Callable[[], AbstractAsyncContextManager[Any]]
Entry = tuple[bytes, dict[str, Any]]
"""A listed member: its sort key and its Member document."""


def invalid(message: str) -> QueryError:
    return QueryError(400, "invalid", message)


def not_found(code: str, what: str) -> QueryError:
    return QueryError(404, code, f"{what} not found")


# -- parameters --------------------------------------------------------------------------------


def parse_limit(raw: object) -> int:
    """``limit``: an integer from 1 to 1,000 (default 50)."""
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    if isinstance(raw, bool):
        raise invalid("'limit' must be an integer from 1 to 1000")
    try:
        limit: int = int(raw)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        raise invalid("'limit' must be an integer from 1 to 1000") from None
    if not 1 <= limit <= MAX_LIMIT or (isinstance(raw, float) and raw != limit):
        raise invalid("'limit' must be an integer from 1 to 1000")
    return limit


def encode_cursor(key: bytes) -> str:
    return base64.urlsafe_b64encode(key).decode().rstrip("=")


def decode_cursor(raw: object) -> bytes | None:
    """The sort key a cursor stands for (None: the first page); a malformed one is ``invalid``."""
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str) or len(raw) > 4096:
        raise invalid("'cursor' is not one this API gave (use next_cursor as it is)")
    try:
        key = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
        _name, sep, member_id = key.decode().rpartition("\x00")
    except (binascii.Error, ValueError):
        raise invalid("'cursor' is not one this API gave (use next_cursor as it is)") from None
    if not sep or not member_id:
        raise invalid("'cursor' is not one this API gave (use next_cursor as it is)")
    return key


def _items(raw: object, name: str) -> frozenset[str] | None:
    if raw is None:
        return None
    if isinstance(raw, list):
        parts = raw
    elif isinstance(raw, str):
        parts = raw.split(",")
    else:
        raise invalid(f"'{name}' must be comma-separated text")
    if not all(isinstance(p, str) for p in parts):
        raise invalid(f"'{name}' must be comma-separated text")
    items = frozenset(fold(p.strip()) for p in parts if p.strip())
    return items or None


@dataclass(frozen=True, slots=True)
class Filters:
    """``q``, ``status`` and ``role`` of a listing, folded (None: no such filter)."""

    q: str | None = None
    statuses: frozenset[str] | None = None
    roles: frozenset[str] | None = None

    @classmethod
    def parse(cls, q: object = None, status: object = None, role: object = None) -> Filters:
        if q is not None and not isinstance(q, str):
            raise invalid("'q' must be text")
        if isinstance(q, str) and len(q) > 1000:
            raise invalid("'q' must be at most 1000 characters")
        return cls(fold(q) if q else None, _items(status, "status"), _items(role, "role"))

    @property
    def empty(self) -> bool:
        return self.q is None and self.statuses is None and self.roles is None

    def match(self, listing: Sequence[object], member_id: str) -> bool:
        role, status = listing[3], listing[4]
        if self.statuses is not None and not (
            isinstance(status, str) and fold(status) in self.statuses
        ):
            return False
        if self.roles is not None and not (isinstance(role, str) and fold(role) in self.roles):
            return False
        q = self.q
        if q is None:
            return True
        search = listing[7] if len(listing) > 7 else None
        if not isinstance(search, str):
            search = index.search_text(tuple(listing[:5]), member_id)
        return any(q in text for text in search.split("\x00"))


# -- pages -------------------------------------------------------------------------------------


@dataclass(slots=True)
class Partial:
    """What some partitions hold of a listing: the first ``limit + 1`` entries after the cursor
    in order, and ``total``, how many match in all."""

    entries: list[Entry] = field(default_factory=list)
    total: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "entries": [[encode_cursor(k), doc] for k, doc in self.entries],
            "total": self.total,
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Partial:
        entries = [(base64_key(k), d) for k, d in doc["entries"]]
        return cls(entries, int(doc["total"]))


def base64_key(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def merge(partials: Iterable[Partial], limit: int) -> dict[str, Any]:
    """The page (``members``, ``total``, ``next_cursor``) of disjoint partials."""
    parts = list(partials)
    merged = list(heapq.merge(*(p.entries for p in parts), key=lambda e: e[0]))[: limit + 1]
    page = merged[:limit]
    more = len(merged) > limit
    return {
        "members": [doc for _, doc in page],
        "total": sum(p.total for p in parts),
        "next_cursor": encode_cursor(page[-1][0]) if more and page else None,
    }


def member_doc(
    member_id: str, listing: Sequence[object], since_ms: object, version: object
) -> dict[str, Any]:
    """The contract's Member shape (``since``/``version`` null outside memberships)."""
    first, last, email, role, status = listing[:5]
    return {
        "member_id": member_id,
        "first_name": first,
        "last_name": last,
        "email": email,
        "role": role,
        "status": status,
        "since": iso_ms(since_ms) if isinstance(since_ms, int) else None,
        "version": version if isinstance(version, int) else None,
    }


class _Collector:
    """Keeps the ``limit + 1`` smallest entries after ``after`` (in any arrival order) and
    counts every match."""

    def __init__(self, after: bytes | None, limit: int) -> None:
        self.after = after
        self.keep = limit + 1
        self.entries: list[Entry] = []
        self.total = 0

    def add(self, key: bytes, make: Callable[[], dict[str, Any]]) -> None:
        self.total += 1
        if self.after is not None and key <= self.after:
            return
        self.entries.append((key, make()))
        if len(self.entries) >= 4 * self.keep:
            self._trim()

    def _trim(self) -> None:
        self.entries.sort(key=lambda e: e[0])
        del self.entries[self.keep :]

    def partial(self) -> Partial:
        self._trim()
        return Partial(self.entries, self.total)


# -- the service -------------------------------------------------------------------------------


class QueryService:
    """Answers the query API from the member path's tables of some partitions (module doc).

    ``check(partition)`` raises :class:`QueryError` (503) when a partition is not ready to be
    read (restoring, moved away); it runs before each slice, under the guard. ``spaces`` (when
    given) is the member service's cached copy of a partition's groups of a space.
    """

    def __init__(
        self,
        *,
        members: Table,
        groups: Table,
        index_table: Table,
        clock: Clock,
        guard: Guard,
        check: Callable[[int], None],
        spaces: Callable[[int, str], SpaceGroups] | None = None,
        slice_size: int = SLICE,
    ) -> None:
        self.members = members
        self.groups = groups
        self.index = index_table
        self.clock = clock
        self.guard = guard
        self.check = check
        self.spaces = spaces
        self.slice = slice_size

    async def _read(self, partition: int, read: Callable[[], Any]) -> Any:
        async with self.guard():
            self.check(partition)
            result = read()
        await asyncio.sleep(0)
        return result

    # -- spaces and groups ---------------------------------------------------------------------
    async def space_seen(self, space_id: str, partitions: Sequence[int]) -> bool:
        """Whether these partitions hold a group copy or a member of the space."""
        prefix = space_prefix(space_id)
        for p in partitions:

            def probe(p: int = p) -> bool:
                return bool(
                    self.groups.scan(p, prefix, limit=1) or self.members.scan(p, prefix, limit=1)
                )

            if await self._read(p, probe):
                return True
        return False

    async def entries(self, space_id: str, partition: int) -> dict[str, GroupEntry]:
        """The group copies of the space on ``partition`` (deleted ones too), by group id."""
        prefix = space_prefix(space_id)

        def read() -> dict[str, GroupEntry]:
            if not self.groups.scan(partition, prefix, limit=1):
                return {}
            if self.spaces is not None:  # the member service's copy, kept current by the batches
                return dict(self.spaces(partition, space_id).entries)
            found: dict[str, GroupEntry] = {}
            after = None
            while chunk := self.groups.scan(partition, prefix, after=after, limit=1000):
                for _, raw in chunk:
                    entry = GroupEntry.from_json(orjson.loads(raw)["entry"])
                    found[entry.group.group_id] = entry
                after = chunk[-1][0]
            return found

        found: dict[str, GroupEntry] = await self._read(partition, read)
        return found

    async def counts(
        self, space_id: str, entries: Iterable[GroupEntry], partitions: Sequence[int]
    ) -> dict[str, tuple[int, int]]:
        """Per group: its members and blacklisted members on these partitions."""
        wanted = list(entries)
        found = {e.group.group_id: (0, 0) for e in wanted}
        for p in partitions:

            def read(p: int = p) -> dict[str, tuple[int, int]]:
                got = {}
                for e in wanted:
                    gid = e.group.group_id
                    n = index.read_count(self.index, p, index.count_key(space_id, gid))
                    key = index.blacklist_count_key(space_id, gid, e.created_seq)
                    got[gid] = (n, index.read_count(self.index, p, key))
                return got

            for gid, (n, b) in (await self._read(p, read)).items():
                m, c = found[gid]
                found[gid] = (m + n, c + b)
        return found

    # -- listings ------------------------------------------------------------------------------
    async def listing(
        self,
        prefix: bytes,
        count_key: bytes,
        filters: Filters,
        after: bytes | None,
        limit: int,
        partitions: Sequence[int],
        *,
        memberships: bool,
    ) -> Partial:
        """A group's members (``memberships``) or blacklist, from the index under ``prefix``."""
        collected = _Collector(after, limit)
        for p in partitions:
            if filters.empty:
                await self._first_page(p, prefix, count_key, after, limit, collected, memberships)
            else:
                await self._filtered(p, prefix, filters, collected, memberships)
        return collected.partial()

    async def _first_page(
        self,
        partition: int,
        prefix: bytes,
        count_key: bytes,
        after: bytes | None,
        limit: int,
        collected: _Collector,
        memberships: bool,
    ) -> None:
        def read() -> tuple[int, list[tuple[bytes, bytes]]]:
            start = prefix + after if after is not None else None
            rows = self.index.scan(partition, prefix, after=start, limit=limit + 1)
            return index.read_count(self.index, partition, count_key), rows

        total, rows = await self._read(partition, read)
        for key, raw in rows:
            sort = key[len(prefix) :]
            collected.entries.append((sort, _doc(sort, raw, memberships)))
        collected.total += total
        collected._trim()

    async def _filtered(
        self,
        partition: int,
        prefix: bytes,
        filters: Filters,
        collected: _Collector,
        memberships: bool,
    ) -> None:
        last: bytes | None = None
        needle = index.prefilter(filters.q) if filters.q is not None else None
        while True:

            def read(start: bytes | None = last) -> list[tuple[bytes, bytes]]:
                return self.index.scan(partition, prefix, after=start, limit=self.slice)

            rows = await self._read(partition, read)
            if not rows:
                return
            full, last = len(rows) == self.slice, rows[-1][0]
            if needle is not None:  # skip, undecoded, the entries whose bytes cannot match
                rows = [row for row in rows if needle in row[1]]
            for key, raw in rows:
                sort = key[len(prefix) :]
                value = orjson.loads(raw)
                member_id = index.member_id_of(sort)
                if filters.match(value, member_id):
                    collected.add(sort, partial(_doc, sort, raw, memberships))
            if not full:
                return

    # -- segment sets --------------------------------------------------------------------------
    async def segment_set(self, space_id: str, set_id: str, partition: int) -> SetEntry:
        """The live segment set ``set_id`` of the space as ``partition`` holds it;
        ``404 segment_set_not_found`` when there is none (never defined, or deleted)."""
        spaces = self.spaces
        if spaces is None:
            raise not_found("segment_set_not_found", "segment set")
        entry = await self._read(partition, lambda: spaces(partition, space_id).sets.get(set_id))
        if entry is None or entry.deleted:
            raise not_found("segment_set_not_found", "segment set")
        found: SetEntry = entry
        return found

    async def segment_listing(
        self,
        space_id: str,
        set_id: str,
        segment: str | None,
        filters: Filters,
        after: bytes | None,
        limit: int,
        partitions: Sequence[int],
    ) -> Partial:
        """The members whose segment in the set is ``segment`` (None: the fallback).

        The member record's ``segments`` says which segment a member is in (as the member
        endpoint shows it). For a group, the walk is the group's index (its members in listing
        order) and keeps those whose segment is that group: one index entry and one record read
        per member of the group (filters are applied to the index entry first). For the
        fallback there is no narrower index: the walk reads every member record of the space on
        the partition (profile and segments only, without building the record) and keeps the
        existing members whose segment is the fallback. Both walks count ``total``, so each
        reads its whole scope, slice by slice under the guard. ``since``/``version`` are the
        member's segment in the set (null for a member that was always in the fallback).

        ``segment_set_not_found`` (404) when the set is not live; ``invalid`` (400) when
        ``segment`` is not a group the set lists."""
        collected = _Collector(after, limit)
        for p in partitions:
            entry = await self.segment_set(space_id, set_id, p)
            if segment is not None and segment not in entry.positions:
                raise invalid(f"'segment' must be a group of the set {set_id!r}, or empty")
            last: bytes | None = None
            while True:
                if segment is None:
                    read = partial(self._fallback_slice, p, space_id, set_id, filters, last)
                else:
                    read = partial(self._segment_slice, p, space_id, set_id, segment, filters, last)
                last, kept = await self._read(p, read)
                for sort, member_id, listing, held in kept:
                    since, version = (held[2], held[1]) if held is not None else (None, None)
                    collected.add(sort, partial(member_doc, member_id, listing, since, version))
                if last is None:
                    break
        return collected.partial()

    def _segment_slice(
        self,
        partition: int,
        space_id: str,
        set_id: str,
        group_id: str,
        filters: Filters,
        start: bytes | None,
    ) -> tuple[bytes | None, list[tuple[bytes, str, Any, Any]]]:
        """One slice of the group's index from ``start``: the members whose segment is the
        group, and the key to go on from (None: the walk is done)."""
        prefix = index.group_prefix(space_id, group_id)
        rows = self.index.scan(partition, prefix, after=start, limit=self.slice)
        kept = []
        for key, raw in rows:
            sort = key[len(prefix) :]
            member_id = index.member_id_of(sort)
            listing = orjson.loads(raw)
            if not filters.empty and not filters.match(listing, member_id):
                continue
            stored = self.members.get(partition, member_key(space_id, member_id))
            view = record_codec.segment_view(stored, set_id) if stored is not None else None
            held = view[1] if view is not None else None
            if held is not None and held[0] == group_id:
                kept.append((sort, member_id, listing, held))
        return (rows[-1][0] if len(rows) == self.slice else None), kept

    def _fallback_slice(
        self,
        partition: int,
        space_id: str,
        set_id: str,
        filters: Filters,
        start: bytes | None,
    ) -> tuple[bytes | None, list[tuple[bytes, str, Any, Any]]]:
        """One slice of the space's member records from ``start``: the existing members whose
        segment is the fallback, and the key to go on from (None: the walk is done)."""
        prefix = space_prefix(space_id)
        rows = self.members.scan(partition, prefix, after=start, limit=self.slice)
        kept = []
        for key, raw in rows:
            view = record_codec.segment_view(raw, set_id)
            if view is None:
                continue
            profile, held = view
            if held is not None and held[0] is not None:
                continue
            member_id = key[len(prefix) :].decode()
            listing = tuple(profile.get(f) for f in index.LISTING_FIELDS)
            if not filters.empty and not filters.match(listing, member_id):
                continue
            kept.append((index.sort_key(listing, member_id), member_id, listing, held))
        return (rows[-1][0] if len(rows) == self.slice else None), kept

    # -- one member ----------------------------------------------------------------------------
    async def record(self, space_id: str, member_id: str, partition: int) -> MemberRecord:
        """The member's record; ``member_not_found`` when the member does not exist."""
        raw = await self._read(
            partition, lambda: self.members.get(partition, member_key(space_id, member_id))
        )
        rec = record_codec.loads(raw) if raw is not None else None
        if rec is None or not member_exists(rec):
            raise not_found("member_not_found", "member")
        return rec

    async def member(self, space_id: str, member_id: str, partition: int) -> dict[str, Any]:
        rec = await self.record(space_id, member_id, partition)
        groups = [
            {"group_id": gid, "since": iso_ms(pair.since_ms), "version": pair.version}
            for gid, pair in sorted(rec.pairs.items())
            if pair.member
        ]
        segments: dict[str, str | None] = {}
        spaces = self.spaces
        if spaces is not None:  # every live set of the space; None: the fallback
            sets = await self._read(partition, lambda: dict(spaces(partition, space_id).sets))
            for set_id, entry in sorted(sets.items()):
                if not entry.deleted:
                    held = rec.segments.get(set_id)
                    segments[set_id] = held.segment if held is not None else None
        return {
            "member_id": member_id,
            "profile": rec.profile,
            "properties": rec.properties,
            "answers": rec.answers,
            "groups": groups,
            "segments": segments,
        }

    async def explain(
        self, space_id: str, group_id: str, member_id: str, partition: int
    ) -> dict[str, Any]:
        entry = (await self.entries(space_id, partition)).get(group_id)
        if entry is None or entry.deleted:
            raise not_found("group_not_found", "group")
        rec = await self.record(space_id, member_id, partition)
        return explain(entry, rec, self.clock())

    # -- live preview --------------------------------------------------------------------------
    async def preview(
        self,
        space_id: str,
        conditions: Condition,
        blacklist: frozenset[str],
        filters: Filters,
        after: bytes | None,
        limit: int,
        partitions: Sequence[int],
    ) -> Partial:
        """The members a smart group with ``conditions`` would hold now on these partitions:
        eligible status, conditions true, not in ``blacklist``, matching ``filters``."""
        predicate = compile_condition(conditions)
        prefix = space_prefix(space_id)
        collected = _Collector(after, limit)
        now = self.clock()
        for p in partitions:
            last: bytes | None = None
            while True:

                def read(p: int = p, start: bytes | None = last) -> list[tuple[bytes, bytes]]:
                    return self.members.scan(p, prefix, after=start, limit=self.slice)

                rows = await self._read(p, read)
                for key, raw in rows:
                    member_id = key[len(prefix) :].decode()
                    if member_id in blacklist:
                        continue
                    snapshot = record_codec.snapshot(raw)  # no full record: profile first
                    if snapshot is None:  # not eligible (hence not a member that counts)
                        continue
                    if not predicate(snapshot, now):
                        continue
                    listing = tuple(snapshot.profile.get(f) for f in index.LISTING_FIELDS)
                    if not filters.empty and not filters.match(listing, member_id):
                        continue
                    sort = index.sort_key(listing, member_id)
                    collected.add(sort, partial(member_doc, member_id, listing, None, None))
                if len(rows) < self.slice:
                    break
                last = rows[-1][0]
        return collected.partial()


def _doc(sort: bytes, raw: bytes, memberships: bool) -> dict[str, Any]:
    value = orjson.loads(raw)
    member_id = index.member_id_of(sort)
    if memberships:
        return member_doc(member_id, value, value[5], value[6])
    return member_doc(member_id, value, None, None)


def group_doc(entry: GroupEntry, member_count: int, blacklist_count: int) -> dict[str, Any]:
    """The contract's Group shape."""
    group = entry.group
    return {
        "group_id": group.group_id,
        "name": group.name,
        "kind": group.kind,
        "slug": group.slug,
        "description": group.description,
        "icon": group.icon,
        "active": group.active,
        "editable": group.editable,
        "resources": [r.to_json() for r in group.resources],
        "conditions": group.conditions_raw if group.kind == "smart" else None,
        "member_count": member_count,
        "blacklist_count": blacklist_count,
    }


def group_order(entries: Iterable[GroupEntry]) -> list[GroupEntry]:
    """The existing groups by casefolded name, then id."""
    live = [e for e in entries if not e.deleted]
    return sorted(live, key=lambda e: (fold(e.group.name), e.group.group_id))
