"""The other workers of the app, for the query API: who owns which partition, and asking them.

(Single-worker for now: every partition this worker does not own is answered ``503``.)
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from smartgroups.core.space import GroupEntry
from smartgroups.errors import QueryError
from smartgroups.worker.runtime import Runtime


def _unavailable(partitions: list[int]) -> QueryError:
    return QueryError(
        503,
        "unavailable",
        f"partitions {partitions} are not on this worker; retry",
        retry_after=2,
    )


class Peers:
    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime

    async def parts(
        self, request: web.Request, op: dict[str, Any], partitions: list[int]
    ) -> list[dict[str, Any]]:
        raise _unavailable(partitions)

    async def entries(self, request: web.Request, space: str) -> dict[str, GroupEntry]:
        raise _unavailable([])

    async def forward(self, request: web.Request, partition: int) -> web.Response:
        raise _unavailable([partition])

    async def anyone(self, request: web.Request, op: dict[str, Any]) -> dict[str, Any]:
        raise _unavailable([])
