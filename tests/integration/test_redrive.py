"""Dead letters of a bug, redriven after the fix: none lost, none applied twice, none sent twice.

A deliberately broken build (``failing_build.py``: its core fails on one property) dead-letters
every ``property.set`` of that property with ``processing_error``; the fixed build (the real
worker) then runs, and ``smartgroups dead-letters redrive --code processing_error --execute``
re-produces them: every member gets its one transition, and a second redrive sends nothing.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tests.integration.harness import Cluster
from tests.integration.scenario import Scenario
from tests.integration.test_cli import cli

BROKEN = [sys.executable, str(Path(__file__).with_name("failing_build.py")), "worker"]
MEMBERS = {f"m{i}" for i in range(5)}


def test_processing_errors_are_redriven_once_after_the_fix_and_applied_once(
    cluster: Cluster,
) -> None:
    sc = Scenario(cluster, "redrive")
    broken = cluster.worker(0)
    broken.start(command=[*BROKEN, "--loglevel", "info"])
    sc.define("property.defined", property_id="fragile", name="Fragile", value_type="text")
    conditions = {"field": "property.fragile", "op": "eq", "value": "yes"}
    sc.define("group.created", group_id="fix", name="Fix", kind="smart", conditions=conditions)
    sc.wait_results()
    for member in sorted(MEMBERS):
        sc.upsert(member, status="accepted")
        sc.set_property(member, "fragile", "yes")
    cluster.produce_raw("member-changes", [(b"redrive:bad", b"not json", None)])
    letters = cluster.wait_records("dead-letters", len(MEMBERS) + 1)
    codes = sorted(dict(m.headers)["error.code"].decode() for m in letters)
    assert codes == ["decode_error"] + ["processing_error"] * len(MEMBERS)
    broken.stop()
    assert sc.members("fix") == set()

    cluster.worker(0).start()  # the fixed build, same data directory
    dry = cli(cluster, "dead-letters", "redrive", "--code", "processing_error")
    assert f"{len(MEMBERS)} dead letters would be redriven" in dry.stdout, dry.stdout + dry.stderr
    sent = cli(cluster, "dead-letters", "redrive", "--code", "processing_error", "--execute")
    assert f"{len(MEMBERS)} dead letters redriven" in sent.stdout, sent.stdout + sent.stderr
    sc.wait_members("fix", MEMBERS)
    again = cli(cluster, "dead-letters", "redrive", "--code", "processing_error", "--execute")
    assert "0 dead letters redriven" in again.stdout, again.stdout + again.stderr
    # The other code's mark did not move: its dead letter can still be redriven.
    other = cli(cluster, "dead-letters", "redrive", "--code", "decode_error")
    assert "1 dead letters would be redriven" in other.stdout, other.stdout

    changes = cluster.settle("membership-changes")
    assert sorted((e["member_id"], e["type"], e["version"]) for e in changes) == [
        (m, "member.added", 1) for m in sorted(MEMBERS)
    ]
    redriven = [m for m in cluster.read("property-changes") if "redriven.from" in dict(m.headers)]
    assert len(redriven) == len(MEMBERS)
    assert len(cluster.read("dead-letters")) == len(MEMBERS) + 1  # nothing failed again
