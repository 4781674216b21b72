"""What the worker's agents share: the app, its tables and topics, counters and the clock.

:func:`smartgroups.worker.app.create_app` (the composition root) builds one :class:`Runtime` and
hands it to each agent module's ``register``; the agents import this module, never the root, so
the worker's modules import each other in one direction only.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import faust

from smartgroups.settings import Settings
from smartgroups.worker.clock import utc_now
from smartgroups.worker.metrics import Metrics
from smartgroups.worker.store import ChangelogWriter, PartitionTable
from smartgroups.worker.topology import Topology

HALT_EXIT_S = 30.0
"""Longest life of a worker after it decided to stop (see :meth:`Runtime.exit_within`)."""

Clock = Callable[[], datetime]
"""The worker's clock: an aware UTC ``datetime`` (``SMARTGROUPS_CLOCK_FILE`` can shift it)."""


@dataclass(slots=True)
class Runtime:
    """The app and everything its agents share (tables, topics, counters, the clock)."""

    settings: Settings
    topology: Topology
    app: faust.App
    members: PartitionTable | None
    """faust's member tables in the agent member path; None in the batch one (its loop keeps
    its own tables)."""
    groups: PartitionTable | None
    due: PartitionTable | None
    catalogs: PartitionTable
    topics: dict[str, Any]
    changelog: ChangelogWriter
    """The faust tables' changelog records, queued by their writes: each agent flushes it
    after every record (:func:`~smartgroups.worker.edge.register_agent`)."""
    clock: Clock = utc_now
    stats: Counter[str] = field(default_factory=Counter)
    member_loop: Any = None
    """The batch member path's :class:`~smartgroups.worker.member_loop.MemberLoop`, if any."""
    failure: str | None = None
    """Why this worker cannot process any more (set just before it stops); ``None`` while fine."""
    metrics: Metrics = field(init=False)
    """The worker's Prometheus metrics (:mod:`smartgroups.worker.metrics`), over ``stats``."""

    def __post_init__(self) -> None:
        self.metrics = Metrics(self.topology, self.stats)

    async def flush_changelog(self) -> None:
        """Hand the queued changelog records to the app's producer (see
        :mod:`smartgroups.worker.store`), before the record that wrote them is acked; raises
        once one of them could not be delivered (the caller stops the worker)."""
        await self.changelog.flush(self.send_raw)

    def send_raw(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        partition: int | None = None,
        headers: Any = None,
    ) -> Any:
        """Hand final bytes to the app's producer driver (not faust's channel layer): an
        awaitable that resolves to the record's delivery future. faust's commit flushes this
        producer before it commits offsets."""
        return self.app.producer.send(topic, key, value, partition, None, headers)

    def exit_within(self, seconds: float = HALT_EXIT_S) -> None:
        """Make sure the process ends within ``seconds`` of a decision to stop (exit status 1).

        faust's shutdown after a crash can hang, e.g. after a broker connection storm (issue 19,
        F12: no line for minutes after ``Crashed``); a supervisor restarts a process that exited,
        not one that hangs. Nothing is committed past the last checkpoint either way.
        """
        timer = threading.Timer(seconds, os._exit, args=(1,))
        timer.daemon = True
        timer.start()
