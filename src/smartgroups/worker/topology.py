"""Every topic the worker uses, checked, created and verified before faust starts.

Member-keyed topics and the worker's internal topics share one partition count (contract
section 2), so that a member's inputs, its state and its internal messages live on the same
partition number. ``group-changes`` and its internal twin share it too.

**faust's own topics are listed here as well**: the changelogs of the four tables
(``{app}-{table}-changelog``, compacted, one partition per input partition) and the assignor's
leader topic (``{app}-__assignor-__leader``, one partition). Left to faust, they are created
while the first partition assignment is already running; on a fresh broker the assignment can
win that race, the changelogs then show 0 partitions and every table write fails
(``PartitionsMismatch``). This module is the one owner of those names: :mod:`.app` builds the
faust app and its tables from :class:`Topology` and checks faust derives the same names.

:func:`ensure_topics` works in three steps, so that a refusal never leaves anything behind:

1. **check**: describe every topic; if any existing one has another partition count or cleanup
   policy, raise :class:`~smartgroups.errors.TopologyError` listing *every* problem, before
   creating anything (issue 14 item 6: a half-created set of topics with the wrong settings would
   refuse the fixed setting next time);
2. **create** what is missing;
3. **wait** (bounded) until every broker's metadata shows every topic with its full partition
   count and a leader for every partition, then check partitions and cleanup policy once more.

Decisions: topics are created with replication factor 1 on a single-broker cluster and the
broker's default otherwise; a topic this worker expects to be plain but finds compacted is
refused too (compaction would silently drop inputs or outputs); the leader topic's expected
count is 1 whatever ``SMARTGROUPS_PARTITIONS`` says.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.protocol.metadata import MetadataRequest

from smartgroups.errors import TopologyError
from smartgroups.settings import Settings
from smartgroups.wire.topics import (
    DEAD_LETTERS,
    GROUP_CHANGE_RESULTS,
    GROUP_CHANGES,
    MEMBER_INPUTS,
    MEMBERSHIP_CHANGES,
    MEMBERSHIP_STATE,
    SEGMENT_CHANGES,
    SEGMENT_STATE,
)

MEMBER_TOPICS = MEMBER_INPUTS
"""Input topics keyed ``{space}:{member_id}``, read by the member path."""

TABLES = ("members", "groups", "due", "catalogs")
"""The worker's faust tables; each has a compacted changelog topic (see the module docstring)."""

QUERY_TABLES = ("index",)
"""Tables only the batch member loop keeps (the query API's indexes), with their changelogs."""

_UNKNOWN_TOPIC = 3  # Kafka error code UNKNOWN_TOPIC_OR_PARTITION
_TOPIC_EXISTS = 36  # Kafka error code TOPIC_ALREADY_EXISTS (another worker created it first)


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """A topic the worker needs: full ``name``, ``partitions`` and whether it is compacted."""

    name: str
    partitions: int
    compacted: bool = False


@dataclass(frozen=True, slots=True)
class TopicState:
    """What the cluster says of an existing topic: partition count and ``cleanup.policy``."""

    partitions: int
    policy: str = "delete"


