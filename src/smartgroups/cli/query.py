"""``smartgroups members``, ``smartgroups segment``, ``smartgroups explain`` and ``smartgroups
preview --live``: the query API (contract section 7) for people at a terminal.

They talk to any worker's HTTP address (``--url``, default ``http://127.0.0.1:PORT`` with
``SMARTGROUPS_WEB_PORT``), with the bearer token of ``SMARTGROUPS_API_TOKEN`` when set (from the
environment only: a flag would show in ``ps``). They print readable tables, or the API's JSON
with ``--json``. A ``503`` (the workers are rebalancing) is retried as ``Retry-After`` says for
up to :data:`RETRY_FOR` seconds; any other error is one line, ``smartgroups: CODE: message
(fix)``, exit status 2.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from types import SimpleNamespace
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from smartgroups.errors import UsageError
from smartgroups.settings import Settings

RETRY_FOR = 20.0
"""Seconds a command keeps retrying while the workers answer 503."""

_FIXES = {
    "unauthorized": "set SMARTGROUPS_API_TOKEN to a token of the worker's tokens file",
    "space_not_found": "check the space id, and that your token covers it",
    "group_not_found": "check the group id: `smartgroups members` needs an existing group",
    "member_not_found": "check the member id",
    "segment_set_not_found": "check the set id: `smartgroups segment` needs a defined set",
    "invalid": "correct the option named",
    "unknown_reference": "define the property, question or group first, or fix its id",
    "unavailable": "the workers are rebalancing or restoring; retry in a moment",
}


def add_api_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("query API")
    group.add_argument(
        "--url",
        help="a worker's HTTP address (default http://127.0.0.1:SMARTGROUPS_WEB_PORT); the "
        "token comes from SMARTGROUPS_API_TOKEN",
    )
    group.add_argument("--json", action="store_true", help="print the API's JSON answer")


def add_filter_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--q", help="casefolded substring of the name or email")
    parser.add_argument("--status", help="comma-separated statuses (any of)")
    parser.add_argument("--role", help="comma-separated roles (any of)")
    parser.add_argument(
        "--limit", type=int, default=50, help="members to show (default 50; --all for every one)"
    )
    parser.add_argument("--all", action="store_true", help="walk every page")


def add_members_parser(commands: Any) -> None:
    members = commands.add_parser(
        "members",
        help="list a group's members from the workers' live state",
        description="List a group's current members, alphabetically, from any worker.",
    )
    members.add_argument("space")
    members.add_argument("group")
    members.add_argument("--blacklist", action="store_true", help="list the blacklist instead")
    add_filter_flags(members)
    add_api_flags(members)


def add_segment_parser(commands: Any) -> None:
    segment = commands.add_parser(
        "segment",
        help="list the members of one segment of a segment set",
        description="List, alphabetically, the members whose segment in the set is GROUP, or "
        "the set's fallback when GROUP is left out, from any worker.",
    )
    segment.add_argument("space")
    segment.add_argument("set")
    segment.add_argument("group", nargs="?", help="a group of the set (default: the fallback)")
    add_filter_flags(segment)
    add_api_flags(segment)


def add_explain_parser(commands: Any) -> None:
    explain = commands.add_parser(
        "explain",
        help="why a member is in a group or not, now",
        description="Draw why a member is in a group or not: each condition with ✓/✗ and the "
        "member's value.",
    )
    explain.add_argument("space")
    explain.add_argument("group")
    explain.add_argument("member")
    add_api_flags(explain)


class Client:
    """The query API of one worker, for the CLI (see the module docstring)."""

    def __init__(self, url: str, token: str | None) -> None:
        self.url = url.rstrip("/")
        self.token = token

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Client:
        settings = Settings.from_env(os.environ)
        token = settings.api_token.get_secret_value() if settings.api_token else None
        return cls(args.url or f"http://127.0.0.1:{settings.web_port}", token)

    def call(self, method: str, path: str, body: Any = None) -> Any:
        deadline = time.monotonic() + RETRY_FOR
        while True:
            status, retry_after, doc = self._once(method, path, body)
            if status == 200:
                return doc
            code = doc.get("code", "error") if isinstance(doc, dict) else "error"
            if status == 503 and time.monotonic() + retry_after < deadline:
                time.sleep(retry_after)
                continue
            message = doc.get("message", "") if isinstance(doc, dict) else str(doc)[:200]
            fix = _FIXES.get(code, f"the worker answered HTTP {status}")
            raise UsageError(f"{code}: {message} ({fix})")

    def _once(self, method: str, path: str, body: Any) -> tuple[int, float, Any]:
        data = None if body is None else orjson.dumps(body)
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, 0.0, orjson.loads(response.read())
        except urllib.error.HTTPError as error:
            retry = float(error.headers.get("Retry-After") or 1)
            try:
                return error.code, retry, orjson.loads(error.read())
            except orjson.JSONDecodeError:
                return error.code, retry, {"code": "error", "message": f"HTTP {error.code}"}
        except (urllib.error.URLError, OSError, orjson.JSONDecodeError) as exc:
            reason = getattr(exc, "reason", exc)
            raise UsageError(
                f"cannot reach a worker at {self.url}: {reason} "
                "(start `smartgroups worker`, or pass --url with a worker's HTTP address)"
            ) from None

    def pages(
        self, method: str, path: str, params: dict[str, Any], limit: int, every: bool
    ) -> tuple[list[dict[str, Any]], int]:
        """Members up to ``limit`` (every one with ``every``), and the total."""
        members: list[dict[str, Any]] = []
        cursor = None
        while True:
            size = 1000 if every else max(1, min(1000, limit - len(members)))
            every_param = {**params, "limit": size, "cursor": cursor}
            query = {k: v for k, v in every_param.items() if v or k == "segment"}
            if method == "GET":
                doc = self.call("GET", f"{path}?{urllib.parse.urlencode(query)}")
            else:
                doc = self.call("POST", path, query)
            members.extend(doc["members"])
            cursor = doc["next_cursor"]
            if cursor is None or (not every and len(members) >= limit):
                return members, int(doc["total"])


def _quote(part: str) -> str:
    return urllib.parse.quote(part, safe="")


def _filters(args: argparse.Namespace) -> dict[str, Any]:
    if args.limit < 1:
        raise UsageError(f"--limit {args.limit} must be at least 1 (or use --all)")
    return {"q": args.q, "status": args.status, "role": args.role}


def _print_json(doc: Any) -> None:
    sys.stdout.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n")


def print_members(members: list[dict[str, Any]], total: int, title: str) -> None:
    console = Console(highlight=False)
    table = Table(title=title, title_justify="left")
    for column in ("member", "name", "email", "role", "status", "since"):
        table.add_column(column, overflow="fold")
    for m in members:
        name = " ".join(p for p in (m.get("first_name"), m.get("last_name")) if p)
        since = (m.get("since") or "")[:19].replace("T", " ")
        cells = [m["member_id"], name, m.get("email"), m.get("role"), m.get("status"), since]
        table.add_row(*("" if c is None else str(c) for c in cells))
    console.print(table)
    more = f" (first {len(members)}; --all for every one)" if len(members) < total else ""
    console.print(f"{total} member{'s' if total != 1 else ''}{more}")


def run_members(args: argparse.Namespace) -> int:
    client = Client.from_args(args)
    which = "blacklist" if args.blacklist else "members"
    path = f"/v1/spaces/{_quote(args.space)}/groups/{_quote(args.group)}/{which}"
    members, total = client.pages("GET", path, _filters(args), args.limit, args.all)
    if args.json:
        _print_json({"members": members, "total": total})
    else:
        title = f"{'blacklist of' if args.blacklist else 'members of'} {args.space}/{args.group}"
        print_members(members, total, title)
    return 0


def run_segment(args: argparse.Namespace) -> int:
    client = Client.from_args(args)
    path = f"/v1/spaces/{_quote(args.space)}/segment-sets/{_quote(args.set)}/members"
    params = {"segment": args.group or "", **_filters(args)}
    members, total = client.pages("GET", path, params, args.limit, args.all)
    if args.json:
        _print_json({"members": members, "total": total})
    else:
        which = args.group if args.group else "the fallback"
        print_members(members, total, f"segment {which} of {args.space}/{args.set}")
    return 0


def _value(value: Any) -> str:
    return orjson.dumps(value).decode()


def trace_lines(node: dict[str, Any], depth: int = 0) -> list[str]:
    """The trace as an indented tree: ✓/✗, the node, and a trigger's actual value."""
    mark = "✓" if node["result"] else "✗"
    pad = "  " * depth
    for key in ("all", "any"):
        if key in node:
            lines = [f"{pad}{mark} {key}"]
            for child in node[key]:
                lines.extend(trace_lines(child, depth + 1))
            return lines
    if "not" in node:
        return [f"{pad}{mark} not", *trace_lines(node["not"], depth + 1)]
    wanted = f" {_value(node['value'])}" if "value" in node else ""
    return [
        f"{pad}{mark} {node['field']} {node['op']}{wanted}   (actual: {_value(node['actual'])})"
    ]


