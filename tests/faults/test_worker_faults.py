"""Worker faults (reliability.md F1, F2, F4, F6, F7, F15, F16, F17) on the session's shared broker.

Each test has its own topics, consumer groups and data directories; the checker and I6's
sampler read the outputs directly from the broker.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from tests.faults.checker import read_topic
from tests.faults.world import World
from tests.integration.harness import WorkerProcess
from tests.integration.test_cli import run_cli

from smartgroups.worker import crashpoint


def _begin(world: World, workers: int = 1) -> None:
    for index in range(workers):
        world.cluster.worker(index).start(timeout=120)
    world.define()
    world.send(world.workload.events(150, poison_every=50))


def _finish(world: World, scenario: str, healed_at: float) -> None:
    world.send(world.workload.events(100))
    world.converge()
    verdict = world.verdict(scenario, time.monotonic() - healed_at)
    assert verdict.ok, verdict.problems


@pytest.mark.slow
def test_f7_a_zombie_past_the_session_timeout(world: World) -> None:
    """SIGSTOP one of two workers for 25 s (session timeout 15 s): the other takes its
    partitions; on SIGCONT the zombie's late writes must not break I3/I4 downstream."""
    _begin(world, workers=2)
    zombie = world.cluster.workers[1]
    assert zombie.proc is not None
    with world.sample_commits(), world.feeding():
        time.sleep(1)
        zombie.proc.send_signal(signal.SIGSTOP)
        time.sleep(25)
        zombie.proc.send_signal(signal.SIGCONT)
        healed = time.monotonic()
        time.sleep(5)
    _finish(world, "F7 zombie: SIGSTOP 25 s past a 15 s session timeout", healed)


