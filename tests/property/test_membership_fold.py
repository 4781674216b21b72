"""Membership decisions as a fold: incremental equals from scratch, replays are silent.

Random sequences of member inputs and definition effects are applied through the core's
handlers (what the worker calls). After each step, the record's memberships must equal the
contract's definition recomputed from scratch on the record's current data; every pair's
transitions alternate added/removed from version 1; and deciding again with nothing changed
emits nothing.

Time moves in two ways: with a tick (``on_due``, as the worker's timer does) or silently (the
tick is late). After a silent move the memberships may lag until the next tick — only then
(no due instant at or before now) must they equal the definition again, whatever inputs came
in between.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from smartgroups.core import membership
from smartgroups.core.catalog import Group, SpaceCatalog
from smartgroups.core.commands import parse_command
from smartgroups.core.conditions import evaluate
from smartgroups.core.fields import ELIGIBLE_STATUSES
from smartgroups.core.record import MemberRecord, StoredState
from smartgroups.core.snapshot import MemberSnapshot
from smartgroups.core.space import GroupEntry, SpaceGroups

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)

DEFINITIONS: list[dict[str, Any]] = [
    {"type": "property.defined", "property_id": "vip", "name": "VIP", "value_type": "boolean"},
    {"type": "question.defined", "question_id": "sport", "name": "S", "value_type": "text"},
    {"type": "property.defined", "property_id": "renewal", "name": "R", "value_type": "date"},
    {"type": "property.defined", "property_id": "joined", "name": "J", "value_type": "date"},
    {"type": "group.created", "group_id": "staff", "name": "Staff", "kind": "static"},
    {
        "type": "group.created",
        "group_id": "acme",
        "name": "Acme",
        "kind": "smart",
        "conditions": {
            "all": [{"field": "profile.email", "op": "email_domain", "value": ["acme.com"]}]
        },
    },
    {
        "type": "group.created",
        "group_id": "vip",
        "name": "VIP",
        "kind": "smart",
        "conditions": {
            "any": [
                {"field": "property.vip", "op": "eq", "value": True},
                {"field": "groups", "op": "has_any", "value": ["staff"]},
            ]
        },
    },
    {
        "type": "group.created",
        "group_id": "acme-vip",
        "name": "Acme VIP",
        "kind": "smart",
        "conditions": {
            "all": [
                {"field": "groups", "op": "has_all", "value": ["acme", "vip"]},
                {"not": {"field": "answer.sport", "op": "contains", "value": "chess"}},
            ]
        },
    },
    {
        "type": "group.created",
        "group_id": "recent",
        "name": "Recent",
        "kind": "smart",
        "conditions": {
            "all": [{"field": "profile.last_active_at", "op": "within_last", "value": {"days": 7}}]
        },
    },
    {
        "type": "group.created",
        "group_id": "renewing",
        "name": "Renewing soon, still around",
        "kind": "smart",
        "conditions": {
            "all": [
                {"field": "property.renewal", "op": "within_next", "value": {"days": 14}},
                {
                    "not": {
                        "field": "profile.last_active_at",
                        "op": "older_than",
                        "value": {"days": 30},
                    }
                },
            ]
        },
    },
]


TRIAL: dict[str, Any] = {
    "type": "group.created",
    "group_id": "trial",
    "name": "VIP, joined lately",
    "kind": "smart",
    "conditions": {
        "all": [
            {"field": "property.vip", "op": "eq", "value": True},
            {"field": "property.joined", "op": "within_last", "value": {"days": 14}},
        ]
    },
}
"""Created during a script (a backfill): the only group reading ``property.joined``."""

ACTIVE_NOW: dict[str, Any] = {
    "type": "group.created",
    "group_id": "active-now",
    "name": "Active in the last 2 days",
    "kind": "smart",
    "conditions": {
        "all": [{"field": "profile.last_active_at", "op": "within_last", "value": {"days": 2}}]
    },
}
"""Created during a script: changes sooner than the groups already reading its field."""

IDLE: dict[str, Any] = {
    "type": "group.created",
    "group_id": "idle",
    "name": "Not active for 5 days",
    "kind": "smart",
    "conditions": {
        "all": [{"field": "profile.last_active_at", "op": "older_than", "value": {"days": 5}}]
    },
}
"""Created during a script: a member not in it yet may join it sooner than the due instant its
field has (a backfill that skips that member would leave the later instant)."""

LAPSED: dict[str, Any] = {
    "type": "group.created",
    "group_id": "lapsed",
    "name": "Joined over 10 days ago",
    "kind": "smart",
    "conditions": {
        "all": [{"field": "property.joined", "op": "older_than", "value": {"days": 10}}]
    },
}
"""Created during a script: a member not in it yet may join it later, through a field with no
due instant yet (a backfill that skips that member would leave it without one)."""

LIFECYCLE: list[dict[str, Any]] = [
    TRIAL,
    ACTIVE_NOW,
    IDLE,
    LAPSED,
    {"type": "group.deactivated", "group_id": "trial"},
    {"type": "group.activated", "group_id": "trial"},
    {"type": "group.deleted", "group_id": "trial"},
    {"type": "group.deactivated", "group_id": "renewing"},
    {"type": "group.activated", "group_id": "renewing"},
]


class Definitions:
    """A space's catalog and its member-side groups, changed as the worker changes them."""

    def __init__(self) -> None:
        self.catalog = SpaceCatalog()
        self.space = SpaceGroups()
        self.seq = 0
        self.created: dict[str, int] = {}
        for doc in DEFINITIONS:
            outcome = self.catalog.apply(parse_command({"space": "s", **doc}))
            assert outcome.accepted, outcome
            self._install(outcome.group, outcome.effect)

    def apply(self, doc: dict[str, Any]) -> str | None:
        """Apply a group command; the effect the member side decides (None: nothing to do)."""
        outcome = self.catalog.apply(parse_command({"space": "s", **doc}))
        if not outcome.accepted or outcome.effect not in membership.GROUP_EFFECTS:
            return None
        self._install(outcome.group, outcome.effect)
        return outcome.effect

    def _install(self, group: Group | None, effect: str | None) -> None:
        """As the definitions agent fans a group change out (``created_seq``, ``deleted``)."""
        if group is None:
            return
        self.seq += 1
        if effect == "group_created":
            self.created[group.group_id] = self.seq
        created_seq = self.created.get(group.group_id, 0)
        if effect == "group_deleted":
            del self.created[group.group_id]
        copy = Group.from_json(group.to_json())
        self.space.apply(GroupEntry(copy, self.seq, created_seq, effect == "group_deleted"))


