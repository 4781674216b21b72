"""``python -m smartgroups.devbroker up|down|status``: the local broker from the command line.

* ``up``: start the broker unless this run directory's broker already runs; print the bootstrap
  address and how long it took. Exit 0 when it answers, 1 on failure (the message says why).
* ``down``: stop it (SIGTERM, SIGKILL after 30 s); exit 0 whether or not one was running.
* ``status``: exit 0 and print the address when it runs and answers, 3 when it does not.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from smartgroups.devbroker.config import HOST, port_from_env
from smartgroups.devbroker.fetch import KAFKA_VERSION
from smartgroups.devbroker.probe import broker_answers
from smartgroups.devbroker.process import (
    broker_status,
    default_run_dir,
    ensure_broker,
    stop_broker,
)
from smartgroups.errors import BrokerError

EXIT_NOT_RUNNING = 3


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m smartgroups.devbroker",
        description=f"Local single-node Apache Kafka {KAFKA_VERSION} broker (KRaft, no Docker).",
    )
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument("--port", type=int, help="client port (default: $KAFKA_PORT or 9092)")
    parser.add_argument(
        "--dir",
        type=Path,
        dest="run_dir",
        help="config, data, log and pid file (default: $SMARTGROUPS_KAFKA_DIR or ./var/kafka)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    run_dir: Path = args.run_dir.absolute() if args.run_dir else default_run_dir()
    try:
        if args.command == "up":
            port = args.port if args.port is not None else port_from_env(os.environ)
            broker = ensure_broker(port=port, run_dir=run_dir)
            verb = "started" if broker.started else "already running"
            print(
                f"kafka {KAFKA_VERSION} {verb} on {broker.bootstrap} (pid {broker.pid}, "
                f"{broker.start_seconds:.1f} s; log {run_dir / 'broker.log'})"
            )
            print(f"KAFKA_BOOTSTRAP_SERVERS={broker.bootstrap}")
            return 0
        if args.command == "down":
            stopped = stop_broker(run_dir)
            print("kafka stopped" if stopped else f"no broker of {run_dir} was running")
            return 0
        record = broker_status(run_dir)
        if record is None:
            print(f"no broker of {run_dir} is running")
            return EXIT_NOT_RUNNING
        bootstrap = f"{HOST}:{record.port}"
        if not broker_answers(bootstrap):
            print(f"broker pid {record.pid} runs but does not answer on {bootstrap} (yet)")
            return EXIT_NOT_RUNNING
        print(f"kafka running on {bootstrap} (pid {record.pid})")
        return 0
    except (BrokerError, ValueError) as exc:
        print(f"devbroker {args.command} failed: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
