"""Configuration: one frozen, validated object built once at the edge (the CLI).

Nothing in smartgroups reads the environment except :meth:`Settings.from_env`, which the CLI calls
with ``os.environ`` and the flags it parsed. Flags win over variables, variables over defaults.

| variable                     | default          | meaning                                      |
|------------------------------|------------------|----------------------------------------------|
| ``KAFKA_BOOTSTRAP_SERVERS``  | ``127.0.0.1:9092`` | broker list                                |
| ``SMARTGROUPS_TOPIC_PREFIX`` | empty            | prefix of every topic name                   |
| ``SMARTGROUPS_PARTITIONS``   | ``8``            | partitions of member-keyed and internal topics |
| ``SMARTGROUPS_APP_ID``       | ``smartgroups``  | consumer group and internal topic prefix     |
| ``SMARTGROUPS_DATA_DIR``     | ``./var/data``   | local RocksDB state                          |
| ``SMARTGROUPS_WEB_PORT``     | ``6066``         | HTTP port of the worker                      |
| ``SMARTGROUPS_TICK_INTERVAL``| ``1.0``          | seconds between time-trigger ticks           |
| ``SMARTGROUPS_SCAN_CHUNK``   | ``100``          | members per backfill or due step, then live  |
| ``SMARTGROUPS_COMMIT_INTERVAL`` | ``0.1``       | most seconds between checkpoints and commits |
| ``SMARTGROUPS_CLOCK_FILE``   | unset            | testing aid: seconds to add to the clock     |
| ``SMARTGROUPS_MEMBER_PATH``  | ``batch``        | ``batch`` or ``agent`` (the member path)     |
| ``SMARTGROUPS_LOG_FORMAT``   | ``text``         | ``text`` or ``json`` (one object per line)   |
| ``KAFKA_SECURITY_PROTOCOL``  | ``PLAINTEXT``    | PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL   |
| ``KAFKA_SASL_MECHANISM``     | ``PLAIN``        | PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512        |
| ``KAFKA_SASL_USERNAME`` / ``KAFKA_SASL_PASSWORD`` | unset | SASL credentials (never logged)  |
| ``KAFKA_SSL_CAFILE`` / ``KAFKA_SSL_CERTFILE`` / ``KAFKA_SSL_KEYFILE`` | unset | TLS files |

Every setting except ``KAFKA_SASL_PASSWORD`` also has a flag (``--ssl-cafile`` for
``KAFKA_SSL_CAFILE``, …): a password given as a flag would show in ``ps`` and in the shell's
history, so it is read from the environment only.

Decisions where the contract is silent:

* An error names where the bad value came from: the flag when one was given, else the variable.
* A TLS file that is given must exist and be readable, whatever the security protocol (a typo
  shows at once rather than when TLS is switched on); with ``SSL`` or ``SASL_SSL`` the files
  must also load (PEM CA bundle, certificate, key). A key file needs a certificate file.
* ``SASL_PLAINTEXT`` and ``SASL_SSL`` need both a user and a password (PLAIN and SCRAM have no
  anonymous form); the password itself never appears in a message.
"""

from __future__ import annotations

import os
import re
import ssl
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from smartgroups.errors import ConfigError

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
LogFormat = Literal["text", "json"]
"""How the worker writes log records: ``[time] LEVEL logger: message`` or one JSON object per
line (:class:`smartgroups.cli.console.JsonFormatter`)."""
MemberPath = Literal["agent", "batch"]
"""How member inputs are consumed: batches on the worker's own consumer (the default,
:mod:`smartgroups.worker.member_loop`) or a faust agent, one record at a time (the previous
path, kept while the batch path goes through the fault suite)."""

