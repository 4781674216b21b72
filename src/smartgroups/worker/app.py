"""The faust application: configuration, topics, tables and agents, built from :class:`Settings`.

Nothing is registered at import time: :func:`create_app` builds a fresh :class:`Runtime` each
call, so tests and tools can run several apps in one process with different settings.

The app id, the table names and their changelog topics come from
:class:`~smartgroups.worker.topology.Topology`, which creates and verifies every one of those
topics before faust starts; :func:`create_app` checks faust derives the same names.

The web server starts as soon as the app's services run, before the first assignment and table
recovery (faust's default waits for recovery), so ``/v1/health`` answers ``503`` while the worker
is not ready instead of refusing connections. A route that reads tables must therefore answer
503 itself while :func:`smartgroups.worker.web.health` is not ``ok``.

Delivery is ``at_least_once`` with an idempotent producer; the outputs are idempotent by
construction (deterministic ids, per-pair versions, re-sent outboxes), so faust's
``exactly_once`` is not needed (see ``notes/faust.md`` section 3 for why it is not trusted).
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

import faust
from faust.tables import TableManager

from smartgroups.errors import TopologyError
from smartgroups.settings import Settings
from smartgroups.worker.clock import utc_now
from smartgroups.worker.runtime import Clock, Runtime
from smartgroups.worker.store import ChangelogWriter, PartitionTable
from smartgroups.worker.topology import TABLES, Topology

log = logging.getLogger("smartgroups.worker")

# One partition DB per table per partition: keep each RocksDB small (notes/faust.md section 1).
_ROCKSDB = {
    "driver": "rocksdict",
    "write_buffer_size": 8 << 20,
    "max_write_buffer_number": 2,
    "block_cache_size": 32 << 20,
    "max_open_files": 256,
}


class App(faust.App):
    """faust's app, with its web server started before the first assignment (see above)."""

    async def on_started(self) -> None:
        await self.on_started_init_web_server()  # idempotent: faust's own call is then a no-op
        await super().on_started()


class _Tables(TableManager):
    """faust's table manager without the one-second sleep its start begins with.

    faust sleeps a second before it reads the tables' channels and starts their recovery, so
    that tables declared by agents at start are seen. :func:`create_app` declares every table
    before the app starts, so the sleep only delayed each start: the definitions side, and so
    the member loop (which waits for it), the query API's readiness and every worker the tests
    start, came up a second later (measured: 1.6 s from start to ready on an empty broker,
    0.75 s without it).
    """

    async def on_start(self) -> None:
        if not self.should_stop:
            await self._update_channels()
            await self.recovery.start()


def _credentials(settings: Settings) -> Any:
    protocol = settings.security_protocol
    if protocol == "PLAINTEXT":
        return None
    options = settings.kafka_client_options()
    if protocol == "SSL":
        return faust.SSLCredentials(options["ssl_context"])
    return faust.SASLCredentials(
        username=options["sasl_plain_username"],
        password=options["sasl_plain_password"],
        mechanism=settings.sasl_mechanism,
        ssl_context=options.get("ssl_context"),
    )


def create_app(settings: Settings, *, clock: Clock = utc_now) -> Runtime:
    """Build the faust app and register the definitions, members and ticker agents."""
    topology = Topology.from_settings(settings)
    n = settings.partitions
    app = App(
        topology.app_id,
        broker=[f"kafka://{hp.strip()}" for hp in settings.bootstrap_servers.split(",")],
        broker_credentials=_credentials(settings),
        store="rocksdb://",
        TableManager=_Tables,
        datadir=str(settings.data_dir),
        processing_guarantee="at_least_once",
        topic_partitions=n,
        topic_replication_factor=1,
        topic_allow_declare=True,
        table_standby_replicas=0,
        stream_wait_empty=True,
        stream_recovery_delay=0.0,
        # The definitions agent commits as often as the member path checkpoints: a command's
        # offset is committed within SMARTGROUPS_COMMIT_INTERVAL of its processing (faust
        # commits only offsets that moved; at 1.0 s, a burst of commands stayed uncommitted,
        # and re-processed after a crash, for up to a second).
        broker_commit_interval=settings.commit_interval,
        # A crashed worker's partitions move after 15 s instead of faust's 60 s default.
        broker_session_timeout=15.0,
        broker_heartbeat_interval=3.0,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        producer_linger=0.005,
        producer_max_batch_size=131072,
        web_enabled=True,
        web_port=settings.web_port,
        # web_bind is the address faust listens on (its default is every interface, 0.0.0.0);
        # web_host only the one it advertises. The API serves personal data: loopback unless
        # SMARTGROUPS_WEB_HOST says otherwise (with tokens, or --insecure-api; see worker.access).
        web_bind=settings.web_host,
        web_host=settings.web_host,
        web_tables_enabled=False,
        web_in_thread=False,
    )

    stats: Counter[str] = Counter()  # the worker's counters (/stats/, the metrics)
    changelog = ChangelogWriter(stats)  # the tables' changelog records, flushed by the agents

    def table(name: str) -> PartitionTable:
        return PartitionTable(
            app.Table(
                name,
                key_type=bytes,
                value_type=bytes,
                partitions=n,
                recovery_buffer_size=5000,
                options=dict(_ROCKSDB),
            ),
            changelog,
        )

    def topic(*names: str, internal: bool = False) -> Any:
        return app.topic(
            *names,
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            partitions=n,
            internal=internal,
        )

    batch = settings.member_path == "batch"
    # In the batch member path the loop keeps members, groups and due itself (its own RocksDB
    # and the same changelog topics); faust keeps only the definitions' catalogs.
    tables = {name: table(name) for name in TABLES if not batch or name == "catalogs"}
    _check_names(app, topology, tables)
    runtime = Runtime(
        settings=settings,
        topology=topology,
        app=app,
        members=tables.get("members"),
        groups=tables.get("groups"),
        due=tables.get("due"),
        catalogs=tables["catalogs"],
        changelog=changelog,
        stats=stats,
        topics={
            **({} if batch else {"member_inputs": topic(*topology.member_inputs, topology.fanout)}),
            "definition_inputs": topic(topology.group_changes, topology.commands),
            **{role: topic(name) for role, name in topology.roles().items()},
        },
        clock=clock,
    )

    from smartgroups.worker import definitions, members, ticker, web

    definitions.register(runtime)
    members.register(runtime)
    ticker.register(runtime)
    web.register(runtime)
    return runtime


def _check_names(app: faust.App, topology: Topology, tables: dict[str, PartitionTable]) -> None:
    """Raise :class:`TopologyError` if faust names a topic otherwise than :class:`Topology`
    (it would then use topics that were not created and verified before it started)."""
    derived = {topology.changelog(n): t.table.changelog_topic_name for n, t in tables.items()}
    derived[topology.leader] = app._leader_assignor._leader_topic_name  # type: ignore[attr-defined]
    wrong = [f"{theirs} (expected {ours})" for ours, theirs in derived.items() if theirs != ours]
    if wrong:
        raise TopologyError("faust derives other topic names than smartgroups: " + ", ".join(wrong))
