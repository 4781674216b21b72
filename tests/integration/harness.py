"""Drive a real ``smartgroups worker`` process against the real broker, and read real topics.

:class:`Cluster` owns one test's world: a unique topic prefix and app id, any number of worker
subprocesses (each with its own data dir and web port), a producer that keys events as the
contract says, and readers that return everything on an output topic. A worker counts as started
when ``GET /v1/health`` answers 200. Every wait is bounded and fails with the workers' log tails.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

PARTITIONS = 4


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class WorkerProcess:
    """One ``smartgroups worker`` subprocess."""

    env: dict[str, str]
    data_dir: Path
    log_path: Path
    web_port: int
    proc: subprocess.Popen[bytes] | None = None

    def start(
        self,
        timeout: float = 90.0,
        *,
        command: Sequence[str] | None = None,
        wait: bool = True,
    ) -> None:
        """Start the worker (``command``, default ``python -m smartgroups worker``) and, unless
        ``wait`` is false, wait until ``GET /v1/health`` answers 200 (every assigned partition
        ready). Fails with the log tail if the process exits or is not healthy in time."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        argv = command or [sys.executable, "-m", "smartgroups", "worker", "--loglevel", "info"]
        self.proc = subprocess.Popen(argv, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        if wait:
            self.wait_healthy(timeout)

    def wait_healthy(self, timeout: float = 90.0) -> dict[str, Any]:
        """Poll ``/v1/health`` until it answers 200; return its body."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        last: tuple[int, dict[str, Any]] | None = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited with {self.proc.returncode}:\n{self.tail()}")
            last = self.health()
            if last is not None and last[0] == 200:
                return last[1]
            time.sleep(0.2)
        raise AssertionError(f"worker not healthy after {timeout}s ({last}):\n{self.tail()}")

    def health(self, path: str = "/v1/health") -> tuple[int, dict[str, Any]] | None:
        """(HTTP status, body) of the worker's health, or None while nothing answers."""
        url = f"http://127.0.0.1:{self.web_port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return int(response.status), orjson.loads(response.read())
        except urllib.error.HTTPError as error:
            return int(error.code), orjson.loads(error.read())
        except OSError:  # connection refused or reset: not serving (yet)
            return None

    def wait_exit(self, timeout: float = 60.0) -> int:
        """Wait for the process to exit by itself; return its status."""
        assert self.proc is not None
        try:
            return int(self.proc.wait(timeout))
        except subprocess.TimeoutExpired:
            raise AssertionError(f"worker still runs after {timeout}s:\n{self.tail()}") from None

    def stats(self) -> dict[str, int]:
        url = f"http://127.0.0.1:{self.web_port}/stats/"
        with urllib.request.urlopen(url, timeout=5) as response:
            stats: dict[str, int] = orjson.loads(response.read())
            return stats

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
                raise AssertionError(f"worker ignored signal {sig}:\n{self.tail()}") from None
        return int(self.proc.returncode)

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class Cluster:
    """A test's topics, workers, producer and readers (see the module docstring)."""

    bootstrap: str
    root: Path
    name: str
    partitions: int = PARTITIONS
    workers: list[WorkerProcess] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    """Extra environment of every worker (e.g. ``SMARTGROUPS_MEMBER_PATH``)."""

    @property
    def prefix(self) -> str:
        return f"{self.name}."

    def topic(self, logical: str) -> str:
        return f"{self.prefix}{logical}"

    def worker(self, index: int = 0, *, extra_env: dict[str, str] | None = None) -> WorkerProcess:
        """The ``index``-th worker of this cluster (created on first use, not started)."""
        while len(self.workers) <= index:
            n = len(self.workers)
            port = free_port()
            env = {
                **os.environ,
                "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
                "SMARTGROUPS_TOPIC_PREFIX": self.prefix,
                "SMARTGROUPS_APP_ID": "sg",
                "SMARTGROUPS_PARTITIONS": str(self.partitions),
                "SMARTGROUPS_DATA_DIR": str(self.root / f"data-{n}"),
                "SMARTGROUPS_WEB_PORT": str(port),
                "SMARTGROUPS_TICK_INTERVAL": "0.5",
                "SMARTGROUPS_SCAN_CHUNK": "100",
                **self.env,
                **(extra_env or {}),
            }
            self.workers.append(
                WorkerProcess(env, self.root / f"data-{n}", self.root / f"worker-{n}.log", port)
            )
        worker = self.workers[index]
        with worker.log_path.open("a") as log:
            log.write("\n--- start ---\n")
        return worker

    def stop_all(self) -> None:
        for worker in self.workers:
            if worker.proc is not None and worker.proc.poll() is None:
                worker.stop(signal.SIGKILL)

    def drop_topics(self) -> None:
        """Delete every topic of this cluster's prefix (best effort): a whole suite's topics
        would otherwise hold more partitions than the broker has file descriptors for."""
        from aiokafka.admin import AIOKafkaAdminClient

        async def drop() -> None:
            admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
            await admin.start()
            try:
                names = [t for t in await admin.list_topics() if t.startswith(self.prefix)]
                if names:
                    await admin.delete_topics(names)
            finally:
                await admin.close()

        try:
            asyncio.run(asyncio.wait_for(drop(), 30))
        except Exception as exc:  # a test's own failure must not hide behind its cleanup
            print(f"could not delete the topics of {self.prefix}: {exc!r}", file=sys.stderr)

    # -- producing -----------------------------------------------------------------------------
    def produce(self, logical: str, events: Iterable[dict[str, Any]]) -> None:
        """Publish ``events`` to ``logical`` with contract keys (murmur2 partitioner)."""
        records = []
        for event in events:
            key = (
                event["space"]
                if logical == "group-changes"
                else f"{event['space']}:{event['member_id']}"
            )
            records.append((key.encode(), orjson.dumps(event), None))
        self.produce_raw(logical, records)

    def produce_raw(
        self, logical: str, records: Iterable[tuple[bytes | None, bytes | None, int | None]]
    ) -> None:
        """Publish (key, value, partition or None) records to ``logical`` as given."""

        async def send() -> None:
            producer = AIOKafkaProducer(
                bootstrap_servers=self.bootstrap, acks="all", enable_idempotence=True
            )
            await producer.start()
            try:
                for key, value, partition in records:
                    await producer.send(
                        self.topic(logical), value=value, key=key, partition=partition
                    )
                await producer.flush()
            finally:
                await producer.stop()

        asyncio.run(send())

    # -- reading -------------------------------------------------------------------------------
    def read(self, logical: str) -> list[Any]:
        """Every record now on ``logical`` (all partitions, from the beginning)."""

        async def fetch() -> list[Any]:
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self.bootstrap, enable_auto_commit=False, group_id=None
            )
            await consumer.start()
            try:
                topic = self.topic(logical)
                partitions = consumer.partitions_for_topic(topic)
                if not partitions:
                    await consumer._client.force_metadata_update()
                    partitions = consumer.partitions_for_topic(topic) or set()
                tps = [TopicPartition(topic, p) for p in sorted(partitions)]
                if not tps:
                    return []
                consumer.assign(tps)
                await consumer.seek_to_beginning(*tps)
                ends = await consumer.end_offsets(tps)
                out: list[Any] = []
                pending = {tp for tp in tps if ends[tp] > 0}
                deadline = time.monotonic() + 30
                while pending and time.monotonic() < deadline:
                    batch = await consumer.getmany(timeout_ms=500)
                    for tp, messages in batch.items():
                        out.extend(messages)
                        if messages and messages[-1].offset >= ends[tp] - 1:
                            pending.discard(tp)
                    for tp in list(pending):
                        if await consumer.position(tp) >= ends[tp]:
                            pending.discard(tp)
                return out
            finally:
                await consumer.stop()

        return asyncio.run(fetch())

    def events(self, logical: str) -> list[dict[str, Any]]:
        """Decoded JSON values of ``logical`` (tombstones skipped)."""
        return [orjson.loads(m.value) for m in self.read(logical) if m.value is not None]

    def wait_for(
        self,
        logical: str,
        predicate: Callable[[list[dict[str, Any]]], bool],
        timeout: float = 60.0,
        what: str = "",
    ) -> list[dict[str, Any]]:
        """Poll ``logical`` until ``predicate(events)`` holds; fail with worker logs if not."""
        deadline = time.monotonic() + timeout
        events: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            events = self.events(logical)
            if predicate(events):
                return events
            time.sleep(0.5)
        logs = "\n\n".join(w.tail() for w in self.workers)
        raise AssertionError(
            f"timed out waiting for {what or logical}; last {len(events)} events:\n"
            f"{events[-10:]}\n\nworker logs:\n{logs}"
        )

    def wait_records(self, logical: str, count: int, timeout: float = 60.0) -> list[Any]:
        """Poll ``logical`` until it holds at least ``count`` raw records; return them."""
        deadline = time.monotonic() + timeout
        records: list[Any] = []
        while time.monotonic() < deadline:
            records = self.read(logical)
            if len(records) >= count:
                return records
            time.sleep(0.5)
        logs = "\n\n".join(w.tail() for w in self.workers)
        raise AssertionError(f"{logical}: {len(records)} of {count} records\n{logs}")

    def settle(self, logical: str = "membership-changes", quiet: float = 3.0) -> list[Any]:
        """Wait until ``logical`` stops growing for ``quiet`` seconds; return its events."""
        last = -1
        stable_since = time.monotonic()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            events = self.events(logical)
            if len(events) != last:
                last = len(events)
                stable_since = time.monotonic()
            elif time.monotonic() - stable_since >= quiet:
                return events
            time.sleep(0.5)
        raise AssertionError(f"{logical} never settled")


def final_memberships(changes: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    """(space, group, member) pairs whose highest-version change is ``member.added``."""
    latest: dict[tuple[str, str, str], dict[str, Any]] = {}
    for event in changes:
        pair = (event["space"], event["group_id"], event["member_id"])
        if pair not in latest or event["version"] > latest[pair]["version"]:
            latest[pair] = event
    return {pair for pair, event in latest.items() if event["type"] == "member.added"}


def state_memberships(records: list[Any]) -> set[tuple[str, str, str]]:
    """Pairs present in the compacted ``membership-state`` topic (last record per key wins)."""
    last: dict[bytes, Any] = {}
    for message in records:
        last[message.key] = message.value
    pairs = set()
    for key, value in last.items():
        if value is not None:
            space, group_id, member_id = key.decode().split(":")
            pairs.add((space, group_id, member_id))
    return pairs
