"""Why a member is in a group or not: the trace of a condition tree, and the whole explanation.

:func:`trace` evaluates every node of a tree on a member at ``now`` (no short-circuit, so each
node has its own answer) and returns a document that mirrors the tree's wire JSON (as
:func:`~smartgroups.core.conditions.render` writes it), each node with ``"result"``; a trigger
node also has ``"actual"``, the member's value of the field (``null`` when missing; the
``groups`` field: the sorted ids of the groups the member is in).

The root's ``result`` is, by construction, the evaluator's verdict: every trigger is decided by
the same compiled test the worker uses (the native program where it is built), and ``all`` /
``any`` / ``not`` combine their children's results exactly as the evaluator does (``all: []``
holds, ``any: []`` does not). A property test holds it to :func:`evaluate` on random trees and
members, missing and wrong-typed values and time-relative triggers included.

:func:`explain` is the query API's answer for one (group, member) pair (contract section 7):
``{"in", "kind", "active", "eligible", "status", "blacklisted", "manual" (static),
"conditions" (smart)}``. Decisions where the contract is silent:

* ``in`` is the member's *current* membership as the processor applied it (the one the member
  listings show), not a fresh verdict; ``conditions`` is evaluated at ``now``. They can differ
  for the short time a change has not reached the member yet (a backfill under way, a
  time-relative trigger due within the timer's 60 s).
* ``manual`` is whether the pair's last static command (at or after the group's creation, as
  the decisions count it) was an add; ``blacklisted`` whether its last blacklist command was a
  blacklisting. Both are false on a group of the other kind.
* ``status`` is the profile's status as given (``null`` when missing).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from smartgroups.core.conditions.evaluate import compile_condition, reader
from smartgroups.core.conditions.model import All, AnyOf, Condition, Not, Trigger
from smartgroups.core.conditions.render import render
from smartgroups.core.record import Command, MemberRecord
from smartgroups.core.snapshot import MemberSnapshot
from smartgroups.core.space import GroupEntry

Trace = dict[str, Any]
"""A node of a trace: the node's wire JSON plus ``result`` (and ``actual`` on triggers)."""


def trace(cond: Condition, member: MemberSnapshot, now: datetime) -> Trace:
    """The trace of ``cond`` on ``member`` at ``now`` (see the module docstring)."""
    if isinstance(cond, Trigger):
        node: Trace = dict(render(cond))  # type: ignore[call-overload]
        node["actual"] = _plain(reader(cond.field)(member))
        node["result"] = compile_condition(cond)(member, now)
        return node
    if isinstance(cond, Not):
        child = trace(cond.child, member, now)
        return {"not": child, "result": not child["result"]}
    children = [trace(c, member, now) for c in cond.children]
    if isinstance(cond, All):
        return {"all": children, "result": all(c["result"] for c in children)}
    assert isinstance(cond, AnyOf)
    return {"any": children, "result": any(c["result"] for c in children)}


def _plain(value: object) -> object:
    """``value`` as JSON-ready data: sets become sorted lists, tuples lists; None stays null."""
    if isinstance(value, frozenset | set):
        return sorted(value, key=str)
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    return value


def _on(command: Command | None, entry: GroupEntry) -> bool:
    """The command is in force: an add (or blacklisting) at or after the group's creation."""
    return command is not None and command.on and command.seq >= entry.created_seq


def explain(entry: GroupEntry, record: MemberRecord, now: datetime) -> dict[str, Any]:
    """The query API's explanation of ``record``'s membership in ``entry``'s group at ``now``."""
    group = entry.group
    pair = record.pairs.get(group.group_id)
    answer: dict[str, Any] = {
        "in": pair is not None and pair.member,
        "kind": group.kind,
        "active": entry.live,
        "eligible": record.eligible,
        "status": status_of(record.profile),
        "blacklisted": group.kind == "smart" and _on(record.blacklist.get(group.group_id), entry),
        "manual": group.kind == "static" and _on(record.static.get(group.group_id), entry),
    }
    if group.kind == "smart" and group.conditions is not None:
        snapshot = snapshot_of(record)
        answer["conditions"] = trace(group.conditions, snapshot, now)
    return answer


def snapshot_of(record: MemberRecord, groups: frozenset[str] | None = None) -> MemberSnapshot:
    """The view of ``record`` that conditions are evaluated on (``groups``: its groups now)."""
    return MemberSnapshot(
        record.profile,
        record.properties,
        record.answers,
        record.groups() if groups is None else groups,
    )


def status_of(profile: Mapping[str, object]) -> str | None:
    """The profile's status when it is a text, else None."""
    status = profile.get("status")
    return status if isinstance(status, str) else None


def member_exists(record: MemberRecord) -> bool:
    """Whether the query API knows the member: its record holds a profile field, a property
    value, an answer or a current membership. An erased member does not exist (its record keeps
    only counters), nor does one only named by static or blacklist commands."""
    return bool(
        record.profile or record.properties or record.answers or bool(record.pairs.member_of())
    )
