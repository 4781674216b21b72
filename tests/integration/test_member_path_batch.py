"""The batch member path (``SMARTGROUPS_MEMBER_PATH=batch``) under the agent path's own tests.

The same scenarios and fault tests run here with every worker on the batch path: the contract's
outputs must not depend on how members are consumed. Plus what only the batch path has to
prove: a worker whose data directory is lost rebuilds its member tables from their changelogs.
"""

from __future__ import annotations

import shutil
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration.harness import Cluster, final_memberships, state_memberships
from tests.integration.scenario import Scenario
from tests.integration.test_worker_faults import (
    ACME,
    assert_clean_history,
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

BATCH = {"SMARTGROUPS_MEMBER_PATH": "batch"}

__all__ = [
    "sc",
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
    """A test's own batch-path world (the scenario tests, which take ``sc``, get a started
    worker); ``sc`` is the scenario module's own fixture, resolved against this one."""
    world = Cluster(kafka_bootstrap, tmp_path, f"b{uuid.uuid4().hex[:10]}", env=dict(BATCH))
    if "sc" in request.fixturenames:
        world.worker(0).start()
    yield world
    world.stop_all()


def test_a_lost_data_directory_is_rebuilt_from_the_changelogs(cluster: Cluster) -> None:
    worker = cluster.worker()
    worker.start()
    sc = Scenario(cluster, "dd")
    sc.define("group.created", group_id="g", name="G", kind="smart", conditions={"all": [ACME]})
    members = [f"m{i}" for i in range(40)]
    for m in members:
        sc.upsert(m, email=f"{m}@acme.com", status="accepted")
    sc.wait_members("g", set(members))
    assert worker.stop(signal.SIGKILL) != 0
    shutil.rmtree(worker.data_dir)
    cluster.worker().start()
    # The rebuilt state knows every member: leaving and re-joining continue the versions.
    for m in members[:10]:
        sc.upsert(m, status="declined")
    sc.wait_members("g", set(members[10:]))
    changes = cluster.settle()
    assert_clean_history(changes)
    removed = [e for e in changes if e["type"] == "member.removed"]
    assert {e["version"] for e in removed} == {2}
    assert state_memberships(cluster.read("membership-state")) == final_memberships(changes)
