"""The worker's topic list and the checks made before anything is created (no broker)."""

from __future__ import annotations

import pytest

from smartgroups.settings import Settings
from smartgroups.worker.topology import (
    TopicSpec,
    TopicState,
    Topology,
    misfits,
    refusal,
    unready,
)


def topology(partitions: int = 4) -> Topology:
    env = {
        "SMARTGROUPS_TOPIC_PREFIX": "p.",
        "SMARTGROUPS_APP_ID": "sg",
        "SMARTGROUPS_PARTITIONS": str(partitions),
    }
    return Topology.from_settings(Settings.from_env(env))


def test_specs_list_every_topic_faust_uses_with_its_size_and_compaction() -> None:
    specs = {s.name: (s.partitions, s.compacted) for s in topology().specs()}
    assert specs == {
        "p.member-changes": (4, False),
        "p.property-changes": (4, False),
        "p.form-answers": (4, False),
        "p.group-changes": (4, False),
        "p.membership-changes": (4, False),
        "p.membership-state": (4, True),
        "p.group-change-results": (4, False),
        "p.dead-letters": (4, False),
        "p.segment-changes": (4, False),
        "p.segment-state": (4, True),
        "p.sg-fanout": (4, False),
        "p.sg-commands": (4, False),
        "p.sg-members-changelog": (4, True),
        "p.sg-groups-changelog": (4, True),
        "p.sg-due-changelog": (4, True),
        "p.sg-catalogs-changelog": (4, True),
        "p.sg-index-changelog": (4, True),
        "p.sg-__assignor-__leader": (1, False),
    }


@pytest.mark.parametrize("path", ["batch", "agent"])
def test_the_app_and_the_member_loop_write_the_topologys_changelogs(
    tmp_path: object, path: str
) -> None:
    """Every changelog the worker writes is one the topology created and verified: faust's
    tables' (all four on the agent path, the catalogs on the batch path) and the member loop's
    (its query index only on the batch path: the agent path keeps no index)."""
    from smartgroups.worker.app import create_app
    from smartgroups.worker.member_loop import MEMBER_TABLES

    env = {
        "SMARTGROUPS_TOPIC_PREFIX": "p.",
        "SMARTGROUPS_APP_ID": "sg",
        "SMARTGROUPS_MEMBER_PATH": path,
        "SMARTGROUPS_DATA_DIR": str(tmp_path),
    }
    runtime = create_app(Settings.from_env(env))
    assert runtime.app.conf.id == "p.sg"
    by_faust = {t.changelog_topic_name for t in runtime.app.tables.values()}
    by_loop = (
        {runtime.topology.changelog(name) for name in MEMBER_TABLES} if path == "batch" else set()
    )
    assert not by_faust & by_loop
    specs = {s.name for s in runtime.topology.specs() if s.name.endswith("-changelog")}
    unused = {runtime.topology.changelog("index")} if path == "agent" else set()
    assert by_faust | by_loop == specs - unused
    assert (runtime.member_loop is not None) == (path == "batch")


def test_missing_topics_are_no_misfit_but_every_wrong_one_is_listed() -> None:
    specs = topology().specs()
    found = {
        "p.member-changes": TopicState(8),
        "p.membership-state": TopicState(4, "delete"),
        "p.dead-letters": TopicState(4, "compact"),
        "p.sg-catalogs-changelog": TopicState(8, "compact"),
        "p.group-changes": TopicState(4, "delete"),
        "p.sg-__assignor-__leader": TopicState(1),
    }
    assert misfits(specs, found) == [
        "p.member-changes has 8 partitions, expected 4",
        "p.membership-state has cleanup.policy=delete, expected compact",
        "p.dead-letters is compacted, expected cleanup.policy=delete",
        "p.sg-catalogs-changelog has 8 partitions, expected 4",
    ]
    assert misfits(specs, {}) == []


def test_the_refusal_names_the_existing_count_to_set() -> None:
    specs = topology().specs()
    found = {"p.member-changes": TopicState(8), "p.sg-due-changelog": TopicState(8, "compact")}
    message = refusal(specs, found, misfits(specs, found))
    assert message.startswith(
        "existing topics do not fit the configuration: p.member-changes has 8 partitions, "
        "expected 4; p.sg-due-changelog has 8 partitions, expected 4. Nothing was created."
    )
    assert "set SMARTGROUPS_PARTITIONS=8 to use the existing topics" in message
    split = {"p.member-changes": TopicState(8), "p.form-answers": TopicState(2)}
    assert "disagree" in refusal(specs, split, misfits(specs, split))


def test_a_topic_is_ready_when_every_broker_shows_all_its_partitions_led() -> None:
    specs = [TopicSpec("a", 2), TopicSpec("b", 1)]
    good = {"a": [1, 2], "b": [1]}
    assert unready(specs, [good, good]) == []
    assert unready(specs, [good, {"a": [1, 2]}]) == ["b is not in the cluster's metadata yet"]
    assert unready(specs, [{"a": [1], "b": [1]}]) == ["a shows 1 of 2 partitions"]
    assert unready(specs, [{"a": [-1, 2], "b": [-1]}]) == [
        "a has no leader for partitions [0]",
        "b has no leader for partitions [0]",
    ]
