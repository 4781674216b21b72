"""A minimal faust worker for test_stack.py: count events per key, publish every new count.

Run as ``python counter_worker.py worker -l info`` with the settings in the environment:
``COUNTER_BROKER`` (host:port), ``COUNTER_APP_ID``, ``COUNTER_DATADIR``, ``COUNTER_SOURCE``,
``COUNTER_SINK``, ``COUNTER_PARTITIONS``. The count lives in a RocksDB (rocksdict) table, so it
must survive a restart (local store) and the loss of the data dir (changelog replay).
Keys and values are raw bytes; a count is its decimal ASCII.
"""

from __future__ import annotations

import os

import faust

PARTITIONS = int(os.environ["COUNTER_PARTITIONS"])

app = faust.App(
    os.environ["COUNTER_APP_ID"],
    broker=f"kafka://{os.environ['COUNTER_BROKER']}",
    store="rocksdb://",
    datadir=os.environ["COUNTER_DATADIR"],
    processing_guarantee="at_least_once",
    topic_partitions=PARTITIONS,
    topic_replication_factor=1,
    table_standby_replicas=0,
    consumer_auto_offset_reset="earliest",
    broker_commit_interval=0.5,
    stream_recovery_delay=0.0,
    web_enabled=False,
)

source = app.topic(
    os.environ["COUNTER_SOURCE"],
    key_type=bytes,
    value_type=bytes,
    value_serializer="raw",
    partitions=PARTITIONS,
)
sink = app.topic(
    os.environ["COUNTER_SINK"],
    key_type=bytes,
    value_type=bytes,
    value_serializer="raw",
    partitions=PARTITIONS,
)
counts = app.Table(
    "counts",
    key_type=bytes,
    value_type=bytes,
    partitions=PARTITIONS,
    options={
        "driver": "rocksdict",
        "write_buffer_size": 4 << 20,
        "max_write_buffer_number": 2,
        "block_cache_size": 8 << 20,
    },
)


@app.agent(source)
async def count(stream: faust.StreamT[bytes]) -> None:
    async for event in stream.events():
        key = event.key
        assert isinstance(key, bytes)
        total = int(counts.get(key, b"0")) + 1
        counts[key] = str(total).encode()
        await sink.send(key=key, value=str(total).encode())


if __name__ == "__main__":
    app.main()
