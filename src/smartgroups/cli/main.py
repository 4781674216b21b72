"""``smartgroups``: the one console script. Each sub-command lives in its own module.

* ``smartgroups worker`` — run the processor until SIGTERM/SIGINT;
* ``smartgroups produce TOPIC FILE.jsonl`` — publish events with the right keys (``-`` = stdin);
* ``smartgroups tail`` — print an output topic's records as JSON lines (``--topic``);
* ``smartgroups preview`` — evaluate a group offline over member snapshots, or ``--live`` over
  the workers' members (the query API);
* ``smartgroups members SPACE GROUP`` / ``smartgroups segment SPACE SET [GROUP]`` /
  ``smartgroups explain SPACE GROUP MEMBER`` — ask the workers' query API who is in a group or
  a segment, and why a member is in or out;
* ``smartgroups status`` — the app's workers, partitions, lag and backfills (``--watch``);
* ``smartgroups reset`` — rewind the app's consumer groups on the input topics;
* ``smartgroups reconcile`` — re-decide every member of a scope, emit only the differences;
* ``smartgroups dead-letters`` — count, show and redrive dead letters.

Connection flags (``--bootstrap-servers``, ``--topic-prefix``, ``--ssl-cafile``, …) override the
environment variables of the contract; see ``smartgroups.settings``. The SASL password has no
flag (it would show in ``ps``): ``KAFKA_SASL_PASSWORD`` only.

Every expected failure is one line on stderr, ``smartgroups: <cause> (<what to fix>)``, exit
status 2: bad flags or environment, a file that cannot be read, a broker that cannot be reached
or refuses the TLS handshake or SASL login, a topic that does not exist (see :func:`main`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from smartgroups import __version__
from smartgroups.cli.options import settings_from
from smartgroups.errors import SmartGroupsError, UsageError


def _commands() -> dict[str, Any]:
    from smartgroups.cli import (
        deadletters,
        preview,
        produce,
        query,
        reconcile,
        reset,
        status,
        tail,
        worker,
    )

    return {
        "worker": worker,
        "produce": produce,
        "tail": tail,
        "preview": preview,
        "status": status,
        "reset": reset,
        "reconcile": reconcile,
        "dead-letters": deadletters,
        "members": query.members,
        "segment": query.segment,
        "explain": query.explain,
    }


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
    """Run the command line; returns the process exit status.

    Every expected failure (:class:`~smartgroups.errors.SmartGroupsError`, a file that cannot
    be read, an error of the Kafka client) is one line on stderr, ``smartgroups: <cause> (<what
    to fix>)``, and its ``exit_status`` (2 for anything the user can fix). Anything else is a
    bug and keeps its traceback.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status = _commands()[args.command].run(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        error = expected_error(exc, args)
        if error is None:
            raise
        print(f"smartgroups: {error}", file=sys.stderr)
        return error.exit_status
    return int(status or 0)


def expected_error(exc: BaseException, args: argparse.Namespace) -> SmartGroupsError | None:
    """``exc`` as a one-line error when it is an expected failure, else ``None`` (a bug)."""
    if isinstance(exc, SmartGroupsError):
        return exc
    if isinstance(exc, OSError) and exc.filename is not None:
        return UsageError(file_problem(exc))
    if type(exc).__module__.startswith("aiokafka"):
        from smartgroups.cli.connect import translate

        try:
            settings = settings_from(args)
        except SmartGroupsError as bad_settings:
            return bad_settings
        return translate(exc, settings)
    return None


def file_problem(exc: OSError) -> str:
    """``exc`` (an OSError about a file) as "<file>: <cause> (<fix>)"."""
    name = exc.filename
    if isinstance(exc, FileNotFoundError):
        return f"{name}: no such file (check the path)"
    if isinstance(exc, PermissionError):
        return f"{name}: permission denied (check its permissions)"
    if isinstance(exc, IsADirectoryError):
        return f"{name}: is a directory (give a file)"
    return f"{name}: {(exc.strerror or str(exc)).lower()} (check the path)"


if __name__ == "__main__":
    raise SystemExit(main())