def build_space() -> SpaceGroups:
    return Definitions().space


def expected_groups(rec: MemberRecord, space: SpaceGroups, now: datetime) -> frozenset[str]:
    """The contract's section 1, recomputed from scratch in rank order (a fixpoint)."""
    groups: set[str] = set()
    order = sorted(space.entries, key=space.index.rank)
    for group_id in order:
        entry = space.entries[group_id]
        if not entry.live:
            continue
        if entry.group.kind == "static":
            cmd = rec.static.get(group_id)
            if cmd is not None and cmd.on and cmd.seq >= entry.created_seq:
                groups.add(group_id)
            continue
        status = rec.profile.get("status")
        black = rec.blacklist.get(group_id)
        if status not in ELIGIBLE_STATUSES or (black is not None and black.on):
            continue
        snap = MemberSnapshot(rec.profile, rec.properties, rec.answers, frozenset(groups))
        assert entry.group.conditions is not None
        if evaluate(entry.group.conditions, snap, now):
            groups.add(group_id)
    return frozenset(groups)


steps = st.one_of(
    st.tuples(
        st.just("profile"),
        st.fixed_dictionaries(
            {},
            optional={
                "status": st.sampled_from(["accepted", "invited", "declined", "pending", None]),
                "email": st.sampled_from(["a@acme.com", "b@x.acme.com", "c@other.org", None]),
                "last_active_at": st.sampled_from(
                    ["2026-11-20T00:00:00Z", "2026-10-01T00:00:00Z", None]
                ),
            },
        ),
    ),
    st.tuples(st.just("vip"), st.sampled_from([True, False, "yes", None])),
    st.tuples(st.just("sport"), st.sampled_from(["Chess club", "tennis", None])),
    st.tuples(
        st.just("command"),
        st.sampled_from(
            [
                ("member_added", "staff"),
                ("member_removed", "staff"),
                ("blacklisted", "vip"),
                ("unblacklisted", "vip"),
                ("blacklisted", "acme"),
                ("unblacklisted", "acme"),
            ]
        ),
    ),
    st.tuples(
        st.just("renewal"),
        st.sampled_from(["2026-12-01", "2026-12-20T08:30:00Z", "2027-01-15", "soon", None]),
    ),
    st.tuples(
        st.just("joined"),
        st.sampled_from(["2026-11-20T00:00:00Z", "2026-11-01", "2025-01-01", "later", None]),
    ),
    st.tuples(st.just("group"), st.sampled_from(range(len(LIFECYCLE)))),
    st.tuples(st.just("time"), st.integers(0, 30 * 24)),
    st.tuples(st.just("clock"), st.integers(0, 30 * 24)),
    st.tuples(st.just("erase"), st.none()),
)


