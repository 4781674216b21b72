"""The query indexes: each group's members and blacklist in the contract's listing order.

Kept per partition in one more table (``index``), written by the member service in the same
batch as the member record they index (the member loop flushes every table of a partition in
one checkpoint, and writes one changelog for each), so an index can never drift from the
records on a crash. Keys (``S:G`` is ``{space}:{group_id}``, ``K`` the sort key):

=====================================  ===================================================
``m|S:G|K``                            a current member of the group; value
                                       ``[first_name, last_name, email, role, status,
                                       since_ms, version, search]``
``b|S:G|{created_seq:020d}|K``         a member blacklisted in the group created at
                                       ``created_seq``; value ``[first_name, last_name,
                                       email, role, status, null, null, search]``
``n|S:G``                              how many ``m|S:G|`` entries the partition holds
``c|S:G|{created_seq:020d}``           how many ``b|S:G|{created_seq}|`` entries it holds
=====================================  ===================================================

``K`` is :func:`sort_key`: the casefolded display name (first and last name joined by one space
and trimmed; else the email; else the member id), a NUL byte, then the member id. UTF-8 byte
order is code point order, so byte order is the contract's order (name, then member id) and a
page is one ordered scan from a cursor: no page reads the whole group.

``search`` is what ``q`` is matched against, folded once when the entry is written: the folded
first name, last name, display name and email joined by NUL. A ``q`` search reads every entry of
the group, but most are skipped on their bytes, without decoding (:func:`prefilter`).

The blacklist is keyed by the group's creation so that the blacklist of a deleted group never
shows under a new group with the same id (its commands are void, as the decisions count them).

:func:`update` is the one hook (called by ``MemberService._apply`` where the record is stored):
with the member's listing fields and blacklist as they were before the input (:func:`before`)
and the record and transitions after it, it moves the member's entries: a name change re-keys
every entry of the member, a transition adds or removes one, a blacklist command (or erasure,
which forgets every command and leaves every group) adds or removes one.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from smartgroups.core.explain import member_exists
from smartgroups.core.membership import Transition
from smartgroups.core.record import MemberRecord
from smartgroups.core.space import SpaceGroups
from smartgroups.core.values import fold
from smartgroups.service.ports import Table

LISTING_FIELDS = ("first_name", "last_name", "email", "role", "status")
"""The profile fields a member listing shows (and the index values carry)."""

Listing = tuple[object, ...]
Blacklisted = frozenset[tuple[str, int]]
"""The (group id, group creation seq) pairs the member is blacklisted in."""


def display_name(first: object, last: object, email: object, member_id: str) -> str:
    """The contract's display name, casefolded: names, else the email, else the member id."""
    parts = [p for p in (first, last) if isinstance(p, str)]
    name = " ".join(parts).strip()
    if not name and isinstance(email, str):
        name = email.strip()
    return fold(name or member_id)


def sort_key(listing: Listing, member_id: str) -> bytes:
    """``K``: the casefolded display name (NUL removed), NUL, the member id."""
    first, last, email = listing[0], listing[1], listing[2]
    name = display_name(first, last, email, member_id).replace("\x00", "")
    return name.encode() + b"\x00" + member_id.encode()


def member_id_of(key: bytes) -> str:
    """The member id at the end of an index key."""
    return key.rpartition(b"\x00")[2].decode()


def group_prefix(space_id: str, group_id: str) -> bytes:
    """The prefix of a group's member entries (``m|S:G|``)."""
    return f"m|{space_id}:{group_id}|".encode()


def blacklist_prefix(space_id: str, group_id: str, created_seq: int) -> bytes:
    """The prefix of a group's blacklist entries (``b|S:G|{created_seq}|``)."""
    return f"b|{space_id}:{group_id}|{created_seq:020d}|".encode()


def count_key(space_id: str, group_id: str) -> bytes:
    return f"n|{space_id}:{group_id}".encode()


def blacklist_count_key(space_id: str, group_id: str, created_seq: int) -> bytes:
    return f"c|{space_id}:{group_id}|{created_seq:020d}".encode()


def read_count(table: Table, partition: int, key: bytes) -> int:
    raw = table.get(partition, key)
    return int(raw) if raw is not None else 0


def _add(table: Table, partition: int, key: bytes, delta: int) -> None:
    count = read_count(table, partition, key) + delta
    if count:
        table.put(partition, key, b"%d" % count)
    else:
        table.delete(partition, key)


def search_text(listing: Listing, member_id: str) -> str:
    """The folded texts ``q`` is matched against (see the module docstring)."""
    first, last, email = listing[0], listing[1], listing[2]
    texts = [fold(t) for t in (first, last) if isinstance(t, str)]
    texts.append(display_name(first, last, email, member_id))
    if isinstance(email, str):
        texts.append(fold(email))
    return "\x00".join(texts)