_ENV: dict[str, str] = {
    "bootstrap_servers": "KAFKA_BOOTSTRAP_SERVERS",
    "topic_prefix": "SMARTGROUPS_TOPIC_PREFIX",
    "partitions": "SMARTGROUPS_PARTITIONS",
    "app_id": "SMARTGROUPS_APP_ID",
    "data_dir": "SMARTGROUPS_DATA_DIR",
    "web_port": "SMARTGROUPS_WEB_PORT",
    "web_host": "SMARTGROUPS_WEB_HOST",
    "api_tokens_file": "SMARTGROUPS_API_TOKENS_FILE",
    "api_token": "SMARTGROUPS_API_TOKEN",
    "tick_interval": "SMARTGROUPS_TICK_INTERVAL",
    "scan_chunk": "SMARTGROUPS_SCAN_CHUNK",
    "commit_interval": "SMARTGROUPS_COMMIT_INTERVAL",
    "clock_file": "SMARTGROUPS_CLOCK_FILE",
    "member_path": "SMARTGROUPS_MEMBER_PATH",
    "log_format": "SMARTGROUPS_LOG_FORMAT",
    "security_protocol": "KAFKA_SECURITY_PROTOCOL",
    "sasl_mechanism": "KAFKA_SASL_MECHANISM",
    "sasl_username": "KAFKA_SASL_USERNAME",
    "sasl_password": "KAFKA_SASL_PASSWORD",
    "ssl_cafile": "KAFKA_SSL_CAFILE",
    "ssl_certfile": "KAFKA_SSL_CERTFILE",
    "ssl_keyfile": "KAFKA_SSL_KEYFILE",
}


def _flag(name: str) -> str:
    """The command-line flag of setting ``name`` (``ssl_cafile`` -> ``--ssl-cafile``)."""
    return "--" + name.replace("_", "-")


_TOPIC_PREFIX = re.compile(r"^[A-Za-z0-9._-]{0,100}$")