@settings(max_examples=1000, deadline=None)
@given(st.lists(steps, max_size=25))
def test_incremental_decisions_equal_the_definition(script: list[tuple[str, Any]]) -> None:
    fold(script)


JOINED = ["2026-11-20T00:00:00Z", "2026-11-12", None]
LAST_ACTIVE = ["2026-11-22T00:00:00Z", "2026-11-20T00:00:00Z", "2026-10-01", None]
time_steps = st.one_of(
    st.tuples(st.just("vip"), st.booleans()),
    st.tuples(st.just("joined"), st.sampled_from(JOINED)),
    st.tuples(
        st.just("profile"),
        st.fixed_dictionaries(
            {},
            optional={
                "status": st.sampled_from(["accepted", "declined"]),
                "last_active_at": st.sampled_from(LAST_ACTIVE),
            },
        ),
    ),
    st.tuples(st.just("group"), st.sampled_from(range(len(LIFECYCLE)))),
    st.tuples(st.just("time"), st.integers(0, 20 * 24)),
    st.tuples(st.just("clock"), st.integers(0, 20 * 24)),
)


@settings(max_examples=2000, deadline=None)
@given(
    vip=st.booleans(),
    joined=st.sampled_from(JOINED),
    last_active=st.sampled_from(LAST_ACTIVE),
    script=st.lists(time_steps, max_size=12),
)
def test_groups_created_and_activated_later_leave_on_time(
    vip: bool, joined: str | None, last_active: str | None, script: list[tuple[str, Any]]
) -> None:
    """The same fold over the steps that decide when time-relative groups are due: groups
    created, activated and deleted among value changes and the passing of time (a field is
    left without a due instant while no group reading it can change with time alone)."""
    start = {"status": "accepted", "last_active_at": last_active}
    fold([("profile", start), ("vip", vip), ("joined", joined), *script])


