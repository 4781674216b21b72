"""faust-streaming pass-through pipe: one agent forwards raw bytes, no decode, no state.

``python -m bench.pipes.faust_pipe --bootstrap B --group G --out TOPIC IN [IN …]``

The framework settings are the worker's (``smartgroups.worker.app``): at_least_once, commit
interval 1 s, acks=all, linger 5 ms, 128 KiB batches, ``stream_wait_empty``, concurrency 1,
``raw`` serializers, web server off. What is left is faust's own cost per event: consumer
thread, stream, agent, ``send`` and acking. The faust app id (= consumer group) is ``--group``.
faust logs ``Ready`` when it runs; SIGTERM stops it cleanly.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from typing import Any

import faust


def build(args: argparse.Namespace) -> faust.App:
    app = faust.App(
        args.group,
        broker=f"kafka://{args.bootstrap}",
        datadir=tempfile.mkdtemp(prefix="bench-faust-pipe-"),
        processing_guarantee="at_least_once",
        topic_partitions=args.partitions,
        topic_replication_factor=1,
        topic_allow_declare=True,
        table_standby_replicas=0,
        stream_wait_empty=True,
        stream_recovery_delay=0.0,
        broker_commit_interval=args.commit_interval,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        producer_linger=0.005,
        producer_max_batch_size=131072,
        web_enabled=False,
    )
    raw = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw"}
    source = app.topic(*args.inputs, value_serializer="raw", **raw)
    sink = app.topic(args.out, value_serializer="raw", **raw)

    @app.agent(source, name="pipe", concurrency=1)
    async def pipe(stream: Any) -> None:
        async for event in stream.events():
            await sink.send(key=event.key, value=event.value)

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--commit-interval", type=float, default=1.0)
    parser.add_argument("inputs", nargs="+")
    args = parser.parse_args()
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    app = build(args)
    worker = faust.Worker(app, loop=loop, loglevel="info", redirect_stdouts=False)
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
