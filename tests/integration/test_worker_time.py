"""Time-relative triggers fire on time with no new input (contract section 5, issue 5).

One test runs on the real clock with a one-minute window and measures the delay from the due
instant to the output. The others move a running worker's clock forward through its clock file
(``SMARTGROUPS_CLOCK_FILE``), so "day 31" arrives in seconds — including while the worker is
down, to show a restart catches up on everything that fell due meanwhile.
"""

from __future__ import annotations

import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.integration.harness import Cluster
from tests.integration.scenario import Scenario
from tests.integration.test_worker_faults import assert_clean_history

DAY = 86400


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_exit_on_the_real_clock_within_seconds_of_the_due_instant(cluster: Cluster) -> None:
    cluster.worker().start()
    sc = Scenario(cluster, "rt")
    window = {"field": "profile.last_active_at", "op": "within_last", "value": {"minutes": 1}}
    sc.define("group.created", group_id="recent", name="R", kind="smart",
              conditions={"all": [window]})  # fmt: skip
    active_at = datetime.now(UTC) - timedelta(seconds=35)
    sc.upsert("m1", status="accepted", last_active_at=iso(active_at))
    sc.wait_members("recent", {"m1"})
    sc.wait_members("recent", set(), timeout=90)
    removed = next(e for e in sc.changes() if e["type"] == "member.removed")
    assert removed["reason"] == "conditions_unmet"
    assert removed["cause"] == {"kind": "time"}
    due = active_at + timedelta(minutes=1)
    delay = (parse(removed["at"]) - due).total_seconds()
    assert 0 <= delay <= 5, f"removed {delay:.3f}s after the due instant"


def test_exits_and_entries_on_a_moved_clock_and_after_a_restart(
    cluster: Cluster, tmp_path: Path
) -> None:
    clock = tmp_path / "clock-offset"
    clock.write_text("0")
    worker = cluster.worker(extra_env={"SMARTGROUPS_CLOCK_FILE": str(clock)})
    worker.start()
    sc = Scenario(cluster, "mc")
    now = datetime.now(UTC)
    sc.define("property.defined", property_id="event_at", name="Event", value_type="date")
    active = {"field": "profile.last_active_at", "op": "within_last", "value": {"days": 30}}
    upcoming = {"field": "property.event_at", "op": "within_next", "value": {"days": 1}}
    dormant = {"field": "profile.last_active_at", "op": "older_than", "value": {"days": 60}}
    has_event = {"field": "property.event_at", "op": "is_set"}
    rules = [("active", active), ("upcoming", upcoming), ("dormant", dormant), ("has", has_event)]
    for group_id, rule in rules:
        sc.define("group.created", group_id=group_id, name=group_id, kind="smart",
                  conditions={"all": [rule]})  # fmt: skip
    sc.upsert("m1", status="accepted", last_active_at=iso(now - timedelta(days=29)))
    sc.set_property("m1", "event_at", iso(now + timedelta(days=3)))
    sc.wait_members("active", {"m1"})
    sc.wait_members("has", {"m1"})  # both inputs applied
    sc.barrier("m1")  # and every group in place on m1's partition
    assert sc.members("upcoming") == set()

    clock.write_text(str(2 * DAY))  # day 31 of inactivity; the event is 1 day away
    sc.wait_members("active", set(), timeout=30)
    sc.wait_members("upcoming", {"m1"}, timeout=30)

    worker.stop(signal.SIGTERM)
    clock.write_text(str(40 * DAY))  # while down: event passed, 69 days inactive
    cluster.worker(extra_env={"SMARTGROUPS_CLOCK_FILE": str(clock)}).start()
    sc.wait_members("upcoming", set(), timeout=60)
    sc.wait_members("dormant", {"m1"}, timeout=60)
    changes = cluster.settle()
    assert_clean_history(changes)
    timed = [e for e in changes if e["group_id"] in ("upcoming", "dormant") or e["version"] > 1]
    assert {e["group_id"] for e in timed} == {"active", "upcoming", "dormant"}
    for event in timed:
        assert event["cause"] == {"kind": "time"}, event
