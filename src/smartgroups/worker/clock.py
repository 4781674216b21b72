"""Clocks for the worker. The core never reads time; the worker passes ``now`` in.

:func:`utc_now` is the real clock. :class:`OffsetClock` adds an offset read from a file, so a
test (or an operator rehearsing a time-relative rule) can move a running worker's time forward
without waiting: write ``86400`` into the file and the worker lives one day ahead. It is enabled
only by ``SMARTGROUPS_CLOCK_FILE`` / ``--clock-file``; production leaves it unset.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path


def utc_now() -> datetime:
    """The real time, in UTC."""
    return datetime.now(UTC)


class OffsetClock:
    """Real time plus the number of seconds written in ``path`` (0 while absent or unreadable)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._mtime: float | None = None
        self._offset = timedelta(0)

    def __call__(self) -> datetime:
        try:
            mtime = os.stat(self.path).st_mtime
        except OSError:
            self._offset, self._mtime = timedelta(0), None
        else:
            if mtime != self._mtime:
                self._mtime = mtime
                try:
                    self._offset = timedelta(seconds=float(self.path.read_text().strip() or 0))
                except (OSError, ValueError):
                    self._offset = timedelta(0)
        return utc_now() + self._offset
