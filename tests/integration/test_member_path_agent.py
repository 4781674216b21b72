"""The agent member path (``SMARTGROUPS_MEMBER_PATH=agent``) under the scenarios and fault tests.

The whole integration suite runs on the default member path (batches on the worker's own
consumer); the scenarios and fault tests run here once more with every worker on the previous
path, a faust agent, while it is kept: the contract's outputs must not depend on how members are
consumed, and a worker whose data directory is lost must rebuild its tables from their
changelogs on both.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration.harness import Cluster
from tests.integration.test_worker_faults import (
    test_a_lost_data_directory_is_rebuilt_from_the_changelogs,
    test_a_second_worker_joining_and_leaving_gives_the_same_memberships,
    test_bad_input_is_dead_lettered_and_the_stream_goes_on,
    test_events_on_the_wrong_partition_are_applied_to_the_right_state,
    test_restart_after_sigterm_and_sigkill_keeps_state_without_duplicates,
)
from tests.integration.test_worker_scenarios import (
    sc,
    test_and_or_over_all_four_trigger_kinds,
    test_backfill_of_a_new_group_over_existing_members,
    test_blacklist_and_unblacklist,
    test_deactivate_reactivate_and_delete,
    test_erasure_leaves_every_group_and_forgets,
    test_group_of_groups_cascade_three_deep,
    test_membership_state_mirrors_the_changes,
)

AGENT = {"SMARTGROUPS_MEMBER_PATH": "agent"}

__all__ = [
    "sc",
    "test_a_lost_data_directory_is_rebuilt_from_the_changelogs",
    "test_a_second_worker_joining_and_leaving_gives_the_same_memberships",
    "test_and_or_over_all_four_trigger_kinds",
    "test_backfill_of_a_new_group_over_existing_members",
    "test_bad_input_is_dead_lettered_and_the_stream_goes_on",
    "test_blacklist_and_unblacklist",
    "test_deactivate_reactivate_and_delete",
    "test_erasure_leaves_every_group_and_forgets",
    "test_events_on_the_wrong_partition_are_applied_to_the_right_state",
    "test_group_of_groups_cascade_three_deep",
    "test_membership_state_mirrors_the_changes",
    "test_restart_after_sigterm_and_sigkill_keeps_state_without_duplicates",
]


@pytest.fixture
def cluster(
    kafka_bootstrap: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Cluster]:
    """A test's own agent-path world (the scenario tests, which take ``sc``, get a started
    worker); ``sc`` is the scenario module's own fixture, resolved against this one."""
    world = Cluster(kafka_bootstrap, tmp_path, f"a{uuid.uuid4().hex[:10]}", env=dict(AGENT))
    if "sc" in request.fixturenames:
        world.worker(0).start()
    yield world
    world.stop_all()
