"""aiokafka's failures become one line naming the cause and the fix (no broker needed).

The translation is fed the exceptions aiokafka really raises and logs; the TLS and bound cases
run the real client against local sockets (a TLS server with a self-signed certificate, a port
that accepts and never answers).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, errors

from smartgroups.cli import connect
from smartgroups.errors import KafkaAccessError, KafkaClientError, KafkaUnreachable
from smartgroups.settings import Settings

# A self-signed certificate for 127.0.0.1 / localhost, valid until 2126 (openssl req -x509 ...).
CERT = """-----BEGIN CERTIFICATE-----
MIIBmzCCAUGgAwIBAgIUDbEkx3og4qlmPUilpOhgVAnmg7MwCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTIwNDE5MDg1MloYDzIxMjYxMTEw
MTkwODUyWjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAAQxBKszpS+0yhCAnLtEvJN1ZG/g4Oe4mAVX8q5k3CgNguySEABGu/HI
GDxhERaQv0vDUOUCMuIGFPQM7TfRs0HEo28wbTAdBgNVHQ4EFgQUyEq18AYgUklR
5rx+D6ulPrRQLWMwHwYDVR0jBBgwFoAUyEq18AYgUklR5rx+D6ulPrRQLWMwDwYD
VR0TAQH/BAUwAwEB/zAaBgNVHREEEzARhwR/AAABgglsb2NhbGhvc3QwCgYIKoZI
zj0EAwIDSAAwRQIgUMjjxmc3Xoc7qeOCval6iXvM8opI6uMsI6GGcMXN8qoCIQDt
XCywM3zTxq1fX2lADFayZni1jBhUMjKLVIdrsusL3w==
-----END CERTIFICATE-----
"""
KEY = """-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg9sMlRt+Zi7V6yWi7
jUKq3T4Yf4Os6UxToAJoj9sgfJWhRANCAAQxBKszpS+0yhCAnLtEvJN1ZG/g4Oe4
mAVX8q5k3CgNguySEABGu/HIGDxhERaQv0vDUOUCMuIGFPQM7TfRs0HE
-----END PRIVATE KEY-----
"""

PLAIN = Settings.from_env({}, bootstrap_servers="kafka.example:9092")


def test_a_refused_connection_names_the_address_and_the_variable() -> None:
    refused = ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 1)")
    error = connect.translate(
        errors.KafkaConnectionError("Unable to bootstrap from [...]"),
        Settings.from_env({}, bootstrap_servers="127.0.0.1:1"),
        [refused],
    )
    assert isinstance(error, KafkaUnreachable) and error.exit_status == 2
    assert str(error).startswith("cannot reach Kafka at 127.0.0.1:1: connection refused (")
    assert "KAFKA_BOOTSTRAP_SERVERS" in str(error)


def test_an_unknown_host_says_so() -> None:
    error = connect.translate(
        errors.KafkaConnectionError("Unable to bootstrap"), PLAIN, [socket.gaierror(-2, "x")]
    )
    assert "cannot reach Kafka at kafka.example:9092: unknown host" in str(error)


def test_a_closed_connection_points_at_the_security_protocol() -> None:
    tls = Settings.from_env({}, security_protocol="SSL")
    error = connect.translate(errors.KafkaConnectionError("x"), tls, [ConnectionResetError()])
    assert isinstance(error, KafkaUnreachable)
    assert "does its listener expect SSL? check --security-protocol" in str(error)


def test_a_refused_sasl_login_names_the_user_never_the_password() -> None:
    sasl = Settings.from_env(
        {"KAFKA_SASL_PASSWORD": "hunter2-secret"},
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="svc",
    )
    failed = errors.SaslAuthenticationFailed("Authentication failed: invalid credentials")
    error = connect.translate(errors.KafkaConnectionError("Unable to bootstrap"), sasl, [failed])
    assert isinstance(error, KafkaAccessError)
    assert "refused the SASL login of user svc: " in str(error)
    assert "KAFKA_SASL_PASSWORD" in str(error) and "hunter2" not in str(error)


def test_a_listener_without_sasl_is_told_apart_from_a_wrong_password() -> None:
    error = connect.translate(
        errors.KafkaConnectionError("x"), PLAIN, [errors.IllegalSaslStateError("conn")]
    )
    assert "does not accept SASL PLAIN there (check --security-protocol" in str(error)


def test_a_missing_acl_is_an_access_error() -> None:
    error = connect.translate(errors.TopicAuthorizationFailedError(), PLAIN)
    assert isinstance(error, KafkaAccessError) and "ACLs" in str(error)


def test_other_kafka_errors_are_one_line_naming_the_error() -> None:
    error = connect.translate(errors.RecordTooLargeError("too big\nreally"), PLAIN)
    assert type(error) is KafkaClientError
    assert "RecordTooLargeError: too big really (check the broker" in str(error)


def test_a_bug_is_not_translated() -> None:
    assert connect.translate(KeyError("x"), PLAIN, [ConnectionRefusedError()]) is None
    assert connect.translate(FileNotFoundError(2, "gone", "f"), PLAIN) is None


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """A TLS server on 127.0.0.1 with the self-signed certificate; it speaks no Kafka."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_text(CERT)
    key.write_text(KEY)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server: asyncio.AbstractServer | None = None

    async def serve() -> int:
        nonlocal server

        async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.close()

        server = await asyncio.start_server(hang_up, "127.0.0.1", 0, ssl=context)
        return int(server.sockets[0].getsockname()[1])

    loop = asyncio.new_event_loop()
    port = loop.run_until_complete(serve())
    import threading

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield port, cert
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)


