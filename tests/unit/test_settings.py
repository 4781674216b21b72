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


def test_a_bad_flag_is_named_as_the_flag() -> None:
    with pytest.raises(ConfigError, match="--partitions: "):
        Settings.from_env({"SMARTGROUPS_PARTITIONS": "4"}, partitions=0)


@pytest.mark.parametrize("name", ["ssl_cafile", "ssl_certfile", "ssl_keyfile"])
def test_a_missing_tls_file_names_the_flag_or_the_variable(name: str, tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    flag, variable = "--" + name.replace("_", "-"), f"KAFKA_{name.upper()}"
    with pytest.raises(ConfigError, match=f"^{flag}: no such file {missing} "):
        Settings.from_env({}, **{name: str(missing)})
    with pytest.raises(ConfigError, match=f"^{variable}: no such file {missing} "):
        Settings.from_env({variable: str(missing)})


def test_tls_files_that_do_not_load_are_a_config_error(tmp_path: Path) -> None:
    junk = tmp_path / "ca.pem"
    junk.write_text("not a certificate\n")
    with pytest.raises(ConfigError, match=r"the TLS files do not load: .*\(check --ssl-cafile"):
        Settings.from_env({}, security_protocol="SSL", ssl_cafile=str(junk))
    # Not loaded while TLS is off: the file exists, so it is accepted as given.
    assert Settings.from_env({}, ssl_cafile=str(junk)).ssl_cafile == junk


def test_a_key_needs_its_certificate(tmp_path: Path) -> None:
    key = tmp_path / "key.pem"
    key.write_text("")
    with pytest.raises(ConfigError, match="--ssl-keyfile is set without a certificate"):
        Settings.from_env({}, ssl_keyfile=str(key))


def test_sasl_needs_a_user_and_a_password_from_the_environment() -> None:
    with pytest.raises(ConfigError, match="needs a SASL user"):
        Settings.from_env({"KAFKA_SASL_PASSWORD": "pw"}, security_protocol="SASL_PLAINTEXT")
    with pytest.raises(ConfigError, match=r"needs a SASL password \(set KAFKA_SASL_PASSWORD"):
        Settings.from_env({}, security_protocol="SASL_SSL", sasl_username="svc")


def test_tls_flags_reach_the_client(tmp_path: Path) -> None:
    from tests.unit.cli.test_connect import CERT, KEY

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_text(CERT)
    key.write_text(KEY)
    s = Settings.from_env(
        {"KAFKA_SSL_CAFILE": str(cert)},
        security_protocol="SSL",
        ssl_certfile=str(cert),
        ssl_keyfile=str(key),
    )
    context = s.kafka_client_options()["ssl_context"]
    assert context.cert_store_stats()["x509_ca"] == 1  # our CA, loaded from the variable
    assert (s.ssl_certfile, s.ssl_keyfile) == (cert, key)
