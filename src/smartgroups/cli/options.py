"""The flags every Kafka command shares, and the one way the CLI builds :class:`Settings`.

Flags override the contract's environment variables, which override the defaults
(:meth:`smartgroups.settings.Settings.from_env` is the only reader of the environment). The SASL
password has no flag on purpose (:data:`PASSWORD_NOTE`).
"""

from __future__ import annotations

import argparse
import os
from typing import Any, get_args

from smartgroups.settings import SaslMechanism, SecurityProtocol, Settings

PASSWORD_NOTE = (
    "The SASL password is read from KAFKA_SASL_PASSWORD only: a flag would show in `ps` and in"
    " the shell's history."
)


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
