"""``smartgroups preview``: who would be in a group, computed offline (contract §6).

::

    smartgroups preview --definitions DEFS.jsonl --members MEMBERS.jsonl [--group ID]
                        [--space SPACE] [--now TS]

``DEFS.jsonl`` holds ``group-changes`` events exactly as on the topic. Each is applied through the
worker's own parser and guards (:func:`~smartgroups.core.commands.parse_command`,
:meth:`~smartgroups.core.catalog.SpaceCatalog.apply`); a command the worker would reject stops
the preview with its code on stderr and exit status 2. ``MEMBERS.jsonl`` holds one snapshot per
line, ``{"space", "member_id", "profile", "properties", "answers", "groups"}``. The ids of the
members that would be in the group are printed one per line, in the order of the file.
:data:`EPILOG` (shown by ``--help``) is the user's description of both formats.

Decisions where the contract is silent:

* **Spaces**: every space in DEFS gets its own catalog, as on the worker. Only members of the
  group's space can match. ``--group`` is looked up in every space; if several spaces have it,
  ``--space`` picks one (otherwise an error). Without ``--group``, the group is the last one
  created in DEFS (in its space); it is an error if it was deleted later in the file.
* **Smart group**: members whose status is ``accepted``/``invited``/``pending`` and whose
  conditions are true at ``--now``, with ``groups`` taken from the snapshot as given.
  Blacklists are not known offline.
* **Static group**: the members whose snapshot ``groups`` contains the group (the explicit list
  is not in DEFS' member commands alone, and a snapshot is what the member is in now).
* **Inactive group** (deactivated in DEFS): nobody.
* A member id appearing on several lines: the last snapshot counts (printed at its first place).
* Snapshot fields ``profile``, ``properties``, ``answers`` default to ``{}`` and ``groups`` to
  ``[]`` when missing; when present they must be an object (a list of strings for ``groups``).
* **Relative instants** (:mod:`smartgroups.cli.relative`: ``"now"``, ``"now-10d"``,
  ``"now+2h"`` under a key ending in ``_at``) are resolved against ``--now`` in both files, so
  example files never go stale and a preview at another ``--now`` moves them along. ``--now``
  itself may be relative too (``now+30d``), counted from the real clock.
* Blank lines are ignored. A line that is not a JSON object or lacks what it needs stops the
  preview with the file and line number and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from smartgroups.cli import query
from smartgroups.cli.relative import relative_instant, resolve_relative
from smartgroups.core.catalog import Group, SpaceCatalog
from smartgroups.core.commands import parse_command
from smartgroups.core.fields import is_eligible
from smartgroups.core.membership import verdict
from smartgroups.core.snapshot import MemberSnapshot
from smartgroups.core.space import GroupEntry
from smartgroups.core.values import parse_instant
from smartgroups.errors import PreviewError, RuleError

EPILOG = """\
DEFS.jsonl: group-changes events, one JSON object per line, exactly as on the
topic (property.defined, question.defined, group.created, group.deactivated ...).
They are applied in order with the worker's own rules; a command the worker
would reject stops the preview with its code, e.g.
  smartgroups: defs.jsonl:8: group.updated rejected: triggers_immutable: ...
and exit status 2.

MEMBERS.jsonl: one member snapshot per line:
  {"space": "demo", "member_id": "m1",
   "profile": {"first_name": "Ada", "email": "ada@acme.com",
               "status": "accepted", "last_active_at": "now-2d"},
   "properties": {"vip": true}, "answers": {"sport": "tennis"},
   "groups": ["coaches"]}
  space, member_id   required
  profile            profile fields as on member-changes (default {})
  properties         property values by property id (default {})
  answers            form answers by question id (default {})
  groups             ids of the groups the member is in now (default []);
                     a static group's members are the snapshots that list it
  A member id on several lines: the last line counts.

Dates: RFC 3339 ("2026-11-20T09:00:00Z", "2026-11-20") or relative instants
under any key ending in _at: "now", "now-10d", "now+2h" (units m, h, d, w),
resolved against --now, so example files never go stale.

