"""``smartgroups``: the one console script. Each sub-command lives in its own module.

* ``smartgroups worker`` — run the processor until SIGTERM/SIGINT;
* ``smartgroups produce TOPIC FILE.jsonl`` — publish events with the right keys (``-`` = stdin);
* ``smartgroups tail`` — print membership changes as JSON lines;
* ``smartgroups preview`` — evaluate a group offline over member snapshots.

Connection flags (``--bootstrap-servers``, ``--topic-prefix``, …) override the environment
variables of the contract; see ``smartgroups.settings``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from smartgroups import __version__
from smartgroups.errors import SmartGroupsError
from smartgroups.settings import Settings


def add_connection_flags(parser: argparse.ArgumentParser) -> None:
    """Flags shared by the commands that talk to Kafka (each overrides its variable)."""
    group = parser.add_argument_group("connection (flags override environment variables)")
    group.add_argument("--bootstrap-servers", help="broker list [KAFKA_BOOTSTRAP_SERVERS]")
    group.add_argument("--topic-prefix", help="prefix of every topic [SMARTGROUPS_TOPIC_PREFIX]")
    group.add_argument("--partitions", type=int, help="partitions [SMARTGROUPS_PARTITIONS]")
    group.add_argument("--app-id", help="consumer group and internal topics [SMARTGROUPS_APP_ID]")
    group.add_argument("--security-protocol", help="[KAFKA_SECURITY_PROTOCOL]")
    group.add_argument("--sasl-mechanism", help="[KAFKA_SASL_MECHANISM]")
    group.add_argument("--sasl-username", help="[KAFKA_SASL_USERNAME]")
    group.add_argument("--ssl-cafile", help="[KAFKA_SSL_CAFILE]")


def settings_from(args: argparse.Namespace, **extra: Any) -> Settings:
    """Settings from the environment, overridden by the flags that were given."""
    names = (
        "bootstrap_servers",
        "topic_prefix",
        "partitions",
        "app_id",
        "security_protocol",
        "sasl_mechanism",
        "sasl_username",
        "ssl_cafile",
    )
    overrides = {name: getattr(args, name, None) for name in names}
    return Settings.from_env(os.environ, **overrides, **extra)


def _commands() -> dict[str, Any]:
    from smartgroups.cli import preview, produce, tail, worker

    return {"worker": worker, "produce": produce, "tail": tail, "preview": preview}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="smartgroups",
        description="Exact, live smart-group memberships on Kafka.",
    )
    parser.add_argument("--version", action="version", version=f"smartgroups {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in _commands().values():
        module.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status: int = _commands()[args.command].run(args)
    except SmartGroupsError as exc:
        print(f"smartgroups: {exc}", file=sys.stderr)
        return int(getattr(exc, "exit_status", 1))
    except KeyboardInterrupt:
        return 130
    return status


if __name__ == "__main__":
    raise SystemExit(main())
