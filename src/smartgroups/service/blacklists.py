"""The ``blacklist`` of a ``group.created`` on the member side (contract section 3).

The definitions service sends each partition that owns a listed member one ``blacklist``
message (:func:`~smartgroups.service.messages.blacklist_message`) *before* the group's own
``group`` message, with the group's ``created_seq``. Each listed member gets the blacklist
command exactly as a ``group.blacklisted`` would set it, so the backfill that the ``group``
message starts finds it blacklisted and never emits it as added.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from smartgroups.core import membership
from smartgroups.core.membership import Transition
from smartgroups.core.record import MemberRecord
from smartgroups.core.space import SpaceGroups
from smartgroups.service.ports import Record
from smartgroups.service.segments import MemberSide


async def on_blacklist(service: MemberSide, record: Record, doc: dict[str, Any]) -> None:
    """Blacklist every member of ``doc["member_ids"]`` (this partition's) in the new group."""
    group_id, seq = doc["group_id"], int(doc["seq"])

    def change(rec: MemberRecord, space: SpaceGroups, now: datetime) -> list[Transition]:
        return membership.on_command(rec, space, "blacklisted", group_id, seq, now)

    for member_id in doc["member_ids"]:
        await service._apply(
            record.partition,
            doc["space"],
            member_id,
            record.source,
            record.offset,
            change,
            doc["cause"],
        )