@dataclass(frozen=True, slots=True)
class Topology:
    """Every topic name the worker uses, with the configured prefix applied."""

    app_id: str
    member_inputs: tuple[str, ...]
    group_changes: str
    membership_changes: str
    membership_state: str
    results: str
    dead_letters: str
    segment_changes: str
    segment_state: str
    fanout: str
    commands: str
    partitions: int

    @classmethod
    def from_settings(cls, settings: Settings) -> Topology:
        app_id = f"{settings.topic_prefix}{settings.app_id}"
        return cls(
            app_id=app_id,
            member_inputs=tuple(settings.topic(t) for t in MEMBER_TOPICS),
            group_changes=settings.topic(GROUP_CHANGES),
            membership_changes=settings.topic(MEMBERSHIP_CHANGES),
            membership_state=settings.topic(MEMBERSHIP_STATE),
            results=settings.topic(GROUP_CHANGE_RESULTS),
            dead_letters=settings.topic(DEAD_LETTERS),
            segment_changes=settings.topic(SEGMENT_CHANGES),
            segment_state=settings.topic(SEGMENT_STATE),
            fanout=f"{app_id}-fanout",
            commands=f"{app_id}-commands",
            partitions=settings.partitions,
        )

    @property
    def member_group(self) -> str:
        """The consumer group of the batch member path (``SMARTGROUPS_MEMBER_PATH=batch``)."""
        return f"{self.app_id}-members"

    def changelog(self, table: str) -> str:
        """The changelog topic of ``table`` (``{app}-{table}-changelog``), written by faust for
        its tables and by the member loop for its own (``members``, ``groups``, ``due``,
        ``index``)."""
        return f"{self.app_id}-{table}-changelog"

    @property
    def leader(self) -> str:
        """faust's leader-election topic (partition 0's owner is the leader)."""
        return f"{self.app_id}-__assignor-__leader"

    def roles(self) -> dict[str, str]:
        """The topic each output *role* is sent to (the services send by role)."""
        return {
            "fanout": self.fanout,
            "commands": self.commands,
            "changes": self.membership_changes,
            "state": self.membership_state,
            "results": self.results,
            "dead_letters": self.dead_letters,
            "segments": self.segment_changes,
            "segment_state": self.segment_state,
        }

    @property
    def sources(self) -> frozenset[str]:
        """The topics faust's agents may read (all of them on the agent member path; on the batch
        path faust subscribes only to the definitions' and the loop reports its own)."""
        return frozenset({*self.member_inputs, self.fanout, self.group_changes, self.commands})

    def logical(self, topic: str) -> str:
        """The contract name of full topic name ``topic`` (prefix removed)."""
        for logical, full in zip(MEMBER_TOPICS, self.member_inputs, strict=True):
            if full == topic:
                return logical
        if topic == self.group_changes:
            return GROUP_CHANGES
        return topic

    def specs(self) -> list[TopicSpec]:
        """Every topic the worker uses: the contract's, its internal ones and faust's own."""
        n = self.partitions
        return [
            *(TopicSpec(t, n) for t in self.member_inputs),
            TopicSpec(self.group_changes, n),
            TopicSpec(self.membership_changes, n),
            TopicSpec(self.membership_state, n, compacted=True),
            TopicSpec(self.results, n),
            TopicSpec(self.dead_letters, n),
            TopicSpec(self.segment_changes, n),
            TopicSpec(self.segment_state, n, compacted=True),
            TopicSpec(self.fanout, n),
            TopicSpec(self.commands, n),
            *(TopicSpec(self.changelog(t), n, compacted=True) for t in (*TABLES, *QUERY_TABLES)),
            TopicSpec(self.leader, 1),
        ]


# -- pure checks -------------------------------------------------------------------------------
def misfits(specs: Sequence[TopicSpec], found: Mapping[str, TopicState]) -> list[str]:
    """One line per existing topic of ``specs`` that does not fit (missing topics are fine)."""
    problems = []
    for spec in specs:
        state = found.get(spec.name)
        if state is None:
            continue
        if state.partitions != spec.partitions:
            problems.append(
                f"{spec.name} has {state.partitions} partitions, expected {spec.partitions}"
            )
        compacted = "compact" in state.policy
        if spec.compacted and not compacted:
            problems.append(f"{spec.name} has cleanup.policy={state.policy}, expected compact")
        elif compacted and not spec.compacted:
            problems.append(f"{spec.name} is compacted, expected cleanup.policy=delete")
    return problems


def refusal(
    specs: Sequence[TopicSpec],
    found: Mapping[str, TopicState],
    problems: Sequence[str],
    *,
    created: bool = False,
) -> str:
    """The whole message of a refusal: every problem, then what to do about it (``created``:
    this worker created some topics before it found the problems)."""
    expected = Counter(s.partitions for s in specs).most_common(1)[0][0]  # the shared count
    counts = {
        found[s.name].partitions
        for s in specs
        if s.name in found and s.partitions == expected and found[s.name].partitions != expected
    }
    if len(counts) == 1:
        (count,) = counts
        fix = (
            f"set SMARTGROUPS_PARTITIONS={count} to use the existing topics, or delete the "
            f"topics listed to start afresh with {expected} partitions"
        )
    elif counts:
        fix = "the existing topics disagree with each other: delete the topics listed"
    else:
        fix = "delete the topics listed, or set their cleanup.policy as expected"
    if any("cleanup.policy" in p or "compacted" in p for p in problems) and counts:
        fix += "; fix or delete the topics whose cleanup.policy is wrong"
    return (
        "existing topics do not fit the configuration: "
        + "; ".join(problems)
        + (". " if created else ". Nothing was created. ")
        + f"To fix: {fix}."
    )


