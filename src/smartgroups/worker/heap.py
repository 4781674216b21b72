"""Giving the C heap's free memory back to the system, when the worker is idle.

glibc's ``malloc`` keeps memory freed by the process in its arenas, for reuse, instead of
returning it: the fetch buffers, record bytes and RocksDB write batches of a burst of inputs
stay in the worker's RSS after the burst, though free. Measured in the benchmark's backfill
phase (``bench/README.md``): after loading 100,000 members the main arena held 93 MB, 47 MB of
them in use; the RSS grew 75.7 MB per 100,000 members, and 31.8 to 33.8 MB with this module's
idle trim (``malloc_trim``; two runs and a ``make bench``).

:func:`trim` returns the free pages of every arena (``malloc_trim(0)``): a few milliseconds
for a heap of about 100 MB, so the member loop calls it only when it is idle (a whole fetch
wait without records, nothing to checkpoint) after having processed at least
:data:`TRIM_AFTER_RECORDS` records since the last trim. Where the C library has no
``malloc_trim`` (not glibc), :func:`trim` does nothing.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable

TRIM_AFTER_RECORDS = 1_000
"""Records (inputs and members decided by backfills) processed since the last trim that let
an idle loop trim again: an idle worker does not trim every fetch wait."""


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        trim_: Callable[[int], int] = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None  # not glibc: nothing to call
    return trim_


_MALLOC_TRIM = _malloc_trim()


def trim() -> bool:
    """Return the C heap's free pages to the system; False where that is not possible."""
    if _MALLOC_TRIM is None:
        return False
    _MALLOC_TRIM(0)
    return True
