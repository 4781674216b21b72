"""The view of one member that conditions are evaluated on."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class MemberSnapshot:
    """A member's current data, with values exactly as given on the wire.

    ``profile`` is keyed by the contract's profile field names without the ``profile.`` prefix
    (``email``, ``status``, ``tags`` …), ``properties`` by property id, ``answers`` by question id.
    Values are strings, numbers, booleans, lists of strings or None; anything else is tolerated
    and simply never matches. ``groups`` holds the ids of the groups the member is in now.
    """

    profile: Mapping[str, object]
    properties: Mapping[str, object]
    answers: Mapping[str, object]
    groups: frozenset[str]
