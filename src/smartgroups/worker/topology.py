"""The topics the worker reads and writes, created when missing and verified when present.

Member-keyed topics and the worker's internal topics share one partition count (contract
section 2), so that a member's inputs, its state and its internal messages live on the same
partition number. ``group-changes`` and its internal twin share it too. The worker creates what
is missing at start and refuses to start (:class:`~smartgroups.errors.TopologyError`) when an
existing topic has another partition count or cleanup policy: routing keys to the wrong
partitions would silently split a member's state.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAlreadyExistsError

from smartgroups.errors import TopologyError
from smartgroups.settings import Settings

MEMBER_TOPICS = ("member-changes", "property-changes", "form-answers")
"""Input topics keyed ``{space}:{member_id}``, read by the member agent."""


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """A topic the worker needs: full ``name``, ``partitions`` and whether it is compacted."""

    name: str
    partitions: int
    compacted: bool = False


@dataclass(frozen=True, slots=True)
class Topology:
    """Every topic name the worker uses, with the configured prefix applied."""

    member_inputs: tuple[str, ...]
    group_changes: str
    membership_changes: str
    membership_state: str
    results: str
    dead_letters: str
    fanout: str
    commands: str
    partitions: int

    @classmethod
    def from_settings(cls, settings: Settings) -> Topology:
        internal = f"{settings.topic_prefix}{settings.app_id}"
        return cls(
            member_inputs=tuple(settings.topic(t) for t in MEMBER_TOPICS),
            group_changes=settings.topic("group-changes"),
            membership_changes=settings.topic("membership-changes"),
            membership_state=settings.topic("membership-state"),
            results=settings.topic("group-change-results"),
            dead_letters=settings.topic("dead-letters"),
            fanout=f"{internal}-fanout",
            commands=f"{internal}-commands",
            partitions=settings.partitions,
        )

    def logical(self, topic: str) -> str:
        """The contract name of full topic name ``topic`` (prefix removed)."""
        for logical, full in zip(MEMBER_TOPICS, self.member_inputs, strict=True):
            if full == topic:
                return logical
        if topic == self.group_changes:
            return "group-changes"
        return topic

    def specs(self) -> list[TopicSpec]:
        """Every topic the worker creates or checks (faust creates its own changelogs)."""
        n = self.partitions
        return [
            *(TopicSpec(t, n) for t in self.member_inputs),
            TopicSpec(self.group_changes, n),
            TopicSpec(self.membership_changes, n),
            TopicSpec(self.membership_state, n, compacted=True),
            TopicSpec(self.results, n),
            TopicSpec(self.dead_letters, n),
            TopicSpec(self.fanout, n),
            TopicSpec(self.commands, n),
        ]


async def ensure_topics(settings: Settings, topology: Topology, timeout: float = 60.0) -> None:
    """Create missing topics; raise :class:`TopologyError` if an existing one does not fit."""
    admin = AIOKafkaAdminClient(**settings.kafka_client_options(), request_timeout_ms=30000)
    await asyncio.wait_for(admin.start(), timeout)
    try:
        specs = topology.specs()
        existing = await _describe(admin, [s.name for s in specs])
        missing = [s for s in specs if s.name not in existing]
        if missing:
            await _create(admin, missing)
            existing = await _settled(admin, [s.name for s in specs], timeout)
        problems = [p for s in specs if (p := _check(s, existing.get(s.name)))]
        if problems:
            raise TopologyError(
                "existing topics do not fit the configuration: "
                + "; ".join(problems)
                + ". Recreate them or set SMARTGROUPS_PARTITIONS to the existing count."
            )
    finally:
        await admin.close()


async def _settled(
    admin: AIOKafkaAdminClient, names: list[str], timeout: float
) -> dict[str, tuple[int, str]]:
    """:func:`_describe` until every topic of ``names`` shows (new topics' metadata takes a
    moment to reach every broker), or ``timeout`` passes: then what was found."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        found = await _describe(admin, names)
        if len(found) == len(names) or asyncio.get_running_loop().time() > deadline:
            return found
        await asyncio.sleep(0.25)


async def _create(admin: AIOKafkaAdminClient, specs: list[TopicSpec]) -> None:
    new = [
        NewTopic(
            s.name,
            s.partitions,
            1 if _single_broker(admin) else -1,
            topic_configs={"cleanup.policy": "compact"} if s.compacted else {},
        )
        for s in specs
    ]
    with contextlib.suppress(TopicAlreadyExistsError):  # a racing worker made them first
        await admin.create_topics(new)


def _single_broker(admin: AIOKafkaAdminClient) -> bool:
    brokers = admin._client.cluster.brokers()
    return len(brokers) <= 1


async def _describe(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, tuple[int, str]]:
    """``{topic: (partitions, cleanup.policy)}`` for the topics among ``names`` that exist."""
    listed = set(await admin.list_topics())
    present = [n for n in names if n in listed]
    if not present:
        return {}
    described = await admin.describe_topics(present)
    partitions = {d["topic"]: len(d["partitions"]) for d in described if not d.get("error_code")}
    configs = await admin.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, n) for n in partitions]
    )
    policies: dict[str, str] = {}
    for response in configs:
        for resource in response.resources:
            # (error_code, error_message, resource_type, resource_name, config_entries)
            name, entries = resource[3], resource[4]
            for entry in entries:
                if entry[0] == "cleanup.policy":
                    policies[name] = entry[1]
    return {n: (p, policies.get(n, "delete")) for n, p in partitions.items()}


def _check(spec: TopicSpec, found: tuple[int, str] | None) -> str | None:
    if found is None:
        return f"{spec.name} could not be created"
    partitions, policy = found
    if partitions != spec.partitions:
        return f"{spec.name} has {partitions} partitions, expected {spec.partitions}"
    if spec.compacted and "compact" not in policy:
        return f"{spec.name} has cleanup.policy={policy}, expected compact"
    if not spec.compacted and "compact" in policy:
        return f"{spec.name} is compacted, expected cleanup.policy=delete"
    return None