def prefilter(q: str) -> bytes | None:
    """The bytes an entry's value must hold to match the folded ``q`` (the value holds the
    search text), or None when ``q`` holds a character JSON escapes (no byte prefilter)."""
    if '"' in q or "\\" in q or any(ord(c) < 0x20 for c in q):
        return None
    return q.encode()


def listing_of(record: MemberRecord) -> Listing:
    profile = record.profile
    return tuple(profile.get(name) for name in LISTING_FIELDS)


def blacklisted(record: MemberRecord, space: SpaceGroups) -> Blacklisted:
    """Where the member is blacklisted now (commands in force on a group that exists), if the
    member exists (:func:`~smartgroups.core.explain.member_exists`)."""
    if not record.blacklist or not member_exists(record):
        return frozenset()
    found = set()
    for group_id, command in record.blacklist.items():
        entry = space.get(group_id)
        if (
            command.on
            and entry is not None
            and not entry.deleted
            and entry.group.kind == "smart"
            and command.seq >= entry.created_seq
        ):
            found.add((group_id, entry.created_seq))
    return frozenset(found)


def before(record: MemberRecord, space: SpaceGroups) -> tuple[Listing, Blacklisted]:
    """What :func:`update` compares the changed record with (taken before the change)."""
    return listing_of(record), blacklisted(record, space)


def update(
    table: Table,
    partition: int,
    space_id: str,
    member_id: str,
    space: SpaceGroups,
    old: tuple[Listing, Blacklisted],
    record: MemberRecord,
    transitions: Iterable[Transition],
) -> None:
    """Move the member's index entries from ``old`` to what ``record`` holds now."""
    old_listing, old_black = old
    listing = listing_of(record)
    black = blacklisted(record, space) if record.blacklist or old_black else old_black
    flipped = _net(transitions, record) if transitions else {}
    if not flipped and listing == old_listing and black == old_black:
        return  # most inputs: nothing a listing shows changed
    old_key = sort_key(old_listing, member_id)
    key = sort_key(listing, member_id)
    text = search_text(listing, member_id)  # the same in each of the member's entries
    pairs = record.pairs
    if listing != old_listing:
        # every entry changes its value and maybe its key (a put replaces an unmoved one)
        moved = key != old_key
        if moved:
            for group_id in pairs.member_of():
                if flipped.get(group_id) is not True:
                    table.delete(partition, group_prefix(space_id, group_id) + old_key)
        for group_id, seq in old_black & black:
            if moved:
                table.delete(partition, blacklist_prefix(space_id, group_id, seq) + old_key)
            _put_black(table, partition, space_id, group_id, seq, key, listing, text)
        for group_id in pairs.member_of():
            if group_id not in flipped:
                entry = pairs[group_id]
                _put_member(table, partition, space_id, group_id, key, listing, entry, text)
    for group_id, added in flipped.items():
        prefix = group_prefix(space_id, group_id)
        if added:
            entry = pairs[group_id]
            _put_member(table, partition, space_id, group_id, key, listing, entry, text)
            _add(table, partition, count_key(space_id, group_id), 1)
        else:
            table.delete(partition, prefix + old_key)
            _add(table, partition, count_key(space_id, group_id), -1)
    for group_id, seq in old_black - black:
        table.delete(partition, blacklist_prefix(space_id, group_id, seq) + old_key)
        _add(table, partition, blacklist_count_key(space_id, group_id, seq), -1)
    for group_id, seq in black - old_black:
        _put_black(table, partition, space_id, group_id, seq, key, listing, text)
        _add(table, partition, blacklist_count_key(space_id, group_id, seq), 1)


def _net(transitions: Iterable[Transition], record: MemberRecord) -> dict[str, bool]:
    """The groups whose membership the input changed, and whether the member is in now (a group
    that flipped and flipped back within one input changed nothing)."""
    first: dict[str, bool] = {}
    for t in transitions:
        first.setdefault(t.group_id, not t.added)
    pairs = record.pairs
    return {
        group_id: now
        for group_id, was in first.items()
        if (now := pairs.is_member(group_id)) != was
    }


def _put_member(
    table: Table,
    partition: int,
    space_id: str,
    group_id: str,
    key: bytes,
    listing: Listing,
    pair: Any,
    text: str,
) -> None:
    value = orjson.dumps([*listing, pair.since_ms, pair.version, text])
    table.put(partition, group_prefix(space_id, group_id) + key, value)


def _put_black(
    table: Table,
    partition: int,
    space_id: str,
    group_id: str,
    seq: int,
    key: bytes,
    listing: Listing,
    text: str,
) -> None:
    value = orjson.dumps([*listing, None, None, text])
    table.put(partition, blacklist_prefix(space_id, group_id, seq) + key, value)