def fold(script: list[tuple[str, Any]]) -> None:
    """Apply ``script`` step by step and check the fold's invariants (module docstring)."""
    definitions = Definitions()
    space = definitions.space
    rec = MemberRecord()
    now = NOW
    seq = 100
    history: dict[str, list[tuple[int, bool]]] = {}
    for kind, arg in script:
        if kind == "profile":
            out = membership.on_profile(rec, space, arg, now)
        elif kind == "vip":
            out = membership.on_value(rec, space, "property", "vip", arg, now)
        elif kind == "sport":
            out = membership.on_value(rec, space, "answer", "sport", arg, now)
        elif kind in ("renewal", "joined"):
            out = membership.on_value(rec, space, "property", kind, arg, now)
        elif kind == "group":
            doc = LIFECYCLE[arg]
            effect = definitions.apply(doc)
            out = []
            if effect is not None:  # the worker's scan, for this member
                stored = orjson.loads(orjson.dumps(rec.state_doc()))  # as a backfill reads it
                skip = membership.rescan_changes_nothing(
                    StoredState(stored), space, doc["group_id"], now
                )
                out = membership.on_group(rec, space, effect, doc["group_id"], now)
                if skip:  # the backfill's shortcut: the full decision changes nothing either
                    assert out == [] and rec.state_doc() == stored, (effect, doc)
        elif kind == "command":
            seq += 1
            out = membership.on_command(rec, space, arg[0], arg[1], seq, now)
        elif kind == "time":
            now = now + timedelta(hours=arg)
            out = membership.on_due(rec, space, now)
        elif kind == "clock":
            now = now + timedelta(hours=arg)
            out = []
        else:
            out = membership.on_erase(rec, space, now)
        for t in out:
            history.setdefault(t.group_id, []).append((t.version, t.added))
        due = rec.next_due_ms()
        if due is not None and due <= now.timestamp() * 1000:
            continue  # a tick is pending: memberships may lag until it comes
        assert rec.groups() == expected_groups(rec, space, now), (kind, arg)
        # Nothing changed since: re-deciding every group emits nothing.
        assert membership.decide(rec, space, list(space.entries), now) == []
    for group_id, transitions in history.items():
        versions = [v for v, _ in transitions]
        assert versions == list(range(1, len(versions) + 1)), group_id
        assert all(added == (v % 2 == 1) for v, added in transitions), group_id


def recently_active() -> tuple[SpaceGroups, MemberRecord]:
    """The example space and an accepted member last active on 2026-11-20 (so in "recent")."""
    space = build_space()
    rec = MemberRecord()
    membership.on_profile(
        rec, space, {"status": "accepted", "last_active_at": "2026-11-20T00:00:00Z"}, NOW
    )
    assert rec.is_member("recent")
    return space, rec


def test_time_exit_is_scheduled_at_the_boundary() -> None:
    space, rec = recently_active()
    boundary = datetime(2026, 11, 27, tzinfo=UTC)  # last active + 7 days
    assert rec.next_due_ms() is not None
    assert rec.next_due_ms() <= int(boundary.timestamp() * 1000) + 1
    assert membership.on_due(rec, space, boundary - timedelta(seconds=1)) == []
    out = membership.on_due(rec, space, boundary + timedelta(milliseconds=1))
    assert [(t.group_id, t.added, t.reason) for t in out] == [("recent", False, "conditions_unmet")]
    # dues are per field: the next change of a trigger on last_active_at is "renewing"'s
    # older_than 30 days, which changes nothing for a member without a renewal date
    lapsed = datetime(2026, 12, 20, tzinfo=UTC)
    assert rec.next_due_ms() == int(lapsed.timestamp() * 1000) + 1
    assert membership.on_due(rec, space, lapsed + timedelta(milliseconds=1)) == []
    assert rec.next_due_ms() is None  # nothing can change by time alone any more


def test_reasons_name_what_happened() -> None:
    space = build_space()
    rec = MemberRecord()
    out = membership.on_profile(rec, space, {"status": "accepted", "email": "a@acme.com"}, NOW)
    assert [(t.group_id, t.reason) for t in out] == [("acme", "conditions_met")]
    out = membership.on_command(rec, space, "member_added", "staff", 200, NOW)
    assert [(t.group_id, t.added, t.reason) for t in out] == [
        ("staff", True, "manual"),
        ("vip", True, "conditions_met"),
        ("acme-vip", True, "conditions_met"),
    ]
    out = membership.on_command(rec, space, "blacklisted", "vip", 201, NOW)
    assert [(t.group_id, t.reason) for t in out] == [
        ("vip", "blacklisted"),
        ("acme-vip", "conditions_unmet"),
    ]
    out = membership.on_profile(rec, space, {"status": "declined"}, NOW)
    assert [(t.group_id, t.reason) for t in out] == [("acme", "ineligible_status")]
    out = membership.on_erase(rec, space, NOW)
    assert [(t.group_id, t.reason) for t in out] == [("staff", "member_deleted")]
    # An older command (lower seq) arriving late is a duplicate: ignored.
    assert membership.on_command(rec, space, "member_added", "staff", 150, NOW) == []


