"""The worker's HTTP endpoints (on ``SMARTGROUPS_WEB_PORT``).

* ``GET /stats/`` — counters since start: inputs applied, no-ops, re-delivered, re-routed,
  dead letters by code, transitions, commands accepted and rejected, scanned members.
* ``GET /health/`` — ``{"ok": true}`` once the worker processes events.
"""

from __future__ import annotations

from typing import Any

from smartgroups.worker.app import Runtime


def register(runtime: Runtime) -> None:
    app = runtime.app

    @app.page("/stats/")
    async def stats(web: Any, request: Any) -> Any:
        return web.json(dict(sorted(runtime.stats.items())))

    @app.page("/health/")
    async def health(web: Any, request: Any) -> Any:
        return web.json({"ok": True})
