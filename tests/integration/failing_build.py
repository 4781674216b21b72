"""A deliberately broken build of the worker, for the redrive test: ``smartgroups`` whose core
fails on every ``property.set`` of the property ``fragile`` (as a bug would), so those records
are dead-lettered with ``processing_error``. Run as ``python failing_build.py worker ...``."""

from __future__ import annotations

import sys
from typing import Any

from smartgroups.cli.main import main
from smartgroups.core import membership

_on_value = membership.on_value


def _broken_on_value(rec: Any, space: Any, kind: str, key: str, value: Any, now: Any) -> Any:
    if key == "fragile":
        raise RuntimeError("a bug of this build")
    return _on_value(rec, space, kind, key, value, now)


membership.on_value = _broken_on_value  # type: ignore[assignment]

if __name__ == "__main__":
    sys.exit(main())
