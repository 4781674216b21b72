"""The worker's HTTP endpoints (on ``SMARTGROUPS_WEB_PORT``).

* ``GET /v1/health`` (contract section 7) and ``GET /health/`` (the same answer) —
  ``{"ok": bool, "partitions": {"assigned": n, "ready": r}}``, HTTP 200 when ``ok``, else 503
  with a ``"reason"`` saying what the worker waits for or why it cannot work (see
  :func:`health`). Served from the start of the process, before the first assignment.
* ``GET /metrics`` — Prometheus text format (contract section 8; the series are listed in
  :mod:`smartgroups.worker.metrics`). Open like ``/v1/health``: it holds counts and partition
  numbers, never an id or a value.
* ``GET /stats/`` — counters since start: inputs applied, no-ops, re-delivered, re-routed,
  dead letters by code, transitions, commands accepted and rejected, scanned members; on the
  batch member path also the bytes RocksDB holds in memory now, by table and kind
  (``rocksdb.members.memtables``, ``….block_cache``, ``….table_readers``).
"""

from __future__ import annotations

from typing import Any

from smartgroups.worker.metrics import CONTENT_TYPE
from smartgroups.worker.runtime import Runtime


def health(runtime: Runtime) -> dict[str, Any]:
    """The worker's health: ``ok`` only when it processes every partition it is assigned.

    ``assigned`` counts the partition numbers this worker is assigned (all its input topics and
    tables share them). ``ready`` counts those it processes now: faust recovers every assigned
    table partition before any stream resumes, so ``ready`` is all of them once recovery has
    finished and no rebalance runs, and 0 otherwise. Not ``ok`` (decisions where the contract is
    silent): nothing assigned (not yet, or no partition left for this worker), a rebalance or
    table recovery in progress, an agent that crashed, or a processing failure that stops the worker
    (``Runtime.failure``). ``reason`` names the first of these that holds.
    """
    app = runtime.app
    sources = runtime.topology.sources
    assigned = {tp.partition for tp in app.assignor.assigned_actives() if tp.topic in sources}
    members_reason = None
    if runtime.member_loop is not None:  # the batch member path: its own consumer group
        assigned = set(runtime.member_loop.assigned)
        members_reason = runtime.member_loop.not_ready()
    reason = None
    if runtime.failure is not None:
        reason = f"stopping: {runtime.failure}"
    elif app.crashed:
        reason = f"crashed: {app.crash_reason!r}"
    elif (crashed := _crashed_agents(app)) is not None:
        reason = f"agent {crashed} crashed"
    elif not assigned:
        reason = "no partition assigned"
    elif members_reason is not None:
        reason = members_reason
    elif app.rebalancing:
        reason = "rebalancing"
    elif app.in_recovery or not app.tables.actives_ready:
        reason = "recovering tables"
    ready = len(assigned) if reason is None else 0
    answer: dict[str, Any] = {
        "ok": reason is None,
        "partitions": {"assigned": len(assigned), "ready": ready},
    }
    if reason is not None:
        answer["reason"] = reason
    return answer


def _crashed_agents(app: Any) -> str | None:
    """The name of an agent with a crashed actor (faust restarts it, but the event it crashed
    on was acked: worth a 503 until then). ``_actors`` is faust's own list (0.15)."""
    for agent in app.agents.values():
        if any(actor.crashed for actor in list(agent._actors)):
            return str(agent.name)
    return None


def _consumers(runtime: Runtime) -> list[Any]:
    """The consumers whose partitions this worker processes: faust's (the definitions, and the
    members on the agent path) and the member loop's."""
    consumers: list[Any] = []
    if runtime.app.consumer is not None and runtime.app.consumer.started:
        consumers.append(runtime.app.consumer)
    loop = runtime.member_loop
    if loop is not None and getattr(loop, "consumer", None) is not None:
        consumers.append(loop.consumer)
    return consumers


def _owned(runtime: Runtime) -> Any:
    """Whether a member partition is this worker's now (a backfill of another is forgotten)."""
    loop = runtime.member_loop
    if loop is not None:
        return lambda partition: partition in loop.assigned
    sources = runtime.topology.sources
    owned = {tp.partition for tp in runtime.app.assignor.assigned_actives() if tp.topic in sources}
    return lambda partition: partition in owned


def register(runtime: Runtime) -> None:
    app = runtime.app
    from smartgroups.worker import api

    api.register(runtime)

    @app.page("/stats/")
    async def stats(web: Any, request: Any) -> Any:
        body: dict[str, int] = dict(runtime.stats)
        if runtime.member_loop is not None:
            body.update(runtime.member_loop.memory())
        return web.json(dict(sorted(body.items())))

    @app.page("/metrics")
    async def metrics(web: Any, request: Any) -> Any:
        await runtime.metrics.refresh(_consumers(runtime), _owned(runtime))
        return web.bytes(runtime.metrics.exposition(), headers={"Content-Type": CONTENT_TYPE})

    @app.page("/v1/health")
    async def v1_health(web: Any, request: Any) -> Any:
        body = health(runtime)
        return web.json(body, status=200 if body["ok"] else 503)

    @app.page("/health/")
    async def old_health(web: Any, request: Any) -> Any:
        body = health(runtime)
        return web.json(body, status=200 if body["ok"] else 503)
