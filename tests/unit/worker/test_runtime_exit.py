"""A worker that decided to stop ends its process within a bound, even if its shutdown hangs."""

from __future__ import annotations

import subprocess
import sys
import time

HANGING_SHUTDOWN = """
import time
from smartgroups.worker.runtime import Runtime
Runtime.exit_within(None, 0.5)  # the method uses nothing of the instance
time.sleep(30)  # a shutdown that never ends
"""


def test_exit_within_ends_a_hanging_process_with_status_1() -> None:
    began = time.monotonic()
    done = subprocess.run([sys.executable, "-c", HANGING_SHUTDOWN], timeout=20, check=False)
    assert done.returncode == 1
    assert time.monotonic() - began < 15
