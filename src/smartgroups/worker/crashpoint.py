"""A test-only crash point in the member loop's checkpoint (reliability.md, F1).

``SMARTGROUPS_TEST_CRASH_AT=<phase>:<n>`` makes the worker SIGKILL itself the ``n``-th time a
checkpoint with applied inputs reaches ``phase`` (:data:`PHASES`, in checkpoint order; see
:meth:`smartgroups.worker.member_loop.MemberLoop._seal` and ``_finish``), or the ``n``-th time a
restore applies a fetched chunk (:data:`RESTORE`, F2). The fault suite uses it to cut a batch
where it wants; it is read once, at import, and is not a setting: unset (always, outside the
fault suite), :func:`reached` is one comparison.
"""

from __future__ import annotations

import os
import signal

ENV = "SMARTGROUPS_TEST_CRASH_AT"
PHASES = ("begun", "sealed", "outputs", "members", "stored", "committed")
"""``begun``: nothing of the checkpoint sent; ``sealed``: its outputs and changelogs handed to
the producer, on their way, while the loop would go on with the next records; ``outputs``: the
outputs and the derived tables' changelogs delivered; ``members``: the member records'
changelog delivered (one point with ``outputs`` now); ``stored``: one partition of one table
written to RocksDB (counted per write, so ``stored:2`` dies between two partitions' writes);
``committed``: the input offsets committed (in the background, while the loop goes on)."""

RESTORE = "restore"
"""Not a checkpoint phase: one fetched chunk of a changelog applied to RocksDB during a
restore (F2 kills the worker there, mid-restore)."""

_phase, _, _count = os.environ.get(ENV, "").partition(":")
_left = [int(_count or "1") if _phase in (*PHASES, RESTORE) else 0]


def reached(phase: str) -> None:
    """Count one checkpoint reaching ``phase``; SIGKILL this process at the chosen one."""
    if _left[0] and phase == _phase:
        _left[0] -= 1
        if not _left[0]:
            os.kill(os.getpid(), signal.SIGKILL)
