"""The stack on a real broker: aiokafka round trip, and a faust worker whose RocksDB state
survives a restart and the loss of its data dir (rebuilt from the changelog alone).

Every wait is bounded and fails with the worker's log tail.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.client import AIOKafkaClient
from aiokafka.partitioner import murmur2

pytestmark = pytest.mark.timeout(600)  # a last resort: every wait below is bounded itself

COUNTER = Path(__file__).with_name("counter_worker.py")
WAIT_S = 120.0
LEADERS_S = 30.0
STOP_S = 60.0

# Kafka's own vectors for Utils.murmur2 (clients UtilsTest.testMurmur2): the Java producer's
# partition for a key is toPositive(murmur2(key)) % partitions.
JAVA_MURMUR2 = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


def java_partition(key: bytes, partitions: int) -> int:
    signed = JAVA_MURMUR2[key]
    return (signed & 0x7FFFFFFF) % partitions


async def create_topics(bootstrap: str, names: list[str], partitions: int) -> None:
    """Create the topics and return once every partition has a leader.

    A consumer assigned a partition that has no leader yet can fail its first offset lookup
    (NotLeaderForPartition) and not fetch that partition for minutes.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(name, num_partitions=partitions, replication_factor=1) for name in names]
        )
    finally:
        await admin.close()
    client = AIOKafkaClient(bootstrap_servers=bootstrap)
    await client.bootstrap()
    try:
        deadline = time.monotonic() + LEADERS_S
        wanted = [TopicPartition(name, p) for name in names for p in range(partitions)]
        while True:
            cluster = await client.fetch_all_metadata()
            leaders = {tp: cluster.leader_for_partition(tp) for tp in wanted}
            leaderless = [tp for tp, leader in leaders.items() if leader is None or leader < 0]
            if not leaderless:
                return
            if time.monotonic() > deadline:
                pytest.fail(f"no leader after {LEADERS_S:.0f} s for {leaderless}", pytrace=False)
            await asyncio.sleep(0.1)
    finally:
        await client.close()


async def produce(bootstrap: str, topic: str, keys: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for key in keys:
            await producer.send_and_wait(topic, key=key, value=b"event")
    finally:
        await producer.stop()


async def test_aiokafka_round_trip_keeps_keys_headers_values_and_murmur2_partitions(
    kafka_bootstrap: str, unique_name: str
) -> None:
    partitions = 6
    topic = f"roundtrip-{unique_name}"
    await create_topics(kafka_bootstrap, [topic], partitions)
    # aiokafka's murmur2 is Java's, returned as unsigned 32-bit.
    for key, signed in JAVA_MURMUR2.items():
        assert murmur2(key) == signed & 0xFFFFFFFF, key
    sent = {
        key: (f"value-{i}".encode(), [("h", f"{i}".encode()), ("trace", b"\x00\xff")])
        for i, key in enumerate(JAVA_MURMUR2)
    }
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for key, (value, headers) in sent.items():
            meta = await producer.send_and_wait(topic, key=key, value=value, headers=headers)
            assert meta.partition == java_partition(key, partitions), key
    finally:
        await producer.stop()
    assert len({java_partition(key, partitions) for key in sent}) > 1  # really spread out

    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    received = {}
    try:
        deadline = time.monotonic() + 30
        while len(received) < len(sent) and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=1000)
            for records in batches.values():
                for record in records:
                    received[record.key] = (record.value, list(record.headers), record.partition)
    finally:
        await consumer.stop()
    assert set(received) == set(sent), f"missing after 30 s: {set(sent) - set(received)}"
    for key, (value, headers) in sent.items():
        assert received[key] == (value, headers, java_partition(key, partitions))


