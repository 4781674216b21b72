"""GroupEntry derives what deciding a member reads, once, and round-trips without it."""

from __future__ import annotations

import copy
import pickle
from datetime import UTC, datetime

from smartgroups.core.catalog import SpaceCatalog
from smartgroups.core.commands import parse_command
from smartgroups.core.snapshot import MemberSnapshot
from smartgroups.core.space import GroupEntry

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def _group(kind: str, active: bool = True) -> GroupEntry:
    catalog = SpaceCatalog()
    command: dict[str, object] = {"type": "group.created", "group_id": "g", "name": "G"}
    command["kind"] = kind
    if kind == "smart":
        command["conditions"] = {
            "all": [
                {"field": "profile.last_active_at", "op": "within_last", "value": {"days": 30}},
                {"field": "profile.email", "op": "email_domain", "value": ["acme.com"]},
            ]
        }
    assert catalog.apply(parse_command(command)).accepted
    if not active:
        assert catalog.apply(parse_command({"type": "group.deactivated", "group_id": "g"}))
    return GroupEntry(catalog.groups["g"], seq=3, created_seq=1)


def test_a_smart_entry_carries_its_predicate_and_time_fields():
    entry = _group("smart")
    assert entry.live
    assert entry.time_fields == frozenset({"profile.last_active_at"})
    assert entry.predicate is not None
    member = MemberSnapshot(
        {"email": "ann@ACME.com", "last_active_at": "2026-11-20"}, {}, {}, frozenset()
    )
    assert entry.predicate(member, NOW) is True


def test_a_static_entry_has_no_predicate_and_an_inactive_one_is_not_live():
    static = _group("static")
    assert static.predicate is None and static.time_fields == frozenset() and static.live
    assert not _group("smart", active=False).live
    assert not GroupEntry(static.group, seq=4, created_seq=1, deleted=True).live


def test_an_entry_pickles_and_copies_and_derives_again():
    entry = _group("smart")
    for again in (pickle.loads(pickle.dumps(entry)), copy.deepcopy(entry)):
        assert again == entry
        assert again.predicate is not None and again.time_fields == entry.time_fields
