"""The other workers of the app, for the query API: who owns which partition, and asking them.

The member path consumes as its own consumer group (``{app}-members``, see
:mod:`.member_loop`), so the owners of the partitions are that group's members. Each worker
joins it with :func:`address_assignor`, whose member metadata carries the worker's HTTP address
(``http://host:port``), and which assigns **whole partition numbers**: partition *p* of every
member topic and of the fan-out goes to the same worker (a member's inputs and its state live on
one partition number; a round-robin over every topic's partitions would split them as soon as
the partition count is not a multiple of the worker count).

Any worker reads the group with the admin API's ``describe_consumer_groups`` (cached for
:data:`OWNERS_TTL` seconds) to learn each partition's owner and address, then asks the owners
(``POST /v1/internal/part``, the caller's ``Authorization`` header forwarded). Decisions:

* While the group is not ``Stable`` (a rebalance), or some partition has no owner, or an owner
  answers ``503`` or cannot be reached, the answer is ``503 unavailable`` with ``Retry-After``.
* The advertised address is ``SMARTGROUPS_WEB_HOST`` and the port; when the worker binds every
  interface (``0.0.0.0``/``::``) it advertises the machine's fully qualified host name.
* Every worker of an app must run this assignor: a worker of an earlier version in the same
  group makes the join fail (``InconsistentGroupProtocol``); stop every worker to upgrade.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterable, Mapping
from typing import Any

import aiohttp
import orjson
from aiohttp import web
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.cluster import ClusterMetadata
from aiokafka.coordinator.assignors.abstract import AbstractPartitionAssignor
from aiokafka.coordinator.protocol import (
    ConsumerProtocolMemberAssignment,
    ConsumerProtocolMemberMetadata,
)

from smartgroups.core.space import GroupEntry
from smartgroups.errors import QueryError
from smartgroups.settings import Settings
from smartgroups.worker.runtime import Runtime

OWNERS_TTL = 1.0
"""Seconds an owners map read from the consumer group is reused."""
RETRY_AFTER = 2
TIMEOUT = aiohttp.ClientTimeout(total=30)


def unavailable(message: str) -> QueryError:
    return QueryError(503, "unavailable", message, retry_after=RETRY_AFTER)


def advertised(settings: Settings) -> str:
    """This worker's HTTP address as the other workers reach it."""
    host = settings.web_host
    if host in ("0.0.0.0", "::", ""):
        host = socket.getfqdn()
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.web_port}"


def address_assignor(address: str) -> type[AbstractPartitionAssignor]:
    """An assignor whose metadata carries ``address`` and that assigns partition numbers whole
    (see the module docstring)."""

    class AddressAssignor(AbstractPartitionAssignor):  # type: ignore[misc]
        name = "smartgroups-copartitioned"
        version = 0

        @classmethod
        def metadata(cls, topics: Iterable[str]) -> ConsumerProtocolMemberMetadata:
            return ConsumerProtocolMemberMetadata(cls.version, sorted(topics), address.encode())

        @classmethod
        def assign(
            cls, cluster: ClusterMetadata, members: Mapping[str, ConsumerProtocolMemberMetadata]
        ) -> dict[str, ConsumerProtocolMemberAssignment]:
            return copartitioned(cluster, members, cls.version)

        @classmethod
        def on_assignment(cls, assignment: ConsumerProtocolMemberAssignment) -> None:
            pass

    return AddressAssignor


def copartitioned(
    cluster: Any, members: Mapping[str, ConsumerProtocolMemberMetadata], version: int = 0
) -> dict[str, ConsumerProtocolMemberAssignment]:
    """Partition number *p* of every subscribed topic to the same member, numbers dealt round
    robin over the members sorted by id."""
    topics = sorted({t for m in members.values() for t in m.subscription})
    numbers = sorted({p for t in topics for p in (cluster.partitions_for_topic(t) or ())})
    ids = sorted(members)
    owned: dict[str, list[int]] = {m: [] for m in ids}
    for i, p in enumerate(numbers):
        owned[ids[i % len(ids)]].append(p)
    result = {}
    for member_id, partitions in owned.items():
        subscribed = members[member_id].subscription
        assignment = [
            (t, [p for p in partitions if p in (cluster.partitions_for_topic(t) or ())])
            for t in topics
            if t in subscribed
        ]
        result[member_id] = ConsumerProtocolMemberAssignment(version, assignment, b"")
    return result


