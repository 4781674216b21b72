"""Readiness: a real Kafka client call must succeed, not just an open port.

:func:`broker_answers` connects with aiokafka's admin client and asks for the cluster metadata; it
is ready when the answer lists at least one broker (a fenced or still-registering broker answers
with none). The call runs on its own event loop in a worker thread, so it is safe from sync code,
from a thread that already runs a loop, and from pytest fixtures.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from aiokafka.admin import AIOKafkaAdminClient


async def _cluster_brokers(bootstrap: str, timeout_s: float) -> int:
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap,
        request_timeout_ms=int(timeout_s * 1000),
        client_id="smartgroups-devbroker-probe",
    )
    try:
        await asyncio.wait_for(admin.start(), timeout_s)
        cluster = await asyncio.wait_for(admin.describe_cluster(), timeout_s)
    finally:
        await admin.close()
    return len(cluster.get("brokers", []))


def broker_answers(bootstrap: str, timeout_s: float = 5.0) -> bool:
    """True when ``bootstrap`` answers a metadata request listing at least one broker."""
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="devbroker-probe")
    try:
        future = pool.submit(asyncio.run, _cluster_brokers(bootstrap, timeout_s))
        return future.result(timeout=timeout_s * 3 + 5) > 0
    except (FutureTimeout, Exception):
        return False
    finally:
        pool.shutdown(wait=False)
