"""The internal messages on the fan-out and commands topics: their one owner.

The definitions service and the timer send them; the members service reads them. Each is a JSON
object whose ``k`` says what it is:

* ``group`` — a group changed: ``{space, effect, entry, cause}`` (``entry`` as
  :meth:`~smartgroups.core.space.GroupEntry.to_json`), sent to **every** partition;
* ``command`` — a static-membership or blacklist command for one member: ``{space, member_id,
  group_id, seq, effect, cause}``, sent to the member's partition;
* ``scan`` — the next step of a backfill: ``{space, group_id, seq, effect, after, cause}``, sent
  by a partition to itself so that live inputs interleave with a long scan;
* ``blacklist`` — the ``blacklist`` of a ``group.created``: ``{space, group_id, seq,
  member_ids, cause}``, one per partition that owns a listed member, sent before the group's
  ``group`` message on that partition so the backfill sees the blacklist;
* ``set`` — a segment set changed: ``{space, effect, entry, cause}`` (``entry`` as
  :meth:`~smartgroups.core.segments.SetEntry.to_json`), sent to **every** partition;
* ``set_scan`` — the next step of a segment set's resolution over the space's members:
  ``{space, set_id, seq, after, cause}``;
* ``tick`` — time passed (:data:`TICK`), sent by each worker's timer to the partitions it owns;
* ``reroute`` — an input found on a partition other than its key's, wrapped with its original
  coordinates (:func:`reroute_value` / :func:`unwrap_reroute`).
"""

from __future__ import annotations

import base64
from typing import Any

import orjson

from smartgroups.service.ports import Record

TICK_KEY = b"tick"
TICK = b'{"k":"tick"}'
"""The tick message (the same bytes every time: ticks carry no instant, due-ness is stored)."""


def group_message(space: str, effect: str, entry: dict[str, Any], cause: Any) -> dict[str, Any]:
    """A group change for every partition's copy."""
    return {"k": "group", "space": space, "effect": effect, "entry": entry, "cause": cause}


def command_message(
    space: str, member_id: str, group_id: str | None, seq: int, effect: str, cause: Any
) -> dict[str, Any]:
    """A static-membership or blacklist command for the member's partition."""
    return {
        "k": "command",
        "space": space,
        "member_id": member_id,
        "group_id": group_id,
        "seq": seq,
        "effect": effect,
        "cause": cause,
    }


def scan_message(
    space: str, group_id: str, seq: int, effect: str, after: bytes, cause: Any
) -> bytes:
    """The next step of a backfill of ``group_id`` (at change ``seq``) after member key
    ``after``."""
    return orjson.dumps(
        {
            "k": "scan",
            "space": space,
            "group_id": group_id,
            "seq": seq,
            "effect": effect,
            "after": after.decode(),
            "cause": cause,
        }
    )


def blacklist_message(
    space: str, group_id: str, seq: int, member_ids: list[str], cause: Any
) -> dict[str, Any]:
    """A created group's blacklist, for the partition that owns ``member_ids``."""
    return {
        "k": "blacklist",
        "space": space,
        "group_id": group_id,
        "seq": seq,
        "member_ids": member_ids,
        "cause": cause,
    }


def set_message(space: str, effect: str, entry: dict[str, Any], cause: Any) -> dict[str, Any]:
    """A segment set change for every partition's copy."""
    return {"k": "set", "space": space, "effect": effect, "entry": entry, "cause": cause}


def set_scan_message(space: str, set_id: str, seq: int, after: bytes, cause: Any) -> bytes:
    """The next step of resolving segment set ``set_id`` (at change ``seq``) after ``after``."""
    return orjson.dumps(
        {
            "k": "set_scan",
            "space": space,
            "set_id": set_id,
            "seq": seq,
            "after": after.decode(),
            "cause": cause,
        }
    )


def reroute_value(record: Record) -> bytes:
    """Wrap a record found on the wrong partition, to be sent to its key's partition."""
    return orjson.dumps(
        {
            "k": "reroute",
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "key": None if record.key is None else base64.b64encode(record.key).decode(),
            "value": None if record.value is None else base64.b64encode(record.value).decode(),
        }
    )


def unwrap_reroute(record: Record) -> Record:
    """The original record inside a re-route wrapper (see :func:`reroute_value`)."""
    doc = orjson.loads(record.value or b"{}")
    return Record(
        topic=doc["topic"],
        partition=int(doc["partition"]),
        offset=int(doc["offset"]),
        key=None if doc["key"] is None else base64.b64decode(doc["key"]),
        value=None if doc["value"] is None else base64.b64decode(doc["value"]),
        rerouted=True,
    )
