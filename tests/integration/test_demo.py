"""``make run``'s worker on the real broker: what a newcomer sees, and that it is true.

A real ``smartgroups worker --demo`` process with the cluster's own topic prefix, run from the
repository root as ``make run`` does. Its standard output must be the banner and then exactly the
membership changes the examples make; its standard error no ERROR and no traceback; neither
any terminal escape. The changes it prints are checked against ``membership-changes`` itself:
adding m3 to ``coaches`` cascades into ``acme-vip`` with the same cause.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from tests.integration.harness import Cluster

REPO = Path(__file__).resolve().parents[2]
EXPECTED = [
    "member.added demo/coaches/m3 v1 (manual)",
    "member.added demo/acme-vip/m3 v1 (conditions_met)",
    "member.added demo/acme-vip/m1 v1 (conditions_met)",
    "member.added demo/tennis-fans/m2 v1 (conditions_met)",
]


def changes_printed(path: Path) -> list[str]:
    return [line for line in path.read_text(errors="replace").splitlines() if line[:7] == "member."]


def test_make_run_shows_a_banner_then_one_line_per_change(cluster: Cluster) -> None:
    worker = cluster.worker(0)
    out_path, err_path = cluster.root / "demo.out", cluster.root / "demo.err"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "smartgroups", "worker", "--demo"],
            env=worker.env,
            cwd=REPO,
            stdout=out,
            stderr=err,
        )
    try:
        deadline = time.monotonic() + 90
        while len(changes_printed(out_path)) < len(EXPECTED) and time.monotonic() < deadline:
            assert proc.poll() is None, err_path.read_text(errors="replace")[-4000:]
            time.sleep(0.5)
        time.sleep(2)  # nothing more may follow
        printed = changes_printed(out_path)
        errors = err_path.read_text(errors="replace")
        assert sorted(printed) == sorted(EXPECTED), errors[-4000:]
        # Two changes of one member are on one partition: printed in the order they were made.
        assert printed.index(EXPECTED[0]) < printed.index(EXPECTED[1])
    finally:
        proc.terminate()
        assert proc.wait(60) == 0

    stdout = out_path.read_text(errors="replace")
    banner = stdout.splitlines()[0]
    assert banner.startswith("smartgroups ") and banner.endswith(" worker --demo")
    assert cluster.bootstrap in stdout and cluster.prefix in stdout
    assert len(stdout.splitlines()) <= 8 + len(EXPECTED)
    assert "Worker ready" in errors
    assert "ERROR" not in errors and "Traceback" not in errors, errors[-4000:]
    assert "\x1b" not in stdout + errors

    changes = {(c["group_id"], c["member_id"]): c for c in cluster.events("membership-changes")}
    coaches, acme = changes[("coaches", "m3")], changes[("acme-vip", "m3")]
    assert acme["cause"] == coaches["cause"]
    assert acme["cause"]["kind"] == "definition" and acme["cause"]["event_id"] == "demo-grp-4"
    assert acme["reason"] == "conditions_met"
