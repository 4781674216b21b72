"""Configuration: flags over environment over defaults; secrets never shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from smartgroups.errors import ConfigError
from smartgroups.settings import Settings


def test_defaults_are_the_contracts() -> None:
    s = Settings.from_env({})
    assert s.bootstrap_servers == "127.0.0.1:9092"
    assert (s.topic_prefix, s.partitions, s.app_id) == ("", 8, "smartgroups")
    assert (s.data_dir, s.web_port) == (Path("./var/data"), 6066)


def test_environment_then_flags() -> None:
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": "k1:9092,k2:9092",
        "SMARTGROUPS_TOPIC_PREFIX": "staging.",
        "SMARTGROUPS_PARTITIONS": "12",
        "SMARTGROUPS_APP_ID": "sg-eu",
        "SMARTGROUPS_DATA_DIR": "/data",
        "SMARTGROUPS_WEB_PORT": "7000",
    }
    s = Settings.from_env(env, partitions=None, app_id="override")
    assert s.bootstrap_servers == "k1:9092,k2:9092"
    assert s.topic("membership-changes") == "staging.membership-changes"
    assert (s.partitions, s.app_id, s.data_dir, s.web_port) == (12, "override", Path("/data"), 7000)


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"SMARTGROUPS_PARTITIONS": "zero"}, "SMARTGROUPS_PARTITIONS"),
        ({"SMARTGROUPS_PARTITIONS": "0"}, "SMARTGROUPS_PARTITIONS"),
        ({"SMARTGROUPS_TOPIC_PREFIX": "bad prefix"}, "SMARTGROUPS_TOPIC_PREFIX"),
        ({"KAFKA_BOOTSTRAP_SERVERS": "user:pw@host:9092"}, "KAFKA_BOOTSTRAP_SERVERS"),
        ({"KAFKA_SECURITY_PROTOCOL": "TLS"}, "KAFKA_SECURITY_PROTOCOL"),
    ],
)
def test_bad_settings_name_the_variable(env: dict[str, str], names: str) -> None:
    with pytest.raises(ConfigError, match=names):
        Settings.from_env(env)


def test_credentials_reach_the_client_but_never_a_log_line() -> None:
    env = {
        "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "KAFKA_SASL_USERNAME": "svc",
        "KAFKA_SASL_PASSWORD": "hunter2-very-secret",
    }
    s = Settings.from_env(env)
    options = s.kafka_client_options()
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["sasl_plain_password"] == "hunter2-very-secret"
    for shown in (repr(s), str(s), s.model_dump_json()):
        assert "hunter2" not in shown
    with pytest.raises(ConfigError) as err:
        Settings.from_env({**env, "SMARTGROUPS_PARTITIONS": "x"})
    assert "hunter2" not in str(err.value)


def test_plaintext_sends_no_credentials() -> None:
    options = Settings.from_env({"KAFKA_SASL_PASSWORD": "x"}).kafka_client_options()
    assert "sasl_plain_password" not in options and options["security_protocol"] == "PLAINTEXT"