def owners_of(described: dict[str, Any], topic: str) -> dict[int, str]:
    """Partition -> address, from ``describe_consumer_groups``' answer for one group (only the
    partitions of ``topic``: every topic is assigned alike). Raises 503 while it rebalances."""
    [group] = described["groups"]
    if group["state"] != "Stable":
        raise unavailable(f"the workers are rebalancing ({group['state']}); retry")
    owners: dict[int, str] = {}
    for member in group["members"]:
        metadata = ConsumerProtocolMemberMetadata.decode(member["member_metadata"])
        assignment = ConsumerProtocolMemberAssignment.decode(member["member_assignment"])
        address = metadata.user_data.decode() if metadata.user_data else ""
        for assigned_topic, partitions in assignment.assignment:
            if assigned_topic == topic:
                for p in partitions:
                    owners[p] = address
    return owners


class Peers:
    """The workers that own the partitions this one does not (see the module docstring)."""

    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime
        self.me = advertised(runtime.settings)
        self._owners: dict[int, str] = {}
        self._read_at = 0.0
        self._admin: AIOKafkaAdminClient | None = None
        self._http: aiohttp.ClientSession | None = None
        self._lock = asyncio.Lock()

    async def owners(self) -> dict[int, str]:
        async with self._lock:
            if time.monotonic() - self._read_at > OWNERS_TTL:
                if self._admin is None:
                    self._admin = AIOKafkaAdminClient(
                        **self.rt.settings.kafka_client_options(), request_timeout_ms=10_000
                    )
                    await self._admin.start()
                try:
                    [response] = await self._admin.describe_consumer_groups(
                        [self.rt.topology.member_group]
                    )
                except Exception as exc:
                    reason = type(exc).__name__
                    raise unavailable(f"cannot read the workers' group: {reason}") from None
                self._owners = owners_of(response.to_object(), self.rt.topology.fanout)
                self._read_at = time.monotonic()
            return self._owners

    async def _post(self, request: web.Request, address: str, body: Any) -> dict[str, Any]:
        status, doc, _ = await self._call(request, "POST", f"{address}/v1/internal/part", body)
        if status != 200:
            raise QueryError(
                status, doc.get("code", "unavailable"), doc.get("message", ""), RETRY_AFTER
            )
        return doc

    async def _call(
        self, request: web.Request, method: str, url: str, body: Any = None
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=TIMEOUT)
        headers = {"Content-Type": "application/json", "X-Smartgroups-Forwarded": "1"}
        if "Authorization" in request.headers:
            headers["Authorization"] = request.headers["Authorization"]
        data = None if body is None else orjson.dumps(body)
        try:
            async with self._http.request(method, url, data=data, headers=headers) as answer:
                payload = await answer.read()
                kept = {k: v for k, v in answer.headers.items() if k == "Retry-After"}
                return answer.status, orjson.loads(payload), kept
        except (TimeoutError, aiohttp.ClientError, orjson.JSONDecodeError):
            raise unavailable("a worker that owns a partition did not answer; retry") from None

    async def _by_owner(self, partitions: list[int]) -> dict[str, list[int]]:
        owners = await self.owners()
        grouped: dict[str, list[int]] = {}
        for p in partitions:
            address = owners.get(p)
            if not address or address == self.me:  # moved here or nowhere since: not yet ready
                raise unavailable(f"partition {p} is moving between workers; retry")
            grouped.setdefault(address, []).append(p)
        return grouped

    async def parts(
        self, request: web.Request, op: dict[str, Any], partitions: list[int]
    ) -> list[dict[str, Any]]:
        """``op`` answered by the owners of ``partitions``, in parallel."""
        grouped = await self._by_owner(partitions)
        return list(
            await asyncio.gather(
                *(self._post(request, a, {"op": op, "partitions": ps}) for a, ps in grouped.items())
            )
        )

    async def entries(self, request: web.Request, space: str) -> dict[str, GroupEntry]:
        """The space's group copies from some owner (this worker owns no partition)."""
        owners = await self.owners()
        if not owners:
            raise unavailable("no worker owns a partition yet; retry")
        p = min(owners)
        [answer] = await self.parts(request, {"op": "entries", "space": space}, [p])
        return {
            e["group"]["group_id"]: GroupEntry.from_json(e)
            for e in answer["entries"]  # every partition holds every group
        }

    async def anyone(self, request: web.Request, op: dict[str, Any]) -> dict[str, Any]:
        """The first answer to ``op`` from another worker that can give it (not 503)."""
        owners = await self.owners()
        for address in sorted(set(owners.values()) - {self.me, ""}):
            try:
                return await self._post(request, address, {"op": op, "partitions": []})
            except QueryError as error:
                if error.status != 503:
                    raise
        raise unavailable("no worker holds the space's definitions right now; retry")

    async def forward(self, request: web.Request, partition: int) -> web.Response:
        """The owner's answer to this very request (a per-member request)."""
        [(address, _)] = (await self._by_owner([partition])).items()
        status, doc, headers = await self._call(
            request, request.method, f"{address}{request.rel_url}"
        )
        return web.Response(
            body=orjson.dumps(doc), status=status, content_type="application/json", headers=headers
        )

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
        if self._admin is not None:
            await self._admin.close()