def unready(specs: Sequence[TopicSpec], views: Sequence[Mapping[str, list[int]]]) -> list[str]:
    """What keeps ``specs`` from being usable, per broker view ``{topic: [leader per partition]}``.

    A topic is ready when every view lists it with all its partitions and each partition has a
    leader (a leader id ``>= 0``). Returns one line per topic that is not, naming why.
    """
    problems = []
    for spec in specs:
        for view in views:
            leaders = view.get(spec.name)
            if leaders is None:
                problems.append(f"{spec.name} is not in the cluster's metadata yet")
                break
            if len(leaders) < spec.partitions:
                problems.append(f"{spec.name} shows {len(leaders)} of {spec.partitions} partitions")
                break
            leaderless = [p for p, leader in enumerate(leaders) if leader < 0]
            if leaderless:
                problems.append(f"{spec.name} has no leader for partitions {leaderless}")
                break
    return problems


# -- against the cluster -----------------------------------------------------------------------
async def ensure_topics(settings: Settings, topology: Topology, timeout: float = 60.0) -> None:
    """Check, create, then wait for every topic of ``topology`` (see the module docstring).

    Raises :class:`TopologyError` when an existing topic does not fit (nothing is created
    then), when the broker refuses to create one, or when the topics are not all ready within
    ``timeout`` seconds.
    """
    admin = AIOKafkaAdminClient(**settings.kafka_client_options(), request_timeout_ms=30000)
    try:
        await asyncio.wait_for(admin.start(), timeout)
        specs = topology.specs()
        names = [s.name for s in specs]
        found = await _describe(admin, names)
        problems = misfits(specs, found)
        if problems:
            raise TopologyError(refusal(specs, found, problems))
        missing = [s for s in specs if s.name not in found]
        if missing:
            await _create(admin, missing)
        found = await _settled(admin, specs, timeout)
        problems = misfits(specs, found)
        if problems:  # another process created some of them otherwise meanwhile
            raise TopologyError(refusal(specs, found, problems, created=bool(missing)))
    finally:
        await admin.close()


async def _settled(
    admin: AIOKafkaAdminClient, specs: list[TopicSpec], timeout: float
) -> dict[str, TopicState]:
    """Wait until :func:`unready` finds nothing in any broker's metadata and every topic's
    configuration can be read; return their states. Raise when ``timeout`` passes first."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    names = [s.name for s in specs]
    while True:
        problems = unready(specs, await _views(admin, names))
        if not problems:
            found = await _describe(admin, names)
            problems = [f"{n}'s configuration cannot be read yet" for n in names if n not in found]
            if not problems:
                return found
        if loop.time() > deadline:
            raise TopologyError(
                f"the worker's topics were not ready within {timeout:.0f} s: "
                + "; ".join(problems)
                + ". Check the broker's health and log, then start the worker again."
            )
        await asyncio.sleep(0.25)


async def _views(admin: AIOKafkaAdminClient, names: list[str]) -> list[dict[str, list[int]]]:
    """Each broker's metadata of ``names``: ``{topic: [leader id per partition]}``.

    Every broker is asked, not one: faust's clients may ask any of them, and a new topic reaches
    each broker's metadata cache at its own pace.
    """
    client = admin._client
    nodes = [b.nodeId for b in client.cluster.brokers()] or [client.get_random_node()]
    views = []
    for node in nodes:
        request = MetadataRequest(names, allow_auto_topic_creation=False)
        response = (await client.send(node, request)).to_object()
        view: dict[str, list[int]] = {}
        for topic in response["topics"]:
            if topic["error_code"] == _UNKNOWN_TOPIC:
                continue
            leaders = {p["partition"]: p["leader"] for p in topic["partitions"]}
            view[topic["topic"]] = [leaders.get(p, -1) for p in range(len(leaders))]
        views.append(view)
    return views


async def _create(admin: AIOKafkaAdminClient, specs: list[TopicSpec]) -> None:
    replication = 1 if len(admin._client.cluster.brokers()) <= 1 else -1
    new = [
        NewTopic(
            s.name,
            s.partitions,
            replication,
            topic_configs={"cleanup.policy": "compact" if s.compacted else "delete"},
        )
        for s in specs
    ]
    response: Any = await admin.create_topics(new)
    refused = [
        f"{entry[0]}: {entry[2] or 'error ' + str(entry[1])}"
        for entry in response.topic_errors
        if entry[1] not in (0, _TOPIC_EXISTS)
    ]
    if refused:
        raise TopologyError("the broker refused to create topics: " + "; ".join(refused))


async def _describe(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, TopicState]:
    """The :class:`TopicState` of each topic among ``names`` that exists (and whose partitions
    and configuration the broker can already tell)."""
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
            code, name, entries = resource[0], resource[3], resource[4]
            if code:
                continue  # not known to the broker answering yet: as if missing
            policies[name] = next((e[1] for e in entries if e[0] == "cleanup.policy"), "delete")
    return {n: TopicState(p, policies[n]) for n, p in partitions.items() if n in policies}
