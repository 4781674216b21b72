"""CPU time and memory of a process from ``/proc`` (no psutil needed; Linux only).

``cpu_seconds(pid)`` is user + system time of the whole process (all threads) so far;
``rss_bytes(pid)`` is the resident set now and ``peak_rss_bytes(pid)`` its high-water mark
(``VmHWM``). Read before and after a phase; differences give CPU per event.
"""

from __future__ import annotations

import os

_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` (threads included; children not)."""
    with open(f"/proc/{pid}/stat", "rb") as handle:
        text = handle.read()
    fields = text[text.rindex(b")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime (fields 14, 15)


def _status_kib(pid: int, name: bytes) -> int:
    with open(f"/proc/{pid}/status", "rb") as handle:
        for line in handle:
            if line.startswith(name):
                return int(line.split()[1])
    return 0


def rss_bytes(pid: int) -> int:
    """Resident set size of ``pid`` now."""
    return _status_kib(pid, b"VmRSS:") * 1024


def peak_rss_bytes(pid: int) -> int:
    """Peak resident set size of ``pid`` since it started (``VmHWM``)."""
    return _status_kib(pid, b"VmHWM:") * 1024