def explain_lines(doc: dict[str, Any], member: str, group: str) -> list[str]:
    verdict = "is in" if doc["in"] else "is not in"
    state = "active" if doc["active"] else "deactivated"
    lines = [f"{member} {verdict} {group} ({doc['kind']} group, {state})"]
    status = doc["status"] if doc["status"] is not None else "missing"
    lines.append(f"{'✓' if doc['eligible'] else '✗'} eligible status ({status})")
    if doc["kind"] == "smart":
        lines.append(f"{'✗' if doc['blacklisted'] else '✓'} not blacklisted")
    else:
        lines.append(f"{'✓' if doc['manual'] else '✗'} added by group.member_added")
    if "conditions" in doc:
        lines.append("conditions, now:")
        lines.extend(trace_lines(doc["conditions"], 1))
    return lines


def run_explain(args: argparse.Namespace) -> int:
    client = Client.from_args(args)
    space, group, member = (_quote(p) for p in (args.space, args.group, args.member))
    doc = client.call("GET", f"/v1/spaces/{space}/groups/{group}/members/{member}/explain")
    if args.json:
        _print_json(doc)
    else:
        sys.stdout.write("\n".join(explain_lines(doc, args.member, args.group)) + "\n")
    return 0


def run_live_preview(args: argparse.Namespace) -> int:
    """``smartgroups preview --live SPACE --conditions FILE``."""
    if not args.conditions:
        raise UsageError("--live needs --conditions FILE (a JSON condition tree)")
    raw = args.conditions.read_bytes() if str(args.conditions) != "-" else sys.stdin.buffer.read()
    try:
        conditions = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise UsageError(f"{args.conditions}: not JSON ({exc}) (give a condition tree)") from None
    if isinstance(conditions, dict) and "conditions" in conditions:
        conditions = conditions["conditions"]  # a group.created event works too
    body: dict[str, Any] = {"conditions": conditions, **_filters(args)}
    if args.blacklist:
        body["blacklist"] = [m.strip() for m in args.blacklist.split(",") if m.strip()]
    client = Client.from_args(args)
    members, total = client.pages(
        "POST", f"/v1/spaces/{_quote(args.live)}/preview", body, args.limit, args.all
    )
    if args.json:
        _print_json({"members": members, "total": total})
    else:
        print_members(members, total, f"would be in the group, now, in {args.live}")
    return 0


members = SimpleNamespace(add_parser=add_members_parser, run=run_members)
"""``smartgroups members`` as the CLI's command table expects it."""
segment = SimpleNamespace(add_parser=add_segment_parser, run=run_segment)

explain = SimpleNamespace(add_parser=add_explain_parser, run=run_explain)
"""``smartgroups explain``."""
