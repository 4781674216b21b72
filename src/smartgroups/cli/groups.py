"""The app's consumer groups as the operations commands see them (``reset``, ``dead-letters``).

* :func:`members` -- how many consumers each group has now (from ``DescribeGroups``): a command
  that moves a group's offsets refuses while any is in it, because a running member would
  overwrite the new offsets with its own at its next commit.
* :func:`committed` -- a group's committed offsets; :func:`commit` -- set them, from outside the
  group (a consumer with the group id and a manual assignment commits as a "simple" consumer,
  which Kafka accepts for a group without members).
* :func:`ends` / :func:`beginnings` / :func:`offsets_for_times` -- what the broker holds.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from smartgroups.cli import connect
from smartgroups.settings import Settings


async def admin_client(settings: Settings, session: connect.KafkaSession) -> Any:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(
        **settings.kafka_client_options(),
        request_timeout_ms=int(connect.CONNECT_TIMEOUT_S * 1000),
    )
    await connect.start(admin, session)
    return admin


async def members(admin: Any, group_ids: Sequence[str]) -> dict[str, int]:
    """Number of members of each group now (0 for a group that is empty or unknown)."""
    counts = dict.fromkeys(group_ids, 0)
    # One group per request: aiokafka 0.14 decodes a DescribeGroups v3 answer with the v2
    # schema (no ``authorized_operations``), which misreads every group after the first.
    for wanted in group_ids:
        for response in await admin.describe_consumer_groups([wanted]):
            for group in response.groups:
                error_code, group_id = group[0], group[1]
                if error_code == 0 and group_id == wanted:
                    counts[wanted] = len(group[5])
    return counts


async def committed(admin: Any, group_id: str, tps: Iterable[Any]) -> dict[Any, int | None]:
    """The committed offset of each of ``tps`` for ``group_id`` (``None``: nothing committed)."""
    wanted = list(tps)
    found = await admin.list_consumer_group_offsets(group_id, partitions=wanted)
    out: dict[Any, int | None] = {}
    for tp in wanted:
        meta = found.get(tp)
        out[tp] = meta.offset if meta is not None and meta.offset >= 0 else None
    return out


async def commit(
    settings: Settings, session: connect.KafkaSession, group_id: str, offsets: dict[Any, int]
) -> None:
    """Commit ``offsets`` for ``group_id`` from outside the group (see the module docstring)."""
    from aiokafka import AIOKafkaConsumer

    if not offsets:
        return
    consumer = AIOKafkaConsumer(
        **settings.kafka_client_options(),
        group_id=group_id,
        enable_auto_commit=False,
        request_timeout_ms=int(connect.CONNECT_TIMEOUT_S * 1000),
    )
    await connect.start(consumer, session)
    try:
        consumer.assign(list(offsets))
        await consumer.commit(dict(offsets))
    finally:
        await connect.stop(consumer)


async def reader(settings: Settings, session: connect.KafkaSession) -> Any:
    """A started consumer outside any group, to read topics and their offsets."""
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        **settings.kafka_client_options(),
        group_id=None,
        enable_auto_commit=False,
        request_timeout_ms=int(connect.CONNECT_TIMEOUT_S * 1000),
    )
    await connect.start(consumer, session)
    return consumer


async def partitions(
    consumer: Any, topics: Sequence[str], session: connect.KafkaSession
) -> list[Any]:
    """Every partition of ``topics`` (:class:`~smartgroups.errors.TopicMissing` if one is not
    there), in topic then partition order."""
    from aiokafka import TopicPartition

    out = []
    for topic in topics:
        for p in await connect.topic_partitions(consumer, topic, session):
            out.append(TopicPartition(topic, p))
    return out
