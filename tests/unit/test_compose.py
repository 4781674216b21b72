"""docker-compose.yml and deploy/Dockerfile: parsed and checked, no Docker needed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from smartgroups.devbroker import config as devbroker_config

ROOT = Path(__file__).resolve().parents[2]
CONTRACT_VARIABLES = {
    "KAFKA_BOOTSTRAP_SERVERS",
    "SMARTGROUPS_TOPIC_PREFIX",
    "SMARTGROUPS_PARTITIONS",
    "SMARTGROUPS_APP_ID",
    "SMARTGROUPS_DATA_DIR",
    "SMARTGROUPS_WEB_PORT",
}
# apache/kafka: once one broker variable is set, all of these must be (docker/examples/README.md).
KAFKA_REQUIRED = {
    "KAFKA_NODE_ID",
    "KAFKA_PROCESS_ROLES",
    "KAFKA_LISTENERS",
    "KAFKA_ADVERTISED_LISTENERS",
    "KAFKA_CONTROLLER_LISTENER_NAMES",
    "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP",
    "KAFKA_CONTROLLER_QUORUM_VOTERS",
}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(data, dict)
    return data


def env_of(service: dict[str, Any]) -> dict[str, str]:
    """The service's environment as strings (YAML may hold ints)."""
    env = service["environment"]
    assert isinstance(env, dict), "use the mapping form of environment"
    return {key: str(value) for key, value in env.items()}


def listeners(text: str) -> dict[str, str]:
    """``NAME://host:port,...`` as {NAME: "host:port"}."""
    return dict(item.split("://", 1) for item in text.split(","))


def test_services(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {"kafka", "worker"}
    assert compose["services"]["kafka"]["image"] == "apache/kafka:4.1.1"


def test_kafka_is_a_complete_single_node_kraft_broker(compose: dict[str, Any]) -> None:
    env = env_of(compose["services"]["kafka"])
    assert env.keys() >= KAFKA_REQUIRED
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    declared = listeners(env["KAFKA_LISTENERS"])
    advertised = listeners(env["KAFKA_ADVERTISED_LISTENERS"])
    protocols = dict(
        item.split(":") for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")
    )
    assert set(declared) <= set(protocols)
    assert advertised["PLAINTEXT"] == "localhost:9092"
    internal = [name for name, address in advertised.items() if address == "kafka:19092"]
    assert internal, "containers need a listener advertised as kafka:19092"
    assert declared[internal[0]] == ":19092"
    assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] not in advertised
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"].endswith(declared["CONTROLLER"])
    assert "9092:9092" in compose["services"]["kafka"]["ports"]


def test_kafka_settings_match_the_local_jar_broker(compose: dict[str, Any], tmp_path: Path) -> None:
    env = env_of(compose["services"]["kafka"])
    local = devbroker_config.server_properties(devbroker_config.BrokerConfig(1, 2, tmp_path))
    # apache/kafka env rule: KAFKA_ prefix, "." -> "_", "_" -> "__", "-" -> "___".
    shared = {
        key: value
        for key, value in local.items()
        if "KAFKA_" + key.replace("_", "__").replace(".", "_").upper() in env
        and "listener" not in key
        and "voters" not in key
    }
    assert len(shared) >= 10
    for key, value in shared.items():
        name = "KAFKA_" + key.replace("_", "__").replace(".", "_").upper()
        assert env[name] == value, f"{name}={env[name]} but the jar broker has {key}={value}"


def test_worker_gets_the_contract_variables_and_a_data_volume(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker"]
    env = env_of(worker)
    assert env.keys() >= CONTRACT_VARIABLES
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:19092"
    assert int(env["SMARTGROUPS_PARTITIONS"]) >= 1
    assert int(env["SMARTGROUPS_WEB_PORT"]) == 6066
    mounts = {m.split(":")[1]: m.split(":")[0] for m in worker["volumes"]}
    volume = mounts[env["SMARTGROUPS_DATA_DIR"]]
    assert volume in compose["volumes"], "the data dir must be a named volume"
    assert worker["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert (ROOT / worker["build"]["context"] / worker["build"]["dockerfile"]).is_file()


def test_dockerfile_runs_the_worker_on_python_311() -> None:
    lines = [
        line.strip()
        for line in (ROOT / "deploy" / "Dockerfile").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "FROM python:3.11-slim"
    assert "COPY pyproject.toml setup.py README.md ./" in lines  # setup.py builds the extension
    assert "&& pip install . \\" in lines
    assert any("apt-get install" in line and "gcc" in line for line in lines)
    assert lines[-1] == 'CMD ["smartgroups", "worker"]'
    assert "USER smartgroups" in lines
