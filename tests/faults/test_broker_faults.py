"""Broker and network faults (reliability.md F8-F14) on a private broker behind the proxy.

Each test: a worker through the proxy, the seeded definitions and a first burst, the fault while
a second burst is in flight, a third burst after it, then convergence to the reference fold and
the independent checker (I1-I6; I6 sampled all along).
"""

from __future__ import annotations

import time

import pytest
from tests.faults.world import World


def _begin(world: World) -> None:
    assert world.broker is not None
    world.broker.start()
    world.cluster.worker().start(timeout=120)
    world.define()
    world.send(world.workload.events(150, poison_every=50))


def _finish(world: World, scenario: str, healed_at: float) -> None:
    world.send(world.workload.events(100))
    world.converge()
    recovery = time.monotonic() - healed_at
    verdict = world.verdict(scenario, recovery)
    assert verdict.ok, verdict.problems


def test_f8_broker_clean_restart(private_world: World) -> None:
    world = private_world
    assert world.broker is not None
    _begin(world)
    with world.sample_commits():
        world.send(world.workload.events(150))
        world.broker.stop()
        time.sleep(3)
        world.broker.start()
        healed = time.monotonic()
        _finish(world, "F8 broker clean restart", healed)
    assert world.cluster.workers[0].proc is not None
    assert world.cluster.workers[0].proc.poll() is None, "the worker did not survive the restart"


def test_f9_broker_sigkill_and_restart(private_world: World) -> None:
    world = private_world
    assert world.broker is not None
    _begin(world)
    with world.sample_commits():
        world.send(world.workload.events(150))
        world.broker.kill()
        time.sleep(3)
        world.broker.start()
        healed = time.monotonic()
        _finish(world, "F9 broker SIGKILL + restart", healed)


@pytest.mark.slow
def test_f10_broker_down_70_seconds(private_world: World) -> None:
    world = private_world
    assert world.broker is not None
    _begin(world)
    with world.sample_commits():
        world.send(world.workload.events(150))
        world.broker.stop()
        time.sleep(70)
        world.broker.start()
        healed = time.monotonic()
        worker = world.cluster.workers[0]
        assert worker.proc is not None
        if worker.proc.poll() is not None:  # it gave up: the supervisor restarts it
            worker.start(timeout=120)
        _finish(world, "F10 broker down 70 s", healed)


def test_f11_worker_started_before_the_broker(private_world: World) -> None:
    """The worker fails fast (exit 2, one line, within its 10 s connection bound) rather than
    hang; started again by its supervisor once the broker is up, it processes everything."""
    world = private_world
    assert world.broker is not None
    worker = world.cluster.worker()
    worker.start(wait=False)
    assert worker.wait_exit(timeout=30) == 2
    last = worker.tail().strip().splitlines()[-1]
    assert last.startswith("smartgroups: cannot reach Kafka at 127.0.0.1:"), last
    assert "Traceback" not in worker.tail()
    world.broker.start()
    healed = time.monotonic()
    world.restarts += 1
    worker.start(timeout=120)
    world.define()
    world.send(world.workload.events(150, poison_every=50))
    with world.sample_commits():
        _finish(world, "F11 worker started before the broker", healed)


def test_f12_blackhole_past_the_session_timeout(private_world: World) -> None:
    world = private_world
    assert world.broker is not None and world.broker.proxy is not None
    _begin(world)
    with world.sample_commits():
        with world.feeding():  # straight to the broker, not through the proxy
            time.sleep(2)
            world.broker.proxy.blackhole()
            time.sleep(20)  # the member loop's session timeout is 15 s
            world.broker.proxy.heal()
        healed = time.monotonic()
        _finish(world, "F12 blackhole 20 s (session timeout 15 s)", healed)


def test_f13_tcp_resets_mid_produce(private_world: World) -> None:
    world = private_world
    assert world.broker is not None
    _begin(world)
    with world.sample_commits():
        with world.feeding():
            for _ in range(8):
                time.sleep(0.7)
                world.broker.proxy.reset()
        healed = time.monotonic()
        world.send(world.workload.events(100))
        world.converge()
        verdict = world.verdict(
            f"F13 {world.broker.proxy.resets} TCP resets mid-produce",
            time.monotonic() - healed,
            raw_duplicates_allowed=world.restarts > 0,
        )
    assert verdict.ok, verdict.problems


def test_f14_added_latency(private_world: World) -> None:
    world = private_world
    assert world.broker is not None
    _begin(world)
    with world.sample_commits():
        with world.feeding():
            world.broker.proxy.latency(0.25, jitter=0.25)
            time.sleep(10)
            world.broker.proxy.latency(0.0)
        healed = time.monotonic()
        _finish(world, "F14 latency 250-500 ms for 10 s", healed)
