"""The CLI's boundary with Kafka: bounded connection, quiet client logs, errors as one line.

Every command that talks to Kafka goes through :func:`kafka_session`:

* aiokafka's log records go nowhere near stderr while it runs (a wiped broker once made
  ``tail`` print thousands of "not found in cluster metadata" warnings); the exceptions they
  carry are kept, because aiokafka logs the real reason a connection failed (refused, TLS,
  SASL) and raises only "Unable to bootstrap".
* every aiokafka error raised inside it leaves as a :class:`~smartgroups.errors.KafkaClientError`
  (see :func:`translate`), which the CLI prints as one line and exit status 2.

:func:`start` connects a client within :data:`CONNECT_TIMEOUT_S` (or less, when the command has
a shorter bound) and stops it again when that fails, so no "Unclosed AIOKafka…" warning follows;
:func:`stop` never waits more than :data:`STOP_TIMEOUT_S`. :func:`topic_partitions` reads a
topic's partitions from a fresh all-topics metadata request (which never auto-creates a topic)
and raises :class:`~smartgroups.errors.TopicMissing` at once when it does not exist.
:func:`check_reachable` is the same connection as a stand-alone check.

Decisions where the contract is silent:

* The connection bound is 10 s: long enough for a TLS handshake over a slow link, short enough
  that a wrong address fails while the user still waits. A refused connection fails at once.
* An aiokafka error that is not about reaching or entering the broker (say a broker-side error
  code) is still a one-line :class:`~smartgroups.errors.KafkaClientError`, naming the error: it
  is the broker's condition, not a bug of ours.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Sequence
from typing import Any

from smartgroups.errors import (
    KafkaAccessError,
    KafkaClientError,
    KafkaUnreachable,
    SmartGroupsError,
    TopicMissing,
)
from smartgroups.settings import Settings

CONNECT_TIMEOUT_S = 10.0
"""Longest wait for a broker to answer (connection, TLS, SASL and first metadata)."""

STOP_TIMEOUT_S = 5.0
"""Longest wait for a client to close."""

_TOPIC_SETTLE_S = 0.5
"""How long a missing topic is looked for again (a worker may have created it a moment ago)."""


_KEPT_CAUSES = 32


class _Causes(logging.Handler):
    """Keeps the exceptions aiokafka logs (``Unable connect to "h:p": <exc>``), prints nothing."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        # The latest ones only: a tail left running while its broker is gone logs for hours.
        self.causes: deque[BaseException] = deque(maxlen=_KEPT_CAUSES)

    def emit(self, record: logging.LogRecord) -> None:
        args = record.args if isinstance(record.args, tuple) else ()
        self.causes.extend(a for a in args if isinstance(a, BaseException))
        if record.exc_info and record.exc_info[1] is not None:
            self.causes.append(record.exc_info[1])


class KafkaSession:
    """What :func:`kafka_session` yields: the settings and the causes aiokafka logged so far."""

    def __init__(self, settings: Settings, causes: Sequence[BaseException]) -> None:
        self.settings = settings
        self.causes = causes

    def error(self, exc: BaseException) -> SmartGroupsError | None:
        """``exc`` as the CLI reports it (see :func:`translate`)."""
        return translate(exc, self.settings, self.causes)


@contextlib.asynccontextmanager
async def kafka_session(settings: Settings) -> AsyncIterator[KafkaSession]:
    """Quiet aiokafka's logs and translate its errors for the duration of the block."""
    logger = logging.getLogger("aiokafka")
    handler = _Causes()
    saved = (logger.propagate, logger.level)
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.WARNING)
    session = KafkaSession(settings, handler.causes)
    try:
        yield session
    except SmartGroupsError:
        raise
    except Exception as exc:
        translated = session.error(exc)
        if translated is None:
            raise
        raise translated from None
    finally:
        logger.removeHandler(handler)
        logger.propagate, level = saved
        logger.setLevel(level)