async def _start_consumer(settings: Settings, bound: float | None = None) -> None:
    async with connect.kafka_session(settings) as session:
        consumer = AIOKafkaConsumer(**settings.kafka_client_options(), group_id=None)
        await connect.start(consumer, session, bound=bound)
        await connect.stop(consumer)


async def test_an_untrusted_certificate_is_a_tls_error_naming_the_ca_flag(
    tls_server: tuple[int, Path],
) -> None:
    port, _ = tls_server
    settings = Settings.from_env({}, bootstrap_servers=f"127.0.0.1:{port}", security_protocol="SSL")
    with pytest.raises(KafkaAccessError) as caught:
        await _start_consumer(settings)
    text = str(caught.value)
    assert text.startswith(
        f"TLS handshake with Kafka at 127.0.0.1:{port} failed: certificate verify failed: "
    )
    assert "(give the CA that signed the broker's certificate: --ssl-cafile" in text


async def test_the_ca_file_given_is_the_one_trusted(tls_server: tuple[int, Path]) -> None:
    port, cert = tls_server
    settings = Settings.from_env(
        {"KAFKA_SSL_CAFILE": str(cert)},
        bootstrap_servers=f"127.0.0.1:{port}",
        security_protocol="SSL",
    )
    # The handshake succeeds; then the server, which speaks no Kafka, hangs up.
    with pytest.raises(KafkaUnreachable, match="the broker closed the connection"):
        await _start_consumer(settings)


async def test_a_port_that_never_answers_fails_within_the_bound() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # connections complete in the kernel; nobody ever reads or answers
        settings = Settings.from_env({}, bootstrap_servers=f"127.0.0.1:{silent.getsockname()[1]}")
        began = time.monotonic()
        with pytest.raises(KafkaUnreachable, match=r"no answer within 1\.5 s"):
            await _start_consumer(settings, bound=1.5)
        assert time.monotonic() - began < 4


def test_aiokafka_logs_stay_off_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    settings = Settings.from_env({}, bootstrap_servers="127.0.0.1:1")
    with pytest.raises(KafkaUnreachable):
        connect.check_reachable(settings)
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""