def test_a_change_while_a_tick_is_late_still_ends_exact() -> None:
    """The field changes after its due instant but before its tick: the exit is not lost."""
    space, rec = recently_active()
    late = datetime(2026, 11, 28, tzinfo=UTC)  # "recent" ended on 11-27; no tick yet
    # the new value is out of "recent" too: comparing old and new at `late` shows no flip
    out = membership.on_profile(rec, space, {"last_active_at": "2026-10-01T00:00:00Z"}, late)
    assert [(t.group_id, t.added) for t in out] == [("recent", False)]
    assert rec.groups() == expected_groups(rec, space, late)


def test_a_new_group_gets_due_instants_only_where_time_can_change_its_verdict() -> None:
    """Backfilling a group gives a member no due instant while another trigger settles the
    verdict (here: not VIP); the change that unsettles it schedules the exit."""
    definitions = Definitions()
    space, rec = definitions.space, MemberRecord()
    membership.on_profile(rec, space, {"status": "accepted"}, NOW)
    membership.on_value(rec, space, "property", "joined", "2026-11-20T00:00:00Z", NOW)
    assert definitions.apply(TRIAL) == "group_created"
    assert membership.on_group(rec, space, "group_created", "trial", NOW) == []
    assert "property.joined" not in rec.dues  # not VIP: time alone changes nothing
    out = membership.on_value(rec, space, "property", "vip", True, NOW)
    assert ("trial", True) in [(t.group_id, t.added) for t in out]
    ends = datetime(2026, 12, 4, tzinfo=UTC)  # joined + 14 days
    assert rec.dues["property.joined"] == membership._us(ends) + 1
    out = membership.on_due(rec, space, ends + timedelta(milliseconds=1))
    assert [(t.group_id, t.added, t.reason) for t in out] == [("trial", False, "conditions_unmet")]


def test_a_new_group_that_can_change_with_time_is_scheduled_by_its_backfill() -> None:
    definitions = Definitions()
    space, rec = definitions.space, MemberRecord()
    membership.on_profile(rec, space, {"status": "accepted"}, NOW)
    membership.on_value(rec, space, "property", "vip", True, NOW)
    membership.on_value(rec, space, "property", "joined", "2026-11-20T00:00:00Z", NOW)
    assert "property.joined" not in rec.dues  # no group reads it yet
    assert definitions.apply(TRIAL) == "group_created"
    out = membership.on_group(rec, space, "group_created", "trial", NOW)
    assert [(t.group_id, t.added) for t in out] == [("trial", True)]
    assert rec.dues["property.joined"] == membership._us(datetime(2026, 12, 4, tzinfo=UTC)) + 1


def test_a_new_group_brings_a_pending_due_instant_forward() -> None:
    """Last active 3 days ago: the field's due is "recent"'s exit in 4 days; a new group that
    ends in 2 days (within_last 2 days of 11-22) moves it forward."""
    definitions = Definitions()
    space, rec = definitions.space, MemberRecord()
    membership.on_profile(
        rec, space, {"status": "accepted", "last_active_at": "2026-11-22T00:00:00Z"}, NOW
    )
    assert (
        rec.dues["profile.last_active_at"] == membership._us(datetime(2026, 11, 29, tzinfo=UTC)) + 1
    )
    assert definitions.apply(ACTIVE_NOW) == "group_created"
    out = membership.on_group(rec, space, "group_created", "active-now", NOW)
    assert [(t.group_id, t.added) for t in out] == [("active-now", True)]
    ends = datetime(2026, 11, 24, tzinfo=UTC)
    assert rec.dues["profile.last_active_at"] == membership._us(ends) + 1
    out = membership.on_due(rec, space, ends + timedelta(milliseconds=1))
    assert [(t.group_id, t.added) for t in out] == [("active-now", False)]
