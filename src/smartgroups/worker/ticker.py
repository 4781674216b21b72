"""Ticks on the agent member path: each worker tells its own fan-out partitions that time has
passed. (The batch member path checks its members due in process, between fetched batches:
:meth:`smartgroups.worker.member_loop.MemberLoop._step_due`.)

faust timers cannot write tables (no current event), so the timer only *sends* a small ``tick``
message to every fan-out partition this worker owns; the member path (loop or agent) handles it in
context and re-evaluates the members that are due (contract section 5: time-relative triggers).
Missed or duplicated ticks are harmless: due-ness comes from the stored instants, and a restart
catches up on everything that fell due meanwhile at the first tick.
"""

from __future__ import annotations

import logging

from smartgroups.service.messages import TICK, TICK_KEY
from smartgroups.worker.edge import Sender
from smartgroups.worker.runtime import Runtime

log = logging.getLogger("smartgroups.ticker")


def register(runtime: Runtime) -> None:
    """Register the tick timer (every ``settings.tick_interval`` seconds) on ``runtime.app``."""
    sender = Sender(runtime)
    fanout = runtime.topology.fanout

    @runtime.app.timer(runtime.settings.tick_interval)  # type: ignore[untyped-decorator]
    async def tick() -> None:
        try:
            if runtime.member_loop is not None:
                return  # the batch member path checks the members due itself
            owned = sorted(
                tp.partition for tp in runtime.app.assignor.assigned_actives() if tp.topic == fanout
            )
            for partition in owned:
                await sender.send("fanout", TICK_KEY, TICK, partition)
        except Exception:  # a timer that raises stops ticking for good
            log.exception("tick failed; will try again at the next interval")
