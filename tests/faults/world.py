"""One fault scenario's world: its broker (private, behind a proxy, or the shared one), its
workers (``tests.integration.harness``), its seeded inputs, convergence and the report line.

A private broker (:class:`PrivateBroker`) is a ``smartgroups.devbroker`` JVM of the test's own
(tmp run directory, free ports) with two client listeners: ``port`` for the test's producer
and checker, which reach it directly, and a ``PROXIED`` one whose advertised address is the
:class:`~tests.faults.proxy.Proxy` in front of it, for the workers. Stopping, killing or
partitioning it touches nobody else's broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.faults.checker import CommitSampler, Verdict, _ends_and_committed, check, read_topic
from tests.faults.proxy import Proxy
from tests.faults.workload import Record, Workload
from tests.integration.harness import Cluster

from smartgroups.devbroker import Broker, ensure_broker, free_port

REPORT: list[str] = []
"""One line per scenario run, printed at the end of the session (conftest)."""


class PrivateBroker:
    """A broker of one test, with a proxy in front of its ``PROXIED`` listener."""

    def __init__(self, root: Path) -> None:
        self.run_dir = root / "kafka"
        self.port = free_port()
        self.listen = free_port(avoid=frozenset({self.port}))
        self.proxy = Proxy(free_port(avoid=frozenset({self.port, self.listen})), self.listen)
        self.proxy.start()
        self.broker: Broker | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def proxied(self) -> str:
        return f"127.0.0.1:{self.proxy.port}"

    def start(self) -> float:
        """Start (or restart on the same data); return the seconds it took."""
        began = time.monotonic()
        self.broker = ensure_broker(
            port=self.port,
            run_dir=self.run_dir,
            die_with_parent=True,
            proxied=(self.listen, self.proxy.port),
        )
        return time.monotonic() - began

    def stop(self) -> None:
        """Controlled shutdown (SIGTERM)."""
        if self.broker is not None:
            self.broker.stop()
            self.broker = None

    def kill(self) -> None:
        """SIGKILL the JVM: no controlled shutdown, no flush."""
        assert self.broker is not None
        os.kill(self.broker.pid, signal.SIGKILL)
        if self.broker._process is not None:
            self.broker._process.wait(30)
        self.broker = None

    def close(self) -> None:
        try:
            if self.broker is not None:
                self.broker.stop(timeout_s=10)
        finally:
            self.proxy.stop()


@dataclass
class World:
    """A scenario's cluster (topics, workers) and its inputs."""

    name: str
    bootstrap: str
    """Where the test's producer and checker connect (never through the proxy)."""
    cluster: Cluster
    workload: Workload
    broker: PrivateBroker | None = None
    sent: int = 0
    sampler: CommitSampler | None = None
    started: float = field(default_factory=time.monotonic)
    restarts: int = 0
    """Workers restarted by :meth:`supervise` after they stopped on their own."""
    replayed_poison: int = 0
    """Poison records read a second time (F16's replay): each is dead-lettered again."""

    @property
    def member_group(self) -> str:
        return f"{self.cluster.prefix}sg-members"

    def send(self, records: Iterable[Record]) -> None:
        """Produce ``records`` (per topic in order) with the contract's keys."""
        by_topic: dict[str, list[tuple[bytes | None, bytes | None, int | None]]] = defaultdict(list)
        for topic, key, value in records:
            by_topic[topic].append((key, value, None))
            self.sent += 1
        for topic, batch in by_topic.items():
            self.cluster.produce_raw(topic, batch)

    @contextlib.contextmanager
    def feeding(self, batch: int = 10, every: float = 0.2) -> Iterator[None]:
        """Send ``batch`` more inputs every ``every`` seconds from a thread while the block runs
        (the broker must stay reachable directly: the test's producer never uses the proxy)."""
        stop = threading.Event()
        failures: list[BaseException] = []

        def feed() -> None:
            while not stop.wait(every):
                try:
                    self.send(self.workload.events(batch))
                except BaseException as exc:
                    failures.append(exc)
                    return

        thread = threading.Thread(target=feed, daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(60)
        if failures:
            raise failures[0]

    def define(self, timeout: float = 90.0) -> None:
        """Send the workload's definitions and wait for their results."""
        definitions = self.workload.definitions()
        self.send(definitions)
        self.cluster.wait_records("group-change-results", len(definitions), timeout)

    def sample_commits(self) -> CommitSampler:
        self.sampler = CommitSampler(
            self.bootstrap, self.member_group, self.cluster.topic("membership-changes")
        )
        return self.sampler

    def supervise(self, timeout: float = 120.0) -> None:
        """Do what a supervisor (systemd, Kubernetes) does: start again every worker that has
        exited on its own, and wait until it is healthy."""
        for worker in self.cluster.workers:
            if worker.proc is not None and worker.proc.poll() is not None:
                self.restarts += 1
                worker.start(timeout=timeout)

    def converge(self, timeout: float = 150.0) -> float:
        """Wait until the outputs equal the reference and every input is committed; return the
        seconds it took."""
        began = time.monotonic()
        expected = self.workload.expected()
        inputs = [
            self.cluster.topic(t) for t in ("member-changes", "property-changes", "form-answers")
        ]
        last = ""
        while time.monotonic() - began < timeout:
            self.supervise()
            try:
                state: dict[bytes | None, bytes | None] = {}
                for r in read_topic(self.bootstrap, self.cluster.topic("membership-state")):
                    state[r.key] = r.value
                have = {
                    tuple(k.decode().split(":", 2)) for k, v in state.items() if k and v is not None
                }
                ends, committed = asyncio.run(
                    _ends_and_committed(self.bootstrap, self.member_group, inputs)
                )
                lag = sum(end - committed.get(tp, 0) for tp, end in ends.items())
                if have == expected and lag == 0:
                    return time.monotonic() - began
                last = (
                    f"lag {lag}; in state, not expected: {sorted(have - expected)[:5]};"
                    f" expected, not in state: {sorted(expected - have)[:5]}"
                    f" (topics {self.cluster.prefix}*)"
                )
            except Exception as exc:  # the broker may still be coming back
                last = repr(exc)
            time.sleep(1.0)
        logs = "\n\n".join(w.tail(40) for w in self.cluster.workers)
        raise AssertionError(f"{self.name}: no convergence in {timeout}s ({last})\n{logs}")

    def verdict(
        self, scenario: str, recovery: float, *, raw_duplicates_allowed: bool = True
    ) -> Verdict:
        """Check I1-I6, add the scenario's report line, and return the verdict."""
        verdict = check(
            self.bootstrap,
            self.cluster.prefix,
            self.member_group,
            self.workload.expected(),
            dead_letters=self.workload.poison + self.replayed_poison,
            sampler=self.sampler,
            raw_duplicates_allowed=raw_duplicates_allowed,
            internal_inputs=(f"{self.cluster.prefix}sg-fanout",),
        )
        line = (
            f"{scenario}: inputs {self.sent} ({self.workload.poison} poison), "
            f"outputs {verdict.outputs}, dead letters {verdict.dead_letters}, "
            f"{verdict.summary()}, worker restarts {self.restarts}, recovery {recovery:.1f} s"
        )
        REPORT.append(line)
        print(line)
        return verdict