async def start(client: Any, session: KafkaSession, bound: float | None = None) -> None:
    """Start an aiokafka producer, consumer or admin client within ``bound`` seconds (at most
    :data:`CONNECT_TIMEOUT_S`); on failure close it and raise the translated error."""
    await _connect(client.start(), client, session, bound)


async def _connect(
    begin: Awaitable[Any], client: Any, session: KafkaSession, bound: float | None
) -> None:
    bound = CONNECT_TIMEOUT_S if bound is None else min(bound, CONNECT_TIMEOUT_S)
    try:
        await asyncio.wait_for(begin, bound)
    except Exception as exc:
        await stop(client)
        if isinstance(exc, TimeoutError):
            raise _unreachable(session.settings, [*session.causes, exc], bound) from None
        translated = session.error(exc)
        if translated is None:
            raise
        raise translated from None


async def stop(client: Any) -> None:
    """Close ``client`` within :data:`STOP_TIMEOUT_S`, whatever the broker does."""
    await asyncio.sleep(0)  # let tasks the client just created start, so they cancel cleanly
    stopper = getattr(client, "stop", None) or client.close
    with contextlib.suppress(Exception, asyncio.CancelledError):
        await asyncio.wait_for(stopper(), STOP_TIMEOUT_S)


async def topic_partitions(client: Any, topic: str, session: KafkaSession) -> list[int]:
    """The partitions of ``topic``; :class:`TopicMissing` (at once) when it does not exist.

    ``client`` is a started producer or consumer. Reads all topics' metadata, which never
    creates a topic even on a broker with ``auto.create.topics.enable``.
    """
    kafka = client.client if hasattr(client, "client") else client._client
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _TOPIC_SETTLE_S
    while True:
        metadata = await asyncio.wait_for(kafka.fetch_all_metadata(), CONNECT_TIMEOUT_S)
        found = metadata.partitions_for_topic(topic)
        if found:
            return sorted(found)
        if loop.time() >= deadline:
            raise TopicMissing(
                f"topic {topic} does not exist on {session.settings.bootstrap_servers}"
                " (start `smartgroups worker` once to create the topics, or check"
                " --topic-prefix / SMARTGROUPS_TOPIC_PREFIX)"
            )
        await asyncio.sleep(0.25)


def check_reachable(settings: Settings) -> None:
    """Connect to Kafka once (address, TLS, SASL, metadata) and disconnect; raise the
    translated error when that fails."""

    async def probe() -> None:
        from aiokafka import AIOKafkaClient

        async with kafka_session(settings) as session:
            client = AIOKafkaClient(
                **settings.kafka_client_options(),
                request_timeout_ms=int(CONNECT_TIMEOUT_S * 1000),
            )
            await _connect(client.bootstrap(), client, session, None)
            await stop(client)

    asyncio.run(probe())


def translate(
    exc: BaseException, settings: Settings, causes: Sequence[BaseException] = ()
) -> SmartGroupsError | None:
    """The one-line error for ``exc``, raised by aiokafka or by a bounded wait on it; ``None``
    when ``exc`` is neither (a bug, which keeps its traceback).

    ``causes`` are the exceptions aiokafka logged before raising (the reason behind "Unable to
    bootstrap"): a TLS failure or a refused SASL login among them wins over "unreachable".
    """
    if isinstance(exc, SmartGroupsError):
        return exc
    if not (_from_aiokafka(exc) or isinstance(exc, ssl.SSLError | TimeoutError)):
        return None
    seen = [*causes, exc]
    access = _access_error(seen, settings)
    if access is not None:
        return access
    if _is_connection_failure(exc):
        return _unreachable(settings, seen)
    return KafkaClientError(
        f"Kafka at {settings.bootstrap_servers} failed the request: {type(exc).__name__}:"
        f" {_text(exc)} (check the broker and its log)"
    )


