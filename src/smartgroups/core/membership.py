"""Membership decisions: from a member's record and a space's groups to versioned transitions.

This is the contract's section 1 as code. A member *m* is in group *g* exactly when *g* exists
and is active and

* *g* is static and the last membership command for the pair (newer than *g*'s creation) was
  ``group.member_added``; or
* *g* is smart, *m*'s status is eligible (``accepted``/``invited``/``pending``), *m* is not
  blacklisted in *g* (by a command newer than *g*'s creation), and *g*'s conditions hold for *m*
  at ``now`` — with ``groups`` being the set of groups *m* is in at that moment.

:func:`decide` re-evaluates the given start groups in dependency order, cascading into groups
whose ``groups`` triggers name a group whose verdict flipped, updates the record's pairs and
returns one :class:`Transition` per flip with its ``version`` (1, 2, 3 … per pair, added first)
and ``reason``. Only flips are returned: re-deciding an unchanged member returns nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from smartgroups.core.conditions import next_change
from smartgroups.core.matching import Shortcut, cascade
from smartgroups.core.record import Command, MemberRecord, Pair, StoredState
from smartgroups.core.snapshot import MemberSnapshot
from smartgroups.core.space import GroupEntry, SpaceGroups
from smartgroups.core.values import epoch_ms


@dataclass(frozen=True, slots=True)
class Transition:
    """One membership change of the member: ``added`` or removed, its ``version`` and ``reason``."""

    group_id: str
    added: bool
    version: int
    reason: str


@dataclass(frozen=True, slots=True)
class Primary:
    """The group a definition command acted on, with the reasons its flip carries."""

    group_id: str
    added_reason: str
    removed_reason: str


def decide(
    record: MemberRecord,
    space: SpaceGroups,
    start: Iterable[str],
    now: datetime,
    *,
    primary: Primary | None = None,
    erased: bool = False,
) -> list[Transition]:
    """Re-evaluate ``start`` (and what cascades from it) for ``record``; apply and return flips.

    ``erased`` marks the decision that follows ``member.deleted`` (every removal's reason is
    ``member_deleted``).
    """
    now_ms = epoch_ms(now)
    # keyed by the set's identity: hashing a member's ~1,000 group ids costs more than the rest
    # of a snapshot (each snapshot holds its set, so no id is reused while the dict lives)
    snapshots: dict[int, MemberSnapshot] = {}

    def snapshot(groups_now: frozenset[str]) -> MemberSnapshot:
        snap = snapshots.get(id(groups_now))
        if snap is None:
            snap = MemberSnapshot(record.profile, record.properties, record.answers, groups_now)
            snapshots[id(groups_now)] = snap
        return snap

    eligible = record.eligible
    entries = space.entries
    static, blacklist = record.static, record.blacklist
    timed: list[str] = []  # the decided smart groups with time-relative triggers

    def decide_one(group_id: str, groups_now: frozenset[str]) -> bool:
        entry = entries.get(group_id)
        if entry is None:
            return False
        blacklisted = bool(blacklist) and _on(blacklist.get(group_id), entry)
        evaluated = entry.live and entry.predicate is not None and eligible and not blacklisted
        if evaluated and entry.time_fields:
            timed.append(group_id)
        return verdict(
            entry,
            snapshot(groups_now),
            now,
            eligible=eligible,
            static_on=_on(static.get(group_id), entry),
            blacklisted=blacklisted,
        )

    start_ids = list(dict.fromkeys(start))
    current = record.groups()
    # the live smart groups without a blacklist command are decided by the cascade itself
    shortcut = Shortcut(snapshot(current), now, eligible, blacklist, timed)
    flips = cascade(space.index, start_ids, decide_one, current, shortcut)
    transitions: list[Transition] = []
    for group_id, member in flips:
        pair = record.pairs.get(group_id)
        if pair is not None and pair.member == member:
            continue
        version = (pair.version if pair is not None else 0) + 1
        record.pairs[group_id] = Pair(member, version, now_ms)
        reason = _reason(record, space, group_id, member, primary, erased)
        transitions.append(Transition(group_id, member, version, reason))
    if timed:
        decided = [entries[group_id] for group_id in timed]
        _ensure_dues(record, space, decided, lambda: snapshot(record.groups()), now)
    return transitions


def verdict(
    entry: GroupEntry,
    member: MemberSnapshot,
    now: datetime,
    *,
    eligible: bool,
    static_on: bool,
    blacklisted: bool,
) -> bool:
    """Whether the member is in the group at ``now``: the contract's definition (section 1).

    A static group: it is live (exists, active) and the pair's last command was an add
    (``static_on``). A smart group: it is live, the member's status is ``eligible``, it is not
    ``blacklisted`` in the group, and the conditions are true on ``member`` (whose ``groups``
    are the groups it is in at that moment). The one verdict: the worker's decisions and the
    offline preview both use it.
    """
    if not entry.live:
        return False
    predicate = entry.predicate
    if predicate is None:  # a static group (or a smart group without conditions)
        return entry.group.kind == "static" and static_on
    if not eligible or blacklisted:
        return False
    return predicate(member, now)


def rescan_changes_nothing(
    state: StoredState, space: SpaceGroups, group_id: str, now: datetime
) -> bool:
    """Whether :func:`on_group` for ``group_id`` would leave the stored member as it is.

    True when the group's :func:`verdict` is the member's membership now (no transition, hence
    no cascade) and the member's due instants stay as they are (:func:`_dues_stay`). A backfill
    skips such members without building their records; every other member goes through
    :func:`on_group`.
    """
    entry = space.get(group_id)
    if entry is None:
        return False
    snap = state.snapshot()
    eligible = state.eligible
    blacklisted = _on(state.blacklist(group_id), entry)
    member = verdict(
        entry,
        snap,
        now,
        eligible=eligible,
        static_on=_on(state.static(group_id), entry),
        blacklisted=blacklisted,
    )
    if member != state.is_member(group_id):
        return False
    evaluated = entry.live and entry.predicate is not None and eligible and not blacklisted
    return _dues_stay(state, space, entry, snap, now, evaluated=evaluated)


def _dues_stay(
    state: StoredState,
    space: SpaceGroups,
    entry: GroupEntry,
    snap: MemberSnapshot,
    now: datetime,
    *,
    evaluated: bool,
) -> bool:
    """Whether :func:`on_group` without a transition leaves the stored due instants as they
    are: the two steps it takes for a group with time-relative triggers, computed on the
    stored state.

    * :func:`decide` gives a due instant to a field of the group's triggers that has none when
      the group was evaluated, the field has a next flip and the group's verdict can change
      with time (:func:`_ensure_dues`);
    * :func:`on_group` computes a due instant still to come again (:func:`_reschedule`).
    """
    dues = state.dues
    index = space.index
    if evaluated and entry.time_fields:
        needed = any(
            field not in dues and index.next_flip(field, state.value(field), now) is not None
            for field in entry.time_fields
        )
        conditions = entry.group.conditions
        assert conditions is not None  # evaluated: a smart group with a predicate
        if needed and next_change(conditions, snap, now) is not None:
            return False
    now_us = _us(now)
    for field in index.time_fields(entry.group.group_id):
        at = dues.get(field)
        if at is not None and at > now_us:
            due = index.next_flip(field, state.value(field), now)
            if due is None or _us(due) != at:
                return False
    return True


# -- one function per kind of input ------------------------------------------------------------


def on_profile(
    record: MemberRecord, space: SpaceGroups, patch: Mapping[str, object], now: datetime
) -> list[Transition]:
    """``member.upserted``: apply the partial profile, re-evaluate what it can affect.

    A change of eligibility (status) affects every smart group: becoming eligible evaluates all
    of them, becoming ineligible removes the member from those it is in.
    """
    was_eligible = record.eligible
    before = {f"profile.{name}": record.profile.get(name) for name in patch}
    changed = record.patch_profile(patch)
    if not changed:
        return []
    values = {f: (before[f], record.value(f)) for f in changed}
    start = _affected(record, space, values, now)
    if record.eligible != was_eligible:
        start.update(space.smart_groups())
        start.update(record.groups())
    transitions = decide(record, space, start, now)
    _reschedule(record, space, values, now)
    return transitions


def on_value(
    record: MemberRecord, space: SpaceGroups, kind: str, key: str, value: object, now: datetime
) -> list[Transition]:
    """``property.set``/``unset`` (``kind="property"``) or ``answer.*`` (``kind="answer"``)."""
    field = f"{kind}.{key}"
    before = record.value(field)
    if not record.set_value(kind, key, value):
        return []
    changes = {field: (before, record.value(field))}
    transitions = decide(record, space, _affected(record, space, changes, now), now)
    _reschedule(record, space, changes, now)
    return transitions


def on_erase(record: MemberRecord, space: SpaceGroups, now: datetime) -> list[Transition]:
    """``member.deleted``: leave every group (``member_deleted``) and forget the member."""
    groups_in = record.groups()
    record.erase()
    return decide(record, space, groups_in, now, erased=True)


MEMBER_COMMANDS: Mapping[str, tuple[str, bool, str, str]] = {
    # effect: (which list, command on, reason if added, reason if removed)
    "member_added": ("static", True, "manual", "manual"),
    "member_removed": ("static", False, "manual", "manual"),
    "blacklisted": ("blacklist", True, "unblacklisted", "blacklisted"),
    "unblacklisted": ("blacklist", False, "unblacklisted", "blacklisted"),
}


def on_command(
    record: MemberRecord,
    space: SpaceGroups,
    effect: str,
    group_id: str,
    seq: int,
    now: datetime,
) -> list[Transition]:
    """A static-membership or blacklist command (``effect`` of :data:`MEMBER_COMMANDS`).

    Commands reach a member in ``seq`` order; one not newer than the last applied to the member
    (erased or not) is a duplicate: ignored.
    """
    which, on, added_reason, removed_reason = MEMBER_COMMANDS[effect]
    if seq <= record.command_seq:
        return []
    record.command_seq = seq
    commands = record.static if which == "static" else record.blacklist
    commands[group_id] = Command(on, seq)
    primary = Primary(group_id, added_reason, removed_reason)
    return decide(record, space, [group_id], now, primary=primary)


GROUP_EFFECTS: Mapping[str, tuple[str, str]] = {
    # effect: (reason if added, reason if removed)
    "group_created": ("group_created", "conditions_unmet"),
    "group_activated": ("group_activated", "conditions_unmet"),
    "group_deactivated": ("group_activated", "group_deactivated"),
    "group_deleted": ("group_created", "group_deleted"),
    "group_edited": ("conditions_met", "conditions_unmet"),
}
"""Group lifecycle effects that re-decide every member of the space (a scan)."""


def on_group(
    record: MemberRecord, space: SpaceGroups, effect: str, group_id: str, now: datetime
) -> list[Transition]:
    """Re-decide ``group_id`` for one member after a group lifecycle change (a scan step)."""
    added_reason, removed_reason = GROUP_EFFECTS[effect]
    primary = Primary(group_id, added_reason, removed_reason)
    transitions = decide(record, space, [group_id], now, primary=primary)
    # The fields with no due instant got one if the group can change with time (decide); a
    # due instant still to come was computed without this group's triggers: compute it again.
    # (One that has passed stays for its tick.)
    now_us = _us(now)
    for field in space.index.time_fields(group_id):
        at = record.dues.get(field)
        if at is not None and at > now_us:
            _reschedule(record, space, (field,), now)
    return transitions


def on_due(record: MemberRecord, space: SpaceGroups, now: datetime) -> list[Transition]:
    """Time passed: re-evaluate the groups whose due instant has come (``cause.kind=time``).

    For each field whose due instant is at or before ``now``, the groups using a time-relative
    trigger on it that changed since (for the member's value) are re-decided, and the field
    gets its next due instant.
    """
    now_us = _us(now)
    due = {f: (record.value(f), _since(at)) for f, at in record.dues.items() if at <= now_us}
    if not due:
        return []
    start = space.index.elapsed(due, now)
    transitions = decide(record, space, start, now) if start else []
    _reschedule(record, space, due, now)
    return transitions


def _on(command: Command | None, entry: GroupEntry) -> bool:
    return command is not None and command.on and command.seq >= entry.created_seq


def _reason(
    record: MemberRecord,
    space: SpaceGroups,
    group_id: str,
    added: bool,
    primary: Primary | None,
    erased: bool,
) -> str:
    if primary is not None and primary.group_id == group_id:
        return primary.added_reason if added else primary.removed_reason
    if added:
        return "conditions_met"
    if erased:
        return "member_deleted"
    entry = space.get(group_id)
    if entry is None or entry.deleted:
        return "group_deleted"
    if not entry.group.active:
        return "group_deactivated"
    if entry.group.kind == "static":
        return "manual"
    if not record.eligible:
        return "ineligible_status"
    if _on(record.blacklist.get(group_id), entry):
        return "blacklisted"
    return "conditions_unmet"


def _affected(
    record: MemberRecord,
    space: SpaceGroups,
    changes: Mapping[str, tuple[object, object]],
    now: datetime,
) -> set[str]:
    """The groups a change of field values can flip (before the record's dues are updated).

    :meth:`GroupIndex.affected` assumes each membership reflects the old values *as of now*.
    A changed field whose due instant has passed (its tick has not come yet) breaks that for
    the groups whose time-relative triggers on it changed meanwhile: they are added.
    """
    start = space.index.affected(changes, record.groups(), now)
    dues = record.dues
    if dues:
        now_us = _us(now)
        late = {
            field: (old, _since(at))
            for field, (old, _) in changes.items()
            if (at := dues.get(field)) is not None and at <= now_us
        }
        if late:
            start |= space.index.elapsed(late, now)
    return start


def _ensure_dues(
    record: MemberRecord,
    space: SpaceGroups,
    decided: Iterable[GroupEntry],
    member: Callable[[], MemberSnapshot],
    now: datetime,
) -> None:
    """Give a due instant to each time-relative field of the decided conditions that has none,
    unless the verdict of every such condition reading it cannot change with time alone.

    ``decided`` holds the decided smart groups that have time fields; ``member()`` is the
    member's snapshot after the decision (built only if a field needs it).

    A field is left without a due instant while each group whose time-relative triggers read it
    is decided the same at every instant, the member's values as they are (``next_change`` is
    None: another trigger settles it, e.g. an ``all`` with a false one). That verdict can only
    start to depend on time through an input that flips another trigger of the group the way
    that can change the member's membership (so :meth:`GroupIndex.affected` decides it), a
    change of the field itself (which always gets its due instant), a named group's flip (the
    cascade decides it) or a definition or command that decides the group: every one of them
    decides the group, and comes here. This is what spares a new group's backfill a due instant
    (a record and an index write) for every member it can never match.
    """
    dues = record.dues
    pending: dict[str, datetime] = {}  # field -> its due instant, needed by a decided group
    snap: MemberSnapshot | None = None
    for entry in decided:
        needed: dict[str, datetime] = {}
        for field in entry.time_fields:
            if field not in dues and field not in pending:
                due = space.index.next_flip(field, record.value(field), now)
                if due is not None:
                    needed[field] = due
        if not needed:
            continue
        if snap is None:
            snap = member()
        conditions = entry.group.conditions
        assert conditions is not None  # a smart group with a predicate
        if next_change(conditions, snap, now) is not None:
            pending.update(needed)
    for field, due in pending.items():
        dues[field] = _us(due)


def _reschedule(
    record: MemberRecord, space: SpaceGroups, fields: Iterable[str], now: datetime
) -> None:
    """Set each field's due instant: the next change of a time-relative trigger after ``now``."""
    dues = record.dues
    for field in fields:
        due = space.index.next_flip(field, record.value(field), now)
        if due is None:
            dues.pop(field, None)
        else:
            dues[field] = _us(due)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _us(instant: datetime) -> int:
    """Epoch microseconds, exactly (datetime's resolution)."""
    return (instant - _EPOCH) // _MICROSECOND


def _since(due_us: int) -> datetime:
    """The last instant before a due instant: time-relative truths are unchanged up to it."""
    return _EPOCH + timedelta(microseconds=due_us - 1)
