"""The query API's HTTP endpoints (contract section 7) on the worker's web server.

Routes are added to faust's aiohttp application (``app.web.web_app``) before it starts. Each
public request is answered from *parts*: the same operation run on disjoint sets of partitions
(:class:`~smartgroups.service.query.QueryService`), this worker's own and, for the partitions
other workers own, theirs (:mod:`smartgroups.worker.peers`, over ``POST /v1/internal/part`` with
the caller's token), merged into the one answer a single worker would give. Per-member requests
(member, explain) go to the owner of the member's partition.

The answer is ``503 unavailable`` with ``Retry-After`` while a partition it needs is restored or
moved (never a partial list), and on the agent member path (``SMARTGROUPS_MEMBER_PATH=agent``),
which keeps no query index: the query API needs the batch path.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from smartgroups.core.catalog import Group, SpaceCatalog
from smartgroups.core.ids import is_id, member_key, space_key
from smartgroups.core.partitioning import partition_for
from smartgroups.core.space import GroupEntry
from smartgroups.errors import QueryError, RuleError
from smartgroups.service import index
from smartgroups.service.definitions import SpaceState
from smartgroups.service.query import (
    Filters,
    Partial,
    QueryService,
    decode_cursor,
    group_doc,
    group_order,
    invalid,
    merge,
    not_found,
    parse_limit,
)
from smartgroups.worker.access import Tokens
from smartgroups.worker.runtime import Runtime

log = logging.getLogger("smartgroups.api")

OPENAPI = Path(__file__).with_name("openapi.json")
"""The OpenAPI 3.1 document, packaged with the code (``schemas/openapi.json`` links to it)."""

RETRY_AFTER = 2
"""Seconds a client is told to wait when a partition is being restored or moved."""
FORWARDED = "X-Smartgroups-Forwarded"
"""Set on a per-member request one worker forwards to another."""

Handler = Callable[[web.Request], Awaitable[Any]]


def unavailable(message: str) -> QueryError:
    return QueryError(503, "unavailable", message, retry_after=RETRY_AFTER)


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=orjson.dumps(body), status=status, content_type="application/json", headers=headers
    )


def error_response(error: QueryError) -> web.Response:
    headers = {}
    if error.retry_after is not None:
        headers["Retry-After"] = str(error.retry_after)
    if error.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="smartgroups"'
    return _json({"code": error.code, "message": error.message}, error.status, headers)


class Api:
    """The query endpoints of one worker (see the module docstring)."""

    def __init__(self, runtime: Runtime, tokens: Tokens | None) -> None:
        self.rt = runtime
        self.tokens = tokens
        self.n = runtime.settings.partitions
        self._service: QueryService | None = None
        from smartgroups.worker.peers import Peers

        self.peers = Peers(runtime)

    # -- plumbing ------------------------------------------------------------------------------
    @property
    def loop(self) -> Any:
        loop = self.rt.member_loop
        if loop is None:
            raise unavailable(
                "the query API needs the batch member path (unset SMARTGROUPS_MEMBER_PATH or set "
                "it to batch); this worker runs the agent path"
            )
        return loop

    @property
    def service(self) -> QueryService:
        if self._service is None:
            loop = self.loop
            tables = loop.tables
            self._service = QueryService(
                members=tables["members"],
                groups=tables["groups"],
                index_table=tables["index"],
                clock=self.rt.clock,
                guard=lambda: loop.lock,
                check=self._check,
                spaces=loop.service._space,
            )
        return self._service

    def _check(self, partition: int) -> None:
        loop = self.loop
        if loop.rebalancing or partition not in loop.ready:
            raise unavailable(f"partition {partition} is being restored or moved; retry")

    def local(self) -> list[int]:
        """This worker's ready partitions (503 while it rebalances or restores)."""
        loop = self.loop
        if self.rt.failure is not None or loop.not_ready() is not None:
            raise unavailable("the worker is rebalancing or restoring its partitions; retry")
        return sorted(loop.ready)

    def authorize(self, request: web.Request, space: str) -> None:
        """401 without a known token; 404 for a space outside the token's (or not an id)."""
        if self.tokens is not None:
            spaces = self.tokens.spaces(request.headers.get("Authorization"))
            if spaces is not None and space not in spaces:
                raise not_found("space_not_found", "space")
        if not is_id(space):
            raise not_found("space_not_found", "space")

    def wrap(self, handler: Handler) -> Handler:
        async def answer(request: web.Request) -> web.Response:
            try:
                result = await handler(request)
            except QueryError as error:
                return error_response(error)
            if isinstance(result, web.Response):
                return result
            return _json(result)

        return answer

    def register(self, router: web.UrlDispatcher) -> None:
        s = "/v1/spaces/{space}"
        routes: list[tuple[str, str, Handler]] = [
            ("GET", "/v1/openapi.json", self.openapi),
            ("GET", f"{s}/groups", self.groups),
            ("GET", f"{s}/groups/{{group_id}}", self.group),
            ("GET", f"{s}/groups/{{group_id}}/members", self.members),
            ("GET", f"{s}/groups/{{group_id}}/blacklist", self.blacklist),
            ("GET", f"{s}/groups/{{group_id}}/members/{{member_id}}/explain", self.explain),
            ("GET", f"{s}/members/{{member_id}}", self.member),
            ("POST", f"{s}/preview", self.preview),
            ("GET", f"{s}/segment-sets/{{set_id}}/members", self.segment_members),
            ("POST", "/v1/internal/part", self.internal_part),
        ]
        for method, path, handler in routes:
            router.add_route(method, path, self.wrap(handler))

    # -- parts: one operation over a set of partitions -----------------------------------------
    async def part(self, op: dict[str, Any], partitions: Sequence[int]) -> dict[str, Any]:
        """Run ``op`` on ``partitions`` (all of them this worker's)."""
        service, space = self.service, op["space"]
        kind = op["op"]
        if kind == "seen":
            return {"seen": await service.space_seen(space, partitions)}
        if kind == "entries":
            found = await service.entries(space, partitions[0]) if partitions else {}
            return {"entries": [e.to_json() for e in found.values()]}
        if kind == "counts":
            entries = [GroupEntry.from_json(e) for e in op["entries"]]
            counts = await service.counts(space, entries, partitions)
            return {"counts": {g: list(c) for g, c in counts.items()}}
        if kind == "validate":
            try:
                group = (await self.catalog(space)).preview_group(op["conditions"])
            except RuleError as error:
                return {"error": {"code": error.code, "message": error.message}}
            return {"group": group.to_json()}
        filters = Filters.parse(op.get("q"), op.get("status"), op.get("role"))
        after = decode_cursor(op.get("cursor"))
        limit = int(op["limit"])
        if kind == "listing":
            # keys are derived here from the space the caller is authorized for, never taken
            # from the request: a token for one space cannot read another space's index
            gid, seq = str(op["group_id"]), int(op["created_seq"])
            if not is_id(gid):
                raise invalid("malformed internal request")
            if op["memberships"]:
                prefix, count = index.group_prefix(space, gid), index.count_key(space, gid)
            else:
                prefix = index.blacklist_prefix(space, gid, seq)
                count = index.blacklist_count_key(space, gid, seq)
            partial = await service.listing(
                prefix,
                count,
                filters,
                after,
                limit,
                partitions,
                memberships=bool(op["memberships"]),
            )
            return partial.to_json()
        if kind == "segment":
            set_id, segment = str(op["set_id"]), op["segment"]
            if not is_id(set_id) or not (segment is None or is_id(segment)):
                raise invalid("malformed internal request")
            partial = await service.segment_listing(
                space, set_id, segment, filters, after, limit, partitions
            )
            return partial.to_json()
        if kind == "preview":
            conditions = Group.from_json(op["group"]).conditions
            assert conditions is not None
            partial = await service.preview(
                space, conditions, frozenset(op["blacklist"]), filters, after, limit, partitions
            )
            return partial.to_json()
        raise invalid(f"unknown operation {kind!r}")

    async def everywhere(self, request: web.Request, op: dict[str, Any]) -> list[dict[str, Any]]:
        """``op``'s answers from every partition: this worker's and its peers'."""
        local = self.local()
        answers = [await self.part(op, local)] if local else []
        missing = sorted(set(range(self.n)) - set(local))
        if missing:
            answers.extend(await self.peers.parts(request, op, missing))
        return answers

    async def internal_part(self, request: web.Request) -> dict[str, Any]:
        """A peer's request for a part over partitions this worker owns."""
        try:
            body = await request.json(loads=orjson.loads)
            op, partitions = body["op"], [int(p) for p in body["partitions"]]
        except (ValueError, KeyError, TypeError, json.JSONDecodeError):
            raise invalid("malformed internal request") from None
        self.authorize(request, str(op.get("space")))
        local = set(self.local())
        if not set(partitions) <= local:
            raise unavailable("those partitions moved to another worker; retry")
        try:
            return await self.part(op, partitions)
        except (KeyError, TypeError, ValueError, AttributeError):
            raise invalid("malformed internal request") from None

    # -- spaces and groups ---------------------------------------------------------------------
    async def entries(self, request: web.Request, space: str) -> dict[str, GroupEntry]:
        """The space's group copies (from any partition: every partition holds them all); 404
        ``space_not_found`` when no partition knows the space."""
        local = self.local()
        if local:
            found = await self.service.entries(space, local[0])
        else:
            found = await self.peers.entries(request, space)
        if not found:
            seen = await self.everywhere(request, {"op": "seen", "space": space})
            if not any(answer["seen"] for answer in seen):
                raise not_found("space_not_found", "space")
        return found

    async def group_docs(
        self, request: web.Request, space: str, entries: list[GroupEntry]
    ) -> list[dict[str, Any]]:
        op = {"op": "counts", "space": space, "entries": [e.to_json() for e in entries]}
        totals: dict[str, list[int]] = {e.group.group_id: [0, 0] for e in entries}
        for answer in await self.everywhere(request, op):
            for gid, (m, b) in answer["counts"].items():
                totals[gid][0] += m
                totals[gid][1] += b
        return [group_doc(e, *totals[e.group.group_id]) for e in entries]

    async def groups(self, request: web.Request) -> dict[str, Any]:
        space = request.match_info["space"]
        self.authorize(request, space)
        entries = group_order((await self.entries(request, space)).values())
        return {"groups": await self.group_docs(request, space, entries)}

    async def live_group(self, request: web.Request) -> tuple[str, GroupEntry]:
        space, group_id = request.match_info["space"], request.match_info["group_id"]
        self.authorize(request, space)
        entry = (await self.entries(request, space)).get(group_id)
        if entry is None or entry.deleted:
            raise not_found("group_not_found", "group")
        return space, entry

    async def group(self, request: web.Request) -> dict[str, Any]:
        space, entry = await self.live_group(request)
        [doc] = await self.group_docs(request, space, [entry])
        return doc

    # -- listings ------------------------------------------------------------------------------
    def page_params(self, params: Any) -> dict[str, Any]:
        """``q``, ``status``, ``role``, ``limit`` and ``cursor``, checked (400 ``invalid``)."""
        Filters.parse(params.get("q"), params.get("status"), params.get("role"))
        decode_cursor(params.get("cursor"))
        return {
            "q": params.get("q"),
            "status": params.get("status"),
            "role": params.get("role"),
            "limit": parse_limit(params.get("limit")),
            "cursor": params.get("cursor"),
        }

    async def listing(self, request: web.Request, memberships: bool) -> dict[str, Any]:
        space, entry = await self.live_group(request)
        params = self.page_params(request.query)
        op = {
            "op": "listing",
            "space": space,
            "group_id": entry.group.group_id,
            "created_seq": entry.created_seq,
            "memberships": memberships,
            **params,
        }
        answers = await self.everywhere(request, op)
        return merge([Partial.from_json(a) for a in answers], params["limit"])

    async def members(self, request: web.Request) -> dict[str, Any]:
        return await self.listing(request, memberships=True)

    async def blacklist(self, request: web.Request) -> dict[str, Any]:
        return await self.listing(request, memberships=False)

    async def segment_members(self, request: web.Request) -> dict[str, Any]:
        """The members whose segment in the set is ``segment`` (empty: the fallback)."""
        space, set_id = request.match_info["space"], request.match_info["set_id"]
        self.authorize(request, space)
        raw = request.query.get("segment")
        if raw is None:
            raise invalid("'segment' is required: a group id of the set, or empty for the fallback")
        params = self.page_params(request.query)
        await self.entries(request, space)  # 404 space_not_found first
        if not is_id(set_id):
            raise not_found("segment_set_not_found", "segment set")
        segment = raw or None
        if segment is not None and not is_id(segment):
            raise invalid(f"'segment' must be a group of the set {set_id!r}, or empty")
        op = {"op": "segment", "space": space, "set_id": set_id, "segment": segment, **params}
        answers = await self.everywhere(request, op)
        return merge([Partial.from_json(a) for a in answers], params["limit"])

    # -- one member ----------------------------------------------------------------------------
    def owner(self, space: str, member_id: str) -> int:
        if not is_id(member_id):
            raise not_found("member_not_found", "member")
        return partition_for(member_key(space, member_id), self.n)

    async def member(self, request: web.Request) -> Any:
        space, member_id = request.match_info["space"], request.match_info["member_id"]
        self.authorize(request, space)
        partition = self.owner(space, member_id)
        if partition not in self.local():
            return await self.forward(request, partition)
        await self.entries(request, space)  # 404 space_not_found first
        return await self.service.member(space, member_id, partition)

    async def explain(self, request: web.Request) -> Any:
        space, member_id = request.match_info["space"], request.match_info["member_id"]
        self.authorize(request, space)
        partition = self.owner(space, member_id)
        if partition not in self.local():
            return await self.forward(request, partition)
        await self.live_group(request)
        return await self.service.explain(
            space, request.match_info["group_id"], member_id, partition
        )

    async def forward(self, request: web.Request, partition: int) -> web.Response:
        """The owner's answer; a request that was already forwarded is not forwarded again
        (the owners moved in between: 503)."""
        if request.headers.get(FORWARDED):
            raise unavailable(f"partition {partition} is moving between workers; retry")
        return await self.peers.forward(request, partition)

    # -- live preview --------------------------------------------------------------------------
    async def catalog(self, space: str) -> SpaceCatalog:
        """The space's definitions, read from the definitions side's ``catalogs`` table."""
        partition = partition_for(space_key(space), self.n)
        app = self.rt.app
        actives = {
            tp.partition
            for tp in app.assignor.assigned_actives()
            if tp.topic == self.rt.topology.group_changes
        }
        if partition not in actives or app.rebalancing or app.in_recovery:
            raise unavailable("the space's definitions are on another worker or being restored")
        state, _ = SpaceState.read(self.rt.catalogs, partition, space)
        return state.catalog

    async def preview(self, request: web.Request) -> dict[str, Any]:
        space = request.match_info["space"]
        self.authorize(request, space)
        try:
            body = await request.json(loads=orjson.loads)
        except (ValueError, json.JSONDecodeError):
            raise invalid("the body must be a JSON object") from None
        if not isinstance(body, dict):
            raise invalid("the body must be a JSON object")
        blacklist = body.get("blacklist") or []
        if not isinstance(blacklist, list) or len(blacklist) > 10_000:
            raise invalid("'blacklist' must be a list of at most 10000 member ids")
        if not all(is_id(m) for m in blacklist):
            raise invalid("'blacklist' must hold member ids")
        params = self.page_params(body)
        await self.entries(request, space)
        validate = {"op": "validate", "space": space, "conditions": body.get("conditions")}
        try:
            checked = await self.part(validate, [])
        except QueryError:  # the space's definitions are kept by another worker
            checked = await self.peers.anyone(request, validate)
        if "error" in checked:
            raise QueryError(422, checked["error"]["code"], checked["error"]["message"])
        op = {
            "op": "preview",
            "space": space,
            "group": checked["group"],
            "blacklist": blacklist,
            **params,
        }
        answers = await self.everywhere(request, op)
        return merge([Partial.from_json(a) for a in answers], params["limit"])

    async def openapi(self, request: web.Request) -> web.Response:
        return web.Response(body=OPENAPI.read_bytes(), content_type="application/json")


def register(runtime: Runtime) -> Api:
    """Add the query routes to ``runtime.app``'s web server."""
    settings = runtime.settings
    tokens = Tokens.load(settings.api_tokens_file) if settings.api_tokens_file else None
    api = Api(runtime, tokens)
    web_app = runtime.app.web.web_app  # type: ignore[attr-defined]
    api.register(web_app.router)

    async def close_peers(_: web.Application) -> None:
        await api.peers.close()

    web_app.on_cleanup.append(close_peers)  # when faust stops its web server
    return api
