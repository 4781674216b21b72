"""``smartgroups``: the one console script. Each sub-command lives in its own module.

* ``smartgroups worker`` — run the processor until SIGTERM/SIGINT;
* ``smartgroups produce TOPIC FILE.jsonl`` — publish events with the right keys (``-`` = stdin);
* ``smartgroups tail`` — print an output topic's records as JSON lines (``--topic``);
* ``smartgroups preview`` — evaluate a group offline over member snapshots.

Connection flags (``--bootstrap-servers``, ``--topic-prefix``, ``--ssl-cafile``, …) override the
environment variables of the contract; see ``smartgroups.settings``. The SASL password has no
flag (it would show in ``ps``): ``KAFKA_SASL_PASSWORD`` only.

Every expected failure is one line on stderr, ``smartgroups: <cause> (<what to fix>)``, exit
status 2: bad flags or environment, a file that cannot be read, a broker that cannot be reached
or refuses the TLS handshake or SASL login, a topic that does not exist (see :func:`main`).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any, get_args

from smartgroups import __version__
from smartgroups.errors import SmartGroupsError, UsageError
from smartgroups.settings import SaslMechanism, SecurityProtocol, Settings

PASSWORD_NOTE = (
    "The SASL password is read from KAFKA_SASL_PASSWORD only: a flag would show in `ps` and in"
    " the shell's history."
)

_CHECK_KAFKA_FIRST = frozenset({"worker"})
"""Commands whose first contact with Kafka is deep inside other code (the worker's topic check,
then faust): :func:`main` connects once before running them, so a wrong address, TLS setting or
SASL login is one line within the connection bound rather than a traceback."""


def add_connection_flags(parser: argparse.ArgumentParser) -> None:
    """Flags shared by the commands that talk to Kafka (each overrides its variable)."""
    group = parser.add_argument_group(
        "connection (flags override environment variables)", description=PASSWORD_NOTE
    )
    group.add_argument("--bootstrap-servers", help="broker list [KAFKA_BOOTSTRAP_SERVERS]")
    group.add_argument("--topic-prefix", help="prefix of every topic [SMARTGROUPS_TOPIC_PREFIX]")
    group.add_argument("--partitions", type=int, help="partitions [SMARTGROUPS_PARTITIONS]")
    group.add_argument("--app-id", help="consumer group and internal topics [SMARTGROUPS_APP_ID]")
    group.add_argument(
        "--security-protocol",
        choices=get_args(SecurityProtocol),
        help="default PLAINTEXT [KAFKA_SECURITY_PROTOCOL]",
    )
    group.add_argument(
        "--sasl-mechanism",
        choices=get_args(SaslMechanism),
        help="default PLAIN [KAFKA_SASL_MECHANISM]",
    )
    group.add_argument(
        "--sasl-username",
        metavar="USER",
        help="SASL user; the password comes from KAFKA_SASL_PASSWORD [KAFKA_SASL_USERNAME]",
    )
    group.add_argument(
        "--ssl-cafile", metavar="PEM", help="CA bundle to verify the broker [KAFKA_SSL_CAFILE]"
    )
    group.add_argument(
        "--ssl-certfile", metavar="PEM", help="client certificate, mutual TLS [KAFKA_SSL_CERTFILE]"
    )
    group.add_argument(
        "--ssl-keyfile", metavar="PEM", help="the client certificate's key [KAFKA_SSL_KEYFILE]"
    )


_CONNECTION_SETTINGS = (
    "bootstrap_servers",
    "topic_prefix",
    "partitions",
    "app_id",
    "security_protocol",
    "sasl_mechanism",
    "sasl_username",
    "ssl_cafile",
    "ssl_certfile",
    "ssl_keyfile",
)


def settings_from(args: argparse.Namespace, **extra: Any) -> Settings:
    """Settings from the environment, overridden by the flags that were given."""
    overrides = {name: getattr(args, name, None) for name in _CONNECTION_SETTINGS}
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
    """Run the command line; returns the process exit status.

    Every expected failure (:class:`~smartgroups.errors.SmartGroupsError`, a file that cannot
    be read, an error of the Kafka client) is one line on stderr, ``smartgroups: <cause> (<what
    to fix>)``, and its ``exit_status`` (2 for anything the user can fix). Anything else is a
    bug and keeps its traceback.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command in _CHECK_KAFKA_FIRST:
            from smartgroups.cli.connect import check_reachable

            check_reachable(settings_from(args))
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
