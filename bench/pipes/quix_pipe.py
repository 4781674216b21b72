"""quix-streams stateful pass-through: the peer a user would pick instead of smartgroups.

``python -m bench.pipes.quix_pipe --bootstrap B --group G --out TOPIC IN [IN …]``

One ``StreamingDataFrame`` per input topic; each record's raw bytes are written to RocksDB
state (``state.set`` under the record's key, quix-streams' own changelogged store) and forwarded
to ``--out`` as raw bytes. At least once, commit every ``--commit-interval`` seconds, producer acks
all with the worker's linger and batch size. What is left is quix-streams' cost per event with
state: the floor for any stateful Python stream processor on this machine. Prints ``Ready``
before it starts consuming; SIGTERM/SIGINT stop it cleanly (quix-streams handles them).
"""

from __future__ import annotations

import argparse
import tempfile
from typing import Any

from quixstreams import Application, State
from quixstreams.state.rocksdb import RocksDBOptions


def _same(value: Any) -> Any:
    return value


def _remember(value: bytes, state: State) -> None:
    state.set(b"last", value)  # bytes: the store takes keys and values as they are


def build(args: argparse.Namespace, state_dir: str) -> Application:
    app = Application(
        broker_address=args.bootstrap,
        consumer_group=args.group,
        auto_offset_reset="earliest",
        commit_interval=args.commit_interval,
        state_dir=state_dir,
        processing_guarantee="at-least-once",
        producer_extra_config={"acks": "all", "linger.ms": 5, "batch.size": 131072},
        # raw bytes in and out of state, as the worker stores them (quix's default is JSON)
        rocksdb_options=RocksDBOptions(dumps=_same, loads=_same),
    )
    raw: dict[str, Any] = {"value_deserializer": "bytes", "key_deserializer": "bytes"}
    out = app.topic(args.out, value_serializer="bytes", key_serializer="bytes")
    for name in args.inputs:
        sdf = app.dataframe(topic=app.topic(name, **raw))
        sdf = sdf.update(_remember, stateful=True)
        sdf.to_topic(out)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--commit-interval", type=float, default=1.0)
    parser.add_argument("inputs", nargs="+")
    with tempfile.TemporaryDirectory(prefix="bench-quix-pipe-") as state_dir:  # gone at exit
        app = build(parser.parse_args(), state_dir)
        print("Ready", flush=True)
        app.run()


if __name__ == "__main__":
    main()