def _churn(world: World, seconds: float, rng: random.Random) -> None:
    """Stop and start the workers at random (SIGTERM or SIGKILL) every 1-20 s, keeping at least
    one running, for ``seconds``."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(min(rng.uniform(1, 20), max(0.0, end - time.monotonic())))
        index = rng.randrange(len(world.cluster.workers))
        worker = world.cluster.worker(index)
        running = [w for w in world.cluster.workers if w.proc and w.proc.poll() is None]
        if worker.proc is not None and worker.proc.poll() is None:
            if len(running) > 1:
                worker.stop(rng.choice([signal.SIGTERM, signal.SIGKILL]))
        else:
            worker.start(wait=False)
    for index in range(len(world.cluster.workers)):
        worker = world.cluster.worker(index)
        if worker.proc is None or worker.proc.poll() is not None:
            worker.start(wait=False)


def test_f6_three_workers_stopped_and_started_at_random(world: World) -> None:
    _begin(world, workers=3)
    rng = random.Random(world.workload.seed)
    with world.sample_commits(), world.feeding(batch=10, every=0.5):
        _churn(world, 45, rng)
    healed = time.monotonic()
    _finish(world, "F6 3 workers random SIGTERM/SIGKILL for 45 s", healed)


@pytest.mark.slow
def test_f6_three_workers_churned_for_three_minutes(world: World) -> None:
    _begin(world, workers=3)
    rng = random.Random(world.workload.seed)
    with world.sample_commits(), world.feeding(batch=10, every=0.5):
        _churn(world, 180, rng)
    healed = time.monotonic()
    _finish(world, "F6 3 workers random SIGTERM/SIGKILL for 180 s", healed)


def _settled_then_killed(world: World) -> WorkerProcess:
    """Converge on the first inputs (state flushed and committed), then SIGKILL the worker."""
    world.converge()
    worker = world.cluster.workers[0]
    assert worker.stop(signal.SIGKILL) != 0
    return worker


@pytest.mark.slow
def test_f2_sigkill_during_changelog_restore(world: World) -> None:
    _begin(world)
    world.send(world.workload.events(1500))
    worker = _settled_then_killed(world)
    shutil.rmtree(worker.data_dir)  # the restart restores every table from the changelogs
    marker = worker.log_path.stat().st_size
    # Mid-restore: the worker SIGKILLs itself once the first fetched chunk of one changelog
    # partition is in RocksDB, with its offset (worker/crashpoint.py). Polling the log for a
    # kill raced with restores that end in milliseconds.
    worker.env[crashpoint.ENV] = f"{crashpoint.RESTORE}:1"
    worker.start(wait=False)
    assert worker.proc is not None
    try:
        code = worker.proc.wait(90)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"no crash during the restore\n{worker.tail()}") from None
    del worker.env[crashpoint.ENV]
    assert code == -signal.SIGKILL, (code, worker.tail())
    tail = worker.log_path.read_text(errors="replace")[marker:]
    assert "members: ready on partitions" not in tail, "the restore ended before the kill"
    world.restarts += 1
    healed = time.monotonic()
    worker.start(timeout=120)
    _finish(world, "F2 SIGKILL during changelog restore", healed)


def test_f4_a_damaged_rocksdb_is_wiped_and_rebuilt_without_a_crash_loop(world: World) -> None:
    """RocksDB files damaged while the worker is down (the ``CURRENT`` file of every members
    partition lost, the MANIFEST of a groups partition overwritten): the worker says so, wipes
    those partitions, rebuilds them from the changelogs, and goes on, with no restart."""
    _begin(world)
    worker = _settled_then_killed(world)
    root = worker.data_dir / "members"
    for current in sorted(root.glob("members-*.db/CURRENT")):
        current.unlink()
    (manifest,) = sorted(root.glob("groups-1.db/MANIFEST-*"))[-1:]
    manifest.write_bytes(b"\0" * manifest.stat().st_size)
    healed = time.monotonic()
    worker.start(timeout=120)
    _finish(world, "F4 RocksDB CURRENT lost + MANIFEST zeroed", healed)
    assert world.restarts == 0, "the damaged state made the worker crash"
    assert worker.stats().get("rocksdb.wiped", 0) == 4  # one per partition: members 0-3
    assert worker.tail(400).count("does not open") == 4


def _delete_topic(world: World, topic: str) -> None:
    async def go() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=world.bootstrap)
        await admin.start()
        try:
            await admin.delete_topics([topic])
            for _ in range(100):
                if topic not in await admin.list_topics():
                    return
                await asyncio.sleep(0.2)
            raise AssertionError(f"{topic} still listed after its deletion")
        finally:
            await admin.close()

    asyncio.run(go())


@pytest.mark.slow
def test_f17_a_deleted_changelog_is_written_again_from_the_local_state(world: World) -> None:
    """The members changelog is deleted while the worker is down; the worker creates it again,
    finds its stored offsets beyond the new topic's end, and writes its local state back to it:
    a later restore from the changelog alone (data directory lost) keeps every member."""
    _begin(world)
    worker = world.cluster.workers[0]
    world.converge()
    assert worker.stop(signal.SIGTERM) == 0
    for table in ("members", "groups"):
        _delete_topic(world, f"{world.cluster.prefix}sg-{table}-changelog")
    healed = time.monotonic()
    worker.start(timeout=120)
    assert "writing the partition's local state to it again" in worker.tail(400)
    world.send(world.workload.events(100))
    world.converge()
    # The changelog is whole again: a worker with no data directory rebuilds from it alone.
    assert worker.stop(signal.SIGKILL) != 0
    shutil.rmtree(worker.data_dir)
    worker.start(timeout=120)
    _finish(world, "F17 changelogs deleted, then the data directory lost", healed)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 256 MiB tmpfs for the worker's data directory (root only: skipped, with the reason,
    elsewhere)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        reason = f"F15 needs a tmpfs mount (root): {done.stderr.strip()}"
        if os.environ.get("CI"):  # like a missing broker: never a silent skip in CI
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.mark.slow
def test_f15_a_full_state_directory_fails_closed_and_recovers(
    world: World, small_disk: Path
) -> None:
    """The data directory's disk fills up mid-stream: the worker stops without committing what
    it could not store; once space returns, a restart processes everything (I1-I6)."""
    worker = world.cluster.worker(extra_env={"SMARTGROUPS_DATA_DIR": str(small_disk / "data")})
    worker.start(timeout=120)
    world.define()
    world.send(world.workload.events(150, poison_every=50))
    world.converge()
    filler = small_disk / "filler"
    with world.sample_commits():
        subprocess.run(
            ["dd", "if=/dev/zero", f"of={filler}", "bs=1M"], check=False, capture_output=True
        )
        with world.feeding():
            deadline = time.monotonic() + 90
            while worker.proc is not None and worker.proc.poll() is None:
                assert time.monotonic() < deadline, "the worker went on with a full disk"
                time.sleep(0.5)
        assert worker.proc is not None and worker.proc.returncode != 0
        assert "No space left on device" in worker.tail(400)
        filler.unlink()
        healed = time.monotonic()
        world.restarts += 1
        worker.start(timeout=120)
        _finish(world, "F15 full state directory (tmpfs), then space back", healed)


def test_f16_a_replay_from_earliest_changes_nothing(world: World) -> None:
    """Ops replay: every worker stopped, ``smartgroups reset --to-earliest --execute``, worker
    started again: it reads every input again and publishes no new transition (any output it
    sends again carries an id and a content already on the topic), the state is unchanged, and
    every input is committed to its end again (I1-I5). The poison records, read again, are
    dead-lettered again: the dead-letter topic is a log of what was refused, and a replay after
    a fix is how a refused record gets a second chance."""
    _begin(world)
    world.send(world.workload.events(150))
    world.converge()
    worker = world.cluster.workers[0]
    before = {
        orjson.loads(r.value)["id"]
        for r in read_topic(world.bootstrap, world.cluster.topic("membership-changes"))
        if r.value is not None
    }
    assert worker.stop(signal.SIGTERM) == 0
    done = run_cli("reset", "--to-earliest", "--execute", env=worker.env)
    assert done.returncode == 0, done.stderr
    summary = done.stdout.splitlines()[-1]
    assert summary.startswith("reset ") and "to the earliest retained offsets: " in summary
    assert int(summary.split(": ")[1].split()[0]) >= world.sent - len(world.workload.definitions())
    world.replayed_poison = world.workload.poison  # a replayed poison record is dead again
    healed = time.monotonic()
    worker.start(timeout=120)
    world.converge()
    after = [
        orjson.loads(r.value)["id"]
        for r in read_topic(world.bootstrap, world.cluster.topic("membership-changes"))
        if r.value is not None
    ]
    assert set(after) == before, f"new ids after the replay: {sorted(set(after) - before)[:5]}"
    _finish(world, "F16 reset --to-earliest --execute, replay", healed)


@pytest.mark.slow
def test_f1_sigkill_at_each_phase_of_a_checkpoint(world: World) -> None:
    """The worker SIGKILLs itself (``SMARTGROUPS_TEST_CRASH_AT``, worker/crashpoint.py) in the
    third checkpoint with inputs after each start, at each phase in turn: before anything is
    sent, after the outputs, after the member changelog, after the commit, between two RocksDB
    writes; restarted each time while inputs keep flowing, then I1-I6."""
    worker = world.cluster.worker(0)
    assert worker.proc is None
    with world.sample_commits():
        for n, phase in enumerate(crashpoint.PHASES):
            worker.env[crashpoint.ENV] = f"{phase}:3"
            worker.start(wait=False)
            if n == 0:
                world.define()
            with world.feeding(batch=5, every=0.2):
                assert worker.proc is not None
                try:
                    code = worker.proc.wait(90)
                except subprocess.TimeoutExpired:
                    raise AssertionError(f"no crash at {phase}\n{worker.tail()}") from None
            assert code == -signal.SIGKILL, (phase, code, worker.tail())
            world.restarts += 1
        del worker.env[crashpoint.ENV]
        healed = time.monotonic()
        worker.start(timeout=120)
        _finish(world, f"F1 SIGKILL at each checkpoint phase ({len(crashpoint.PHASES)})", healed)
