"""A local single-node Apache Kafka 4.1.1 broker (KRaft) for development and tests, no Docker.

The jars come from Maven Central on first use (:mod:`.fetch`, cached outside the repository);
the broker is a plain ``java`` process on 127.0.0.1 (:mod:`.process`). ``make kafka-up`` /
``make kafka-down`` run ``python -m smartgroups.devbroker up|down``; the test suite's
``kafka_bootstrap`` fixture calls :func:`ensure_broker` on a free port.

Environment: ``KAFKA_PORT`` (default 9092), ``SMARTGROUPS_KAFKA_DIR`` (config, data, log, pid
file; default ``./var/kafka``), ``SMARTGROUPS_KAFKA_LIBS`` (jar cache; default
``~/.cache/smartgroups/kafka-4.1.1``), ``JAVA_HOME``. Needs a JDK 17+ and, once, Maven.

Errors are :class:`smartgroups.errors.BrokerError`; each message says what to do next.
"""

from smartgroups.devbroker.config import DEFAULT_PORT, free_port, new_cluster_id
from smartgroups.devbroker.fetch import KAFKA_VERSION, default_libs_dir, ensure_jars
from smartgroups.devbroker.pidfile import PidRecord
from smartgroups.devbroker.process import (
    Broker,
    broker_status,
    default_run_dir,
    ensure_broker,
    stop_broker,
)
from smartgroups.errors import BrokerError

__all__ = [
    "DEFAULT_PORT",
    "KAFKA_VERSION",
    "Broker",
    "BrokerError",
    "PidRecord",
    "broker_status",
    "default_libs_dir",
    "default_run_dir",
    "ensure_broker",
    "ensure_jars",
    "free_port",
    "new_cluster_id",
    "stop_broker",
]
