"""Pure pieces of the broker's configuration: cluster id, free ports, server.properties, JVM flags.

Nothing here starts a process. The single-node settings follow ``kafka-local.md`` section 3:
one combined broker/controller on 127.0.0.1 with static voters, every internal topic at
replication 1 and one partition, no initial rebalance delay, a small heap and cleaner buffer.

``auto.create.topics.enable=false``: the worker creates its topics with the configured partition
count (CONTRACT section 2) and faust creates its internal topics through CreateTopics, so
auto-creation would only hide a missing creation behind a one-partition topic, which breaks
co-partitioning silently. Tests create their topics explicitly, as production does.
"""

from __future__ import annotations

import base64
import socket
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"
DEFAULT_PORT = 9092
PORT_ENV = "KAFKA_PORT"

HEAP_OPTS = ("-Xms256m", "-Xmx512m")
GC_OPTS = (
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
)
TOOL_HEAP_OPTS = ("-Xmx256m",)


def new_cluster_id(draw: Callable[[], bytes] = lambda: uuid.uuid4().bytes) -> str:
    """A KRaft cluster id as ``Uuid.randomUuid().toString()`` makes it, without a JVM.

    URL-safe base64 of 16 random bytes without padding (22 characters), drawn again when it starts
    with ``-`` (Kafka reserves those: they would read as a command-line flag).
    """
    while True:
        text = base64.urlsafe_b64encode(draw()).decode("ascii").rstrip("=")
        if not text.startswith("-"):
            return text


def free_port(host: str = HOST, *, avoid: frozenset[int] = frozenset()) -> int:
    """A TCP port nobody listens on right now (bind to 0, let the kernel pick, release).

    Another process may take it before we bind it again; the broker then fails fast with
    "Address already in use" in its log, and a retry picks a new port.
    """
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            port = int(sock.getsockname()[1])
        if port not in avoid:
            return port
    raise OSError("no free TCP port found after 50 tries")


def port_accepts(port: int, host: str = HOST, timeout_s: float = 0.5) -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def port_from_env(env: Mapping[str, str]) -> int:
    """``$KAFKA_PORT`` as an int (default 9092); ``ValueError`` names the variable when bad."""
    raw = env.get(PORT_ENV, "").strip()
    if not raw:
        return DEFAULT_PORT
    try:
        port = int(raw)
    except ValueError:
        raise ValueError(f"{PORT_ENV} must be a TCP port number, got {raw!r}") from None
    if not 0 < port < 65536:
        raise ValueError(f"{PORT_ENV} must be between 1 and 65535, got {port}")
    return port


SCRAM_MECHANISM = "SCRAM-SHA-512"


@dataclass(frozen=True)
class SaslSsl:
    """An optional third client listener, ``SASL_SSL`` on ``port``: TLS with the run directory's
    certificates (``tls/``, :mod:`.tls`) and SCRAM-SHA-512 logins for ``users`` (name to
    password), created when the storage is formatted (a new run directory)."""

    port: int
    users: tuple[tuple[str, str], ...]

    def scram_arguments(self) -> list[str]:
        """``kafka-storage format`` arguments that create the users."""
        arguments = []
        for name, password in self.users:
            if not (name.isalnum() and password.isalnum()):
                raise ValueError("devbroker SCRAM users and passwords are letters and digits")
            arguments += ["--add-scram", f"{SCRAM_MECHANISM}=[name={name},password={password}]"]
        return arguments


