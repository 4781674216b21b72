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
