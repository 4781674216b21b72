"""Raw aiokafka pipe: consume → produce raw bytes, at least once, as fast as Python allows.

``python -m bench.pipes.raw --bootstrap B --group G --out TOPIC IN [IN …]``

``getmany`` batches, fire-and-forget ``send`` per record, and every ``--commit-interval``
seconds ``flush`` (wait for every ack) then ``commit`` (so a commit never passes an unsent
record). Producer settings match the worker's (acks=all, linger 5 ms, 128 KiB batches). Prints
``Ready`` once it has joined the group; stops cleanly on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import time

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer


async def run(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    consumer = AIOKafkaConsumer(
        *args.inputs,
        bootstrap_servers=args.bootstrap,
        group_id=args.group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=1024 * 1024,
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=args.bootstrap, acks="all", linger_ms=5, max_batch_size=131072
    )
    await producer.start()
    await consumer.start()
    print("Ready", flush=True)
    next_commit = time.monotonic() + args.commit_interval
    dirty = False
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=100, max_records=5000)
            for messages in batches.values():
                for msg in messages:
                    await producer.send(args.out, value=msg.value, key=msg.key)
                dirty = dirty or bool(messages)
            if dirty and time.monotonic() >= next_commit:
                await producer.flush()
                await consumer.commit()
                dirty = False
                next_commit = time.monotonic() + args.commit_interval
        if dirty:
            await producer.flush()
            await consumer.commit()
    finally:
        await consumer.stop()
        await producer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--commit-interval", type=float, default=1.0)
    parser.add_argument("inputs", nargs="+")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