@dataclass(frozen=True)
class BrokerConfig:
    """Where one broker listens and keeps its files. All paths are absolute."""

    port: int
    controller_port: int
    run_dir: Path
    proxied: tuple[int, int] | None = None
    """``(listen port, advertised port)`` of a second plaintext listener, ``PROXIED``, whose
    advertised address is a TCP proxy's (the fault tests): clients that bootstrap from the proxy
    make every later connection through it too, while clients of ``port`` reach the broker
    directly. None: no such listener."""
    sasl_ssl: SaslSsl | None = None
    """The optional SASL_SSL listener (:class:`SaslSsl`)."""

    @property
    def tls_dir(self) -> Path:
        """The SASL_SSL listener's certificates (``ca.pem``, ``server.pem``)."""
        return self.run_dir / "tls"

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def log_dir(self) -> Path:
        """Kafka's ``log.dirs``: the topic data."""
        return self.run_dir / "data"

    @property
    def server_properties(self) -> Path:
        return self.run_dir / "server.properties"

    @property
    def log4j2_properties(self) -> Path:
        return self.run_dir / "log4j2.properties"

    @property
    def broker_log(self) -> Path:
        """The JVM's stdout and stderr."""
        return self.run_dir / "broker.log"

    @property
    def pid_file(self) -> Path:
        return self.run_dir / "broker.pid"


def server_properties(config: BrokerConfig) -> dict[str, str]:
    """The broker's settings, as ordered key/value pairs."""
    listeners = [
        f"PLAINTEXT://{HOST}:{config.port}",
        f"CONTROLLER://{HOST}:{config.controller_port}",
    ]
    advertised = [f"PLAINTEXT://{HOST}:{config.port}"]
    protocols = ["CONTROLLER:PLAINTEXT", "PLAINTEXT:PLAINTEXT"]
    if config.proxied is not None:
        listen, proxy = config.proxied
        listeners.append(f"PROXIED://{HOST}:{listen}")
        advertised.append(f"PROXIED://{HOST}:{proxy}")
        protocols.append("PROXIED:PLAINTEXT")
    secure: dict[str, str] = {}
    if config.sasl_ssl is not None:
        listeners.append(f"SASL_SSL://{HOST}:{config.sasl_ssl.port}")
        advertised.append(f"SASL_SSL://{HOST}:{config.sasl_ssl.port}")
        protocols.append("SASL_SSL:SASL_SSL")
        prefix = "listener.name.sasl_ssl."
        secure = {
            "sasl.enabled.mechanisms": SCRAM_MECHANISM,
            f"{prefix}sasl.enabled.mechanisms": SCRAM_MECHANISM,
            f"{prefix}{SCRAM_MECHANISM.lower()}.sasl.jaas.config": (
                "org.apache.kafka.common.security.scram.ScramLoginModule required;"
            ),
            f"{prefix}ssl.keystore.type": "PEM",
            f"{prefix}ssl.keystore.location": str(config.tls_dir / "server.pem"),
            f"{prefix}ssl.client.auth": "none",
        }
    return secure | {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@{HOST}:{config.controller_port}",
        "listeners": ",".join(listeners),
        "advertised.listeners": ",".join(advertised),
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": ",".join(protocols),
        "log.dirs": str(config.log_dir),
        "auto.create.topics.enable": "false",
        "num.partitions": "1",
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "num.network.threads": "2",
        "num.io.threads": "4",
        "num.recovery.threads.per.data.dir": "1",
        "log.cleaner.dedupe.buffer.size": str(16 * 1024 * 1024),
        "log.cleaner.threads": "1",
    }


def render_properties(settings: Mapping[str, str], header: str = "") -> str:
    """Java properties text, one ``key=value`` a line (values here need no escaping)."""
    lines = [f"# {line}" for line in header.splitlines()]
    for key, value in settings.items():
        if any(ch in value for ch in "\n\\") or any(ch in key for ch in "=: \n"):
            raise ValueError(f"property {key!r} needs escaping, which render_properties omits")
        lines.append(f"{key}={value}")
    return "\n".join(lines) + "\n"


def java_command(
    java: str,
    classpath: str,
    log4j2: Path,
    main: str,
    args: list[str],
    *,
    server: bool,
    extra: Sequence[str] = (),
) -> list[str]:
    """``java`` with the heap, GC and logging flags for the broker (``server``) or a tool."""
    heap = [*HEAP_OPTS, *GC_OPTS] if server else list(TOOL_HEAP_OPTS)
    return [
        java,
        *heap,
        *extra,
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={log4j2}",
        "-cp",
        classpath,
        main,
        *args,
    ]