def _access_error(seen: Sequence[BaseException], settings: Settings) -> KafkaAccessError | None:
    """A refused TLS handshake, SASL login or authorization among ``seen``, if any."""
    servers = settings.bootstrap_servers
    for cause in seen:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return KafkaAccessError(
                f"TLS handshake with Kafka at {servers} failed: certificate verify failed:"
                f" {cause.verify_message} (give the CA that signed the broker's certificate:"
                " --ssl-cafile or KAFKA_SSL_CAFILE)"
            )
        if isinstance(cause, ssl.SSLError):
            return KafkaAccessError(
                f"TLS handshake with Kafka at {servers} failed: {cause.reason or _text(cause)}"
                " (check --security-protocol and --ssl-cafile, --ssl-certfile, --ssl-keyfile or"
                " their KAFKA_SSL_* variables)"
            )
    for cause in seen:
        name = type(cause).__name__
        if name in ("IllegalSaslStateError", "UnsupportedSaslMechanismError"):
            detail = f": {_text(cause)}" if name == "UnsupportedSaslMechanismError" else ""
            return KafkaAccessError(
                f"Kafka at {servers} does not accept SASL {settings.sasl_mechanism} there"
                f"{detail} (check --security-protocol and --sasl-mechanism)"
            )
        if "Sasl" in name or "Authentication" in name:
            user = f" of user {settings.sasl_username}" if settings.sasl_username else ""
            return KafkaAccessError(
                f"Kafka at {servers} refused the SASL login{user}: {_text(cause)} (check"
                " --sasl-username, --sasl-mechanism and KAFKA_SASL_PASSWORD)"
            )
        if "Authorization" in name:
            return KafkaAccessError(
                f"Kafka at {servers} denied access: {name} (grant the user ACLs on the"
                " smartgroups topics, or check --sasl-username)"
            )
    return None


def _unreachable(
    settings: Settings, seen: Sequence[BaseException], bound: float | None = None
) -> KafkaClientError:
    """*Cannot reach Kafka*, unless ``seen`` shows the broker answered and refused us."""
    access = _access_error(seen, settings)
    if access is not None:
        return access
    reason, fix = _reason(seen, bound, settings.security_protocol)
    return KafkaUnreachable(f"cannot reach Kafka at {settings.bootstrap_servers}: {reason} ({fix})")


def _from_aiokafka(exc: BaseException) -> bool:
    return type(exc).__module__.startswith("aiokafka")


def _is_connection_failure(exc: BaseException) -> bool:
    from aiokafka import errors

    return isinstance(
        exc,
        OSError
        | TimeoutError
        | errors.KafkaConnectionError
        | errors.KafkaTimeoutError
        | errors.NoBrokersAvailable
        | errors.NodeNotReadyError
        | errors.RequestTimedOutError,
    )


_ADDRESS_FIX = "is a broker running there? set KAFKA_BOOTSTRAP_SERVERS or --bootstrap-servers"


def _reason(seen: Sequence[BaseException], bound: float | None, protocol: str) -> tuple[str, str]:
    """The most telling (reason, fix) among ``seen`` for a failed connection."""
    for cause in seen:
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused", _ADDRESS_FIX
        if isinstance(cause, socket.gaierror):
            return "unknown host", "check the host names in KAFKA_BOOTSTRAP_SERVERS"
        if isinstance(cause, ConnectionResetError) or "closed" in str(cause).lower():
            return (
                "the broker closed the connection",
                f"does its listener expect {protocol}? check --security-protocol or"
                " KAFKA_SECURITY_PROTOCOL",
            )
    if any(isinstance(c, TimeoutError) for c in seen):
        within = f" within {bound:g} s" if bound is not None else " in time"
        return f"no answer{within}", _ADDRESS_FIX
    for cause in seen:
        if isinstance(cause, OSError) and cause.strerror:
            return str(cause.strerror).lower(), _ADDRESS_FIX
    return "no broker answered", _ADDRESS_FIX


def _text(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return " ".join(text.split())
