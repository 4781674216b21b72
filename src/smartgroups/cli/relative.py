"""Relative instants in the CLI's JSON-lines files: ``"now"``, ``"now-30d"``, ``"now+2h"``.

Example files that hard-code dates go stale: a demo member "active 10 days ago" stops matching
``within_last 30 days`` a month later. So the files the CLI reads (``produce``, ``preview``'s
member snapshots, ``worker --demo``) may write an instant relative to the moment they are read.
The wire never sees this form: :func:`resolve_relative` replaces it by an RFC 3339 UTC instant
before anything is published or evaluated.

Only values under a key ending in ``_at`` are touched (the envelope's ``at``, the profile's
``invited_at``, ``registered_at``, ``last_active_at``), at any depth, and only when the whole string
has the form ``now``, ``now-N<unit>`` or ``now+N<unit>`` with unit ``m`` (minutes), ``h``, ``d``
or ``w``. Any other value passes through unchanged, so a real timestamp stays as written.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

_RELATIVE = re.compile(r"^now(?:([+-])(\d{1,6})([mhdw]))?$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def relative_instant(text: str, now: datetime) -> str | None:
    """The RFC 3339 instant ``text`` names relative to ``now``; ``None`` if it is not relative."""
    match = _RELATIVE.match(text)
    if match is None:
        return None
    sign, amount, unit = match.groups()
    instant = now.astimezone(UTC)
    if sign:
        delta = timedelta(**{_UNITS[unit]: int(amount)})
        instant = instant + delta if sign == "+" else instant - delta
    return instant.strftime("%Y-%m-%dT%H:%M:%SZ")


def resolve_relative(value: Any, now: datetime) -> Any:
    """``value`` (decoded JSON) with every relative ``*_at`` instant replaced; a new object."""
    if isinstance(value, dict):
        return {
            key: _resolve_field(key, item, now) if isinstance(key, str) else item
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [resolve_relative(item, now) for item in value]
    return value


def _resolve_field(key: str, item: Any, now: datetime) -> Any:
    if (key.endswith("_at") or key == "at") and isinstance(item, str):
        instant = relative_instant(item, now)
        return item if instant is None else instant
    return resolve_relative(item, now)