class Settings(BaseModel):
    """Everything the worker and the CLI need to reach Kafka and keep state."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    bootstrap_servers: str = "127.0.0.1:9092"
    topic_prefix: str = ""
    partitions: int = Field(default=8, ge=1, le=1024)
    app_id: str = Field(default="smartgroups", pattern=r"^[A-Za-z0-9._-]{1,200}$")
    data_dir: Path = Path("./var/data")
    web_port: int = Field(default=6066, ge=1, le=65535)
    web_host: str = Field(default="127.0.0.1", min_length=1, max_length=255)
    api_tokens_file: Path | None = None
    api_token: SecretStr | None = None
    """The bearer token the CLI's query commands send (environment only, like a password)."""
    insecure_api: bool = False
    """``--insecure-api`` (a flag only): serve the query API on a non-loopback address without
    tokens."""
    tick_interval: float = Field(default=1.0, gt=0, le=60)
    scan_chunk: int = Field(default=100, ge=1, le=100_000)
    commit_interval: float = Field(default=0.1, gt=0, le=60)
    clock_file: Path | None = None
    member_path: MemberPath = "batch"
    log_format: LogFormat = "text"
    security_protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism = "PLAIN"
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None

    @field_validator("bootstrap_servers")
    @classmethod
    def _no_credentials_in_url(cls, value: str) -> str:
        if "@" in value:
            raise ValueError("put credentials in KAFKA_SASL_USERNAME/PASSWORD, not in the URL")
        if not value.strip():
            raise ValueError("must name at least one host:port")
        return value.strip()

    @field_validator("topic_prefix")
    @classmethod
    def _prefix_is_a_topic_fragment(cls, value: str) -> str:
        if not _TOPIC_PREFIX.match(value):
            raise ValueError("may hold only letters, digits, '.', '_' and '-'")
        return value

    @classmethod
    def from_env(cls, environ: Mapping[str, str], **overrides: Any) -> Settings:
        """Build settings from ``environ`` and flag ``overrides`` (``None`` means "not given").

        Raises :class:`ConfigError` naming the offending flag (when given) or variable; secrets
        never appear.
        """
        values: dict[str, Any] = {
            name: environ[var] for name, var in _ENV.items() if environ.get(var, "") != ""
        }
        given = {k: v for k, v in overrides.items() if v is not None}
        values.update(given)

        def source(name: str) -> str:
            return _flag(name) if name in given else _ENV.get(name, name)

        try:
            settings = cls(**values)
        except ValidationError as exc:
            problems = "; ".join(
                f"{source(str(err['loc'][0])) if err['loc'] else '?'}: {err['msg']}"
                for err in exc.errors(include_input=False)
            )
            raise ConfigError(
                f"invalid configuration: {problems} (correct the flag or variable named)"
            ) from None
        settings._check_security(source)
        return settings

    def _check_security(self, source: Callable[[str], str]) -> None:
        """The TLS files exist (and load, when TLS is on); SASL has its user and password."""
        for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
            path: Path | None = getattr(self, name)
            if path is None:
                continue
            if not path.is_file():
                raise ConfigError(f"{source(name)}: no such file {path} (give the PEM file's path)")
            if not os.access(path, os.R_OK):
                raise ConfigError(f"{source(name)}: cannot read {path} (check its permissions)")
        if self.ssl_keyfile and not self.ssl_certfile:
            raise ConfigError(
                f"{source('ssl_keyfile')} is set without a certificate"
                " (set --ssl-certfile or KAFKA_SSL_CERTFILE to the key's certificate)"
            )
        if self.security_protocol.endswith("SSL"):
            try:
                self._ssl_context()
            except (ssl.SSLError, OSError, ValueError) as exc:
                names = ("ssl_cafile", "ssl_certfile", "ssl_keyfile")
                files = ", ".join(source(n) for n in names if getattr(self, n))
                reason = getattr(exc, "reason", None) or str(exc)
                raise ConfigError(
                    f"the TLS files do not load: {reason} (check {files or 'the TLS files'}:"
                    " PEM CA bundle, certificate, key)"
                ) from None
        if self.security_protocol.startswith("SASL"):
            protocol = source("security_protocol")
            if not self.sasl_username:
                raise ConfigError(
                    f"{protocol}={self.security_protocol} needs a SASL user"
                    " (set --sasl-username or KAFKA_SASL_USERNAME)"
                )
            if self.sasl_password is None:
                raise ConfigError(
                    f"{protocol}={self.security_protocol} needs a SASL password"
                    " (set KAFKA_SASL_PASSWORD; it is read from the environment only)"
                )

    def topic(self, name: str) -> str:
        """The full name of contract topic ``name`` (prefix applied)."""
        return f"{self.topic_prefix}{name}"

    def kafka_client_options(self) -> dict[str, Any]:
        """Options for aiokafka clients, security included (the one place the secret is read)."""
        options: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers,
            "security_protocol": self.security_protocol,
        }
        if self.security_protocol.startswith("SASL"):
            options["sasl_mechanism"] = self.sasl_mechanism
            options["sasl_plain_username"] = self.sasl_username
            options["sasl_plain_password"] = (
                self.sasl_password.get_secret_value() if self.sasl_password else None
            )
        if self.security_protocol.endswith("SSL"):
            options["ssl_context"] = self._ssl_context()
        return options

    def _ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(
            cafile=str(self.ssl_cafile) if self.ssl_cafile else None
        )
        if self.ssl_certfile:
            context.load_cert_chain(
                str(self.ssl_certfile), str(self.ssl_keyfile) if self.ssl_keyfile else None
            )
        return context

    def __repr__(self) -> str:  # pydantic already masks SecretStr; keep the repr short
        return (
            f"Settings(bootstrap_servers={self.bootstrap_servers!r}, prefix={self.topic_prefix!r},"
            f" partitions={self.partitions}, app_id={self.app_id!r}, data_dir='{self.data_dir}',"
            f" security_protocol={self.security_protocol!r})"
        )