class CounterWorker:
    """``counter_worker.py`` as a real ``faust worker`` subprocess with its own data dir."""

    def __init__(self, bootstrap: str, app_id: str, root: Path, partitions: int) -> None:
        self.datadir = root / "data"
        self.log = root / "worker.log"
        self.root = root
        self.env = {
            **os.environ,
            "COUNTER_BROKER": bootstrap,
            "COUNTER_APP_ID": app_id,
            "COUNTER_DATADIR": str(self.datadir),
            "COUNTER_SOURCE": f"{app_id}-in",
            "COUNTER_SINK": f"{app_id}-out",
            "COUNTER_PARTITIONS": str(partitions),
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        with self.log.open("ab") as log:
            log.write(f"\n===== start {self.starts} =====\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                [sys.executable, str(COUNTER), "worker", "-l", "info"],
                cwd=self.root,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def check_alive(self) -> None:
        assert self.process is not None
        if self.process.poll() is not None:
            pytest.fail(
                f"worker exited with {self.process.returncode}; log tail:\n{self.tail()}",
                pytrace=False,
            )

    def stop(self) -> None:
        """SIGTERM and a clean exit within STOP_S, or the test fails (after a SIGKILL)."""
        assert self.process is not None
        self.check_alive()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
            pytest.fail(f"worker ignored SIGTERM for {STOP_S} s; log tail:\n{self.tail()}")
        self.process = None

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


class CountReader:
    """Reads the sink from the beginning, keeping every published count per key, in order."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
        )
        self.topic = topic
        self.seen: dict[bytes, list[int]] = defaultdict(list)

    async def start(self, partitions: int) -> None:
        await self.consumer.start()
        self.consumer.assign([TopicPartition(self.topic, p) for p in range(partitions)])

    async def wait_for(self, expected: dict[bytes, int], worker: CounterWorker) -> None:
        """Read until each key's latest count is ``expected``; fail after WAIT_S."""
        deadline = time.monotonic() + WAIT_S
        while any(self.latest(key) != n for key, n in expected.items()):
            worker.check_alive()
            if time.monotonic() > deadline:
                pytest.fail(
                    f"counts {dict(self.seen)} never reached {expected} in {WAIT_S:.0f} s; "
                    f"worker log tail:\n{worker.tail()}",
                    pytrace=False,
                )
            batches = await self.consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    assert record.key is not None and record.value is not None
                    self.seen[record.key].append(int(record.value))

    def latest(self, key: bytes) -> int:
        return self.seen[key][-1] if self.seen[key] else 0

    async def stop(self) -> None:
        await self.consumer.stop()


async def test_faust_worker_state_survives_restart_and_datadir_loss(
    kafka_bootstrap: str, unique_name: str, tmp_path: Path
) -> None:
    partitions = 4
    # a, d, c, f hash (murmur2) to partitions 0, 1, 2, 3: state lives in four RocksDB stores.
    assert {(murmur2(k) & 0x7FFFFFFF) % partitions for k in (b"a", b"d", b"c", b"f")} == {
        0,
        1,
        2,
        3,
    }
    app_id = f"counter-{unique_name}"
    worker = CounterWorker(kafka_bootstrap, app_id, tmp_path, partitions)
    source, sink = f"{app_id}-in", f"{app_id}-out"
    await create_topics(kafka_bootstrap, [source, sink], partitions)
    reader = CountReader(kafka_bootstrap, sink)
    await reader.start(partitions)
    try:
        # 1. fresh worker, fresh state
        worker.start()
        await produce(kafka_bootstrap, source, [b"a", b"d", b"a", b"d", b"a"])
        await reader.wait_for({b"a": 3, b"d": 2}, worker)
        worker.stop()
        stores = sorted(p.name for p in worker.datadir.glob("v1/tables/counts-*.db"))
        assert stores, f"no RocksDB store under {worker.datadir}"

        # 2. restart on the same data dir: the local store carries on
        worker.start()
        await produce(kafka_bootstrap, source, [b"a", b"d", b"a"])
        await reader.wait_for({b"a": 5, b"d": 3}, worker)
        worker.stop()

        # 3. lose the data dir: the state comes back from the changelog alone
        shutil.rmtree(worker.datadir)
        worker.start()
        await produce(kafka_bootstrap, source, [b"d", b"a", b"c", b"d", b"f"])
        await reader.wait_for({b"a": 6, b"d": 5, b"c": 1, b"f": 1}, worker)
        worker.stop()
    finally:
        worker.kill()
        await reader.stop()

    # Clean stops under at-least-once: no count repeated, none skipped.
    assert reader.seen == {
        b"a": [1, 2, 3, 4, 5, 6],
        b"d": [1, 2, 3, 4, 5],
        b"c": [1],
        b"f": [1],
    }
    assert worker.datadir.is_dir()  # rebuilt by the third run
