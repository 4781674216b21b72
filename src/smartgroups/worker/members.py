"""The member path: the batch loop by default, or the members agent (faust's stream of member
inputs and fan-out messages) with ``SMARTGROUPS_MEMBER_PATH=agent``, each handing records to the
service.

One agent (``concurrency=1``) consumes the three member-keyed input topics and the internal
fan-out topic as one stream, so everything about a member is applied in one order on one
partition. What each record does is :class:`smartgroups.service.members.MemberService`'s
business; this module wires it to the faust tables
(:class:`~smartgroups.worker.store.PartitionTable`) and the app's producer
(:class:`~smartgroups.worker.edge.Sender`).
"""

from __future__ import annotations

from smartgroups.service.members import MemberService
from smartgroups.worker.edge import Sender, register_agent
from smartgroups.worker.metrics import count_members
from smartgroups.worker.runtime import Runtime


def register(runtime: Runtime) -> None:
    """Register the member path on ``runtime.app``: the agent, or the batch loop
    (:mod:`smartgroups.worker.member_loop`) when ``SMARTGROUPS_MEMBER_PATH=batch``."""
    if runtime.settings.member_path == "batch":
        from smartgroups.worker.member_loop import MemberLoop

        runtime.member_loop = MemberLoop(runtime)
        runtime.app.add_dependency(runtime.member_loop)
        return
    assert runtime.members and runtime.groups and runtime.due, "the agent path has its tables"
    sender = Sender(runtime)
    service = MemberService(
        members=runtime.members,
        groups=runtime.groups,
        due=runtime.due,
        publisher=sender,
        topics=runtime.topology,
        clock=runtime.clock,
        scan_chunk=runtime.settings.scan_chunk,
        stats=runtime.stats,
    )
    runtime.metrics.backfills.count = lambda partition, space: count_members(
        runtime.members, partition, space
    )
    service.on_scan = runtime.metrics.backfills.step
    register_agent(
        runtime, "member_inputs", "members", service, sender, runtime.metrics.member_inputs
    )
