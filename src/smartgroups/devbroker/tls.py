"""Certificates for the broker's optional SASL_SSL listener, made with ``cryptography``.

:func:`ensure_certificates` writes, once per run directory (kept across restarts, so a client's
CA file stays valid): ``tls/ca.pem`` (a self-signed CA, the file clients trust) and
``tls/server.pem`` (the broker's unencrypted PKCS#8 key and its certificate, signed by that CA,
for ``127.0.0.1`` and ``localhost``), which Kafka reads as a PEM key store. For development and
tests only: the key is not encrypted and the CA's key is thrown away. ``cryptography`` is a dev
extra: this module is imported only when the listener is asked for.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class Certificates:
    ca: Path
    """The CA certificate clients trust (``KAFKA_SSL_CAFILE``)."""
    server: Path
    """The broker's key and certificate chain (PEM key store)."""


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_certificates(directory: Path, common_name: str = "smartgroups devbroker") -> Certificates:
    """Write a new CA and a server certificate for 127.0.0.1/localhost under ``directory``."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name(f"{common_name} CA")
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    server = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    pem = serialization.Encoding.PEM
    files = Certificates(directory / "ca.pem", directory / "server.pem")
    files.ca.write_bytes(ca.public_bytes(pem))
    files.server.write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        + server.public_bytes(pem)
        + ca.public_bytes(pem)
    )
    files.server.chmod(0o600)
    return files


def ensure_certificates(directory: Path) -> Certificates:
    """The certificates under ``directory``, made on first use."""
    files = Certificates(directory / "ca.pem", directory / "server.pem")
    if files.ca.is_file() and files.server.is_file():
        return files
    return make_certificates(directory)