Output: the ids of the members of the group's space that would be in it at
--now, one per line, in file order: eligible status (accepted, invited,
pending) and conditions true. Blacklists are not known offline; a deactivated
group has nobody. The group is --group, else the last group created in DEFS.

Exit status: 0 printed (maybe nothing), 2 a rejected definition, an unreadable
or malformed line (file:line named), an unknown group or a bad --now.

Example:
  smartgroups preview --definitions examples/group-changes.jsonl \\
      --members examples/members.jsonl --group acme-vip
"""
"""What ``smartgroups preview --help`` shows after the options: the two file formats."""


def add_parser(commands: Any) -> None:
    """Register ``preview`` on the ``smartgroups`` sub-command parser."""
    parser = commands.add_parser(
        "preview",
        help="list the members a group would have, offline",
        description="Apply group-changes definitions and print the ids of the member\n"
        "snapshots that would be in the group, offline, with the worker's own rules.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--definitions", metavar="DEFS.jsonl", help="offline: the definitions")
    parser.add_argument("--members", metavar="MEMBERS.jsonl", help="offline: member snapshots")
    parser.add_argument("--group", metavar="ID", help="default: the last group created in DEFS")
    parser.add_argument("--space", help="the space of --group when several spaces have it")
    parser.add_argument(
        "--now",
        metavar="TS",
        help="RFC 3339 instant, or relative like now+30d (default: now)",
    )
    live = parser.add_argument_group(
        "live preview: over the workers' live members, with the query API"
    )
    live.add_argument("--live", metavar="SPACE", help="preview in SPACE over the live members")
    live.add_argument(
        "--conditions", type=Path, metavar="FILE", help="the condition tree (JSON; - for stdin)"
    )
    live.add_argument("--blacklist", metavar="IDS", help="comma-separated member ids to leave out")
    query.add_filter_flags(live)
    query.add_api_flags(parser)


def run(args: argparse.Namespace) -> int:
    """Print the ids of the members that would be in the group; 0 on success.

    Raises :class:`PreviewError` (exit status 2) for unreadable input or a rejected command.
    """
    if args.live:
        return query.run_live_preview(args)
    if not args.definitions or not args.members:
        raise PreviewError(
            "preview needs --definitions and --members (offline), or --live SPACE --conditions "
            "FILE (over the workers' live members)"
        )
    now = _now(args.now)
    definitions = load_definitions(args.definitions, now)
    space, group = definitions.target(args.group, args.space)
    for member_id in members_in(group, space, read_members(args.members, now), now):
        sys.stdout.write(f"{member_id}\n")
    sys.stdout.flush()
    return 0


@dataclass(slots=True)
class Definitions:
    """The catalogs of the spaces in DEFS and the last group created (space, id)."""

    catalogs: dict[str, SpaceCatalog]
    last_created: tuple[str, str] | None

    def target(self, group_id: str | None, space: str | None) -> tuple[str, Group]:
        """The group to preview and its space (see the module docstring)."""
        if group_id is None:
            if self.last_created is None:
                raise PreviewError("no group is created in the definitions; pass --group")
            last_space, group_id = self.last_created
            if space is not None and space != last_space:
                raise PreviewError(
                    f"the last group created in the definitions is in space '{last_space}'; "
                    "pass --group"
                )
            space = last_space
        spaces = [space] if space is not None else sorted(self.catalogs)
        found = [s for s in spaces if group_id in self._groups(s)]
        if not found:
            where = f" in space '{space}'" if space is not None else ""
            raise PreviewError(f"group '{group_id}' does not exist{where} after the definitions")
        if len(found) > 1:
            raise PreviewError(
                f"group '{group_id}' exists in spaces {', '.join(found)}; pass --space"
            )
        return found[0], self._groups(found[0])[group_id]

    def _groups(self, space: str) -> Any:
        catalog = self.catalogs.get(space)
        return catalog.groups if catalog is not None else {}


def load_definitions(path: str, now: datetime | None = None) -> Definitions:
    """Apply every ``group-changes`` event of ``path``; stop at the first rejected one.

    Relative ``*_at`` instants are resolved against ``now`` (default: the real clock).
    """
    catalogs: dict[str, SpaceCatalog] = {}
    last_created: tuple[str, str] | None = None
    for line, event in _objects(path, now):
        space, kind = event.get("space"), event.get("type")
        if not isinstance(space, str) or not isinstance(kind, str):
            raise PreviewError(f"{path}:{line}: 'type' and 'space' are required strings")
        catalog = catalogs.setdefault(space, SpaceCatalog())
        try:
            outcome = catalog.apply(parse_command(event))
        except RuleError as error:
            raise _rejected(path, line, kind, error.code, error.message) from None
        if not outcome.accepted:
            raise _rejected(path, line, kind, outcome.code or "invalid", outcome.message or "")
        if outcome.effect == "group_created" and outcome.group is not None:
            last_created = (space, outcome.group.group_id)
    return Definitions(catalogs, last_created)


def read_members(
    path: str, now: datetime | None = None
) -> Iterator[tuple[str, str, MemberSnapshot]]:
    """``(space, member_id, snapshot)`` for every line of ``path``.

    Relative ``*_at`` instants are resolved against ``now`` (default: the real clock).
    """
    for line, doc in _objects(path, now):
        space, member_id = doc.get("space"), doc.get("member_id")
        if not isinstance(space, str) or not isinstance(member_id, str):
            raise PreviewError(f"{path}:{line}: 'space' and 'member_id' are required strings")
        parts: dict[str, dict[str, Any]] = {}
        for name in ("profile", "properties", "answers"):
            value = doc.get(name)
            if value is None:
                value = {}
            if not isinstance(value, dict):
                raise PreviewError(f"{path}:{line}: '{name}' must be an object")
            parts[name] = value
        groups = doc.get("groups")
        if groups is None:
            groups = []
        if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
            raise PreviewError(f"{path}:{line}: 'groups' must be a list of group ids")
        snapshot = MemberSnapshot(
            parts["profile"], parts["properties"], parts["answers"], frozenset(groups)
        )
        yield space, member_id, snapshot


def members_in(
    group: Group,
    space: str,
    members: Iterator[tuple[str, str, MemberSnapshot]],
    now: datetime,
) -> list[str]:
    """Ids of the snapshots of ``space`` that would be in ``group`` at ``now``."""
    latest: dict[str, MemberSnapshot] = {}
    for member_space, member_id, snapshot in members:
        if member_space == space:
            latest[member_id] = snapshot
    entry = GroupEntry(group, seq=0, created_seq=0)  # compiled once for every snapshot
    return [member_id for member_id, snap in latest.items() if is_member(entry, snap, now)]


def is_member(entry: GroupEntry, member: MemberSnapshot, now: datetime) -> bool:
    """Membership as far as a snapshot tells: the worker's own verdict
    (:func:`smartgroups.core.membership.verdict`; an inactive group holds nobody), with the
    static list read from the snapshot's ``groups`` and no blacklist (none is known offline)."""
    return verdict(
        entry,
        member,
        now,
        eligible=is_eligible(member.profile),
        static_on=entry.group.group_id in member.groups,
        blacklisted=False,
    )


def _objects(path: str, now: datetime | None) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` for every non-blank line of a JSON-lines file, relative
    instants resolved against ``now``."""
    now = datetime.now(UTC) if now is None else now
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed below, lines streamed
    except OSError as error:
        raise PreviewError(f"cannot read {path}: {error.strerror or error}") from None
    with handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                doc = orjson.loads(raw)
            except orjson.JSONDecodeError as error:
                raise PreviewError(f"{path}:{number}: not valid JSON ({error})") from None
            if not isinstance(doc, dict):
                raise PreviewError(f"{path}:{number}: expected a JSON object")
            yield number, resolve_relative(doc, now)


def _rejected(path: str, line: int, kind: str, code: str, message: str) -> PreviewError:
    return PreviewError(f"{path}:{line}: {kind} rejected: {code}: {message}")


def _now(text: str | None) -> datetime:
    real = datetime.now(UTC)
    if text is None:
        return real
    instant = parse_instant(relative_instant(text, real) or text)
    if instant is None:
        raise PreviewError(
            f"--now: not an RFC 3339 timestamp or relative instant (now-3d): {text!r}"
        )
    return instant
