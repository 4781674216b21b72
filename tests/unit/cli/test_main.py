"""``smartgroups``: an expected failure is one line, ``smartgroups: <cause> (<fix>)``, exit 2;
a bug keeps its traceback."""

from __future__ import annotations

import argparse

import pytest
from aiokafka import errors

from smartgroups.cli.main import build_parser, expected_error, main
from smartgroups.errors import ConfigError, KafkaUnreachable, UsageError


def _args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["tail", *argv])


@pytest.mark.parametrize(
    ("error", "line"),
    [
        (FileNotFoundError(2, "No such file or directory", "/nope.jsonl"), "/nope.jsonl: no such"),
        (PermissionError(13, "Permission denied", "/root/x"), "/root/x: permission denied"),
        (IsADirectoryError(21, "Is a directory", "/tmp"), "/tmp: is a directory (give a file)"),
    ],
)
def test_a_file_that_cannot_be_read_is_a_usage_error(error: OSError, line: str) -> None:
    translated = expected_error(error, _args())
    assert isinstance(translated, UsageError) and translated.exit_status == 2
    assert str(translated).startswith(line)


def test_an_aiokafka_error_escaping_a_command_is_translated_with_the_address() -> None:
    translated = expected_error(
        errors.KafkaConnectionError("Unable to bootstrap"),
        _args("--bootstrap-servers", "k1:9093"),
    )
    assert isinstance(translated, KafkaUnreachable)
    assert str(translated).startswith("cannot reach Kafka at k1:9093: ")


def test_bugs_are_not_expected() -> None:
    assert expected_error(ZeroDivisionError(), _args()) is None
    assert expected_error(ConnectionResetError(), _args()) is None  # no file, not from aiokafka


def test_the_worker_checks_the_broker_before_anything_else(
    capsys: pytest.CaptureFixture[str], tmp_path
) -> None:  # type: ignore[no-untyped-def]
    status = main(
        ["worker", "--bootstrap-servers", "127.0.0.1:1", "--data-dir", str(tmp_path / "d")]
    )
    assert status == 2
    err = capsys.readouterr().err
    assert err.startswith("smartgroups: cannot reach Kafka at 127.0.0.1:1: connection refused")
    assert err.count("\n") == 1
    assert not (tmp_path / "d").exists()


def test_bad_settings_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tail", "--partitions", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("smartgroups: invalid configuration: --partitions: ")
    assert err.endswith("(correct the flag or variable named)\n")
    assert ConfigError.exit_status == 2


def test_help_says_the_password_is_environment_only(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("worker", "produce", "tail"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert "KAFKA_SASL_PASSWORD only: a flag would show in `ps`" in text
        for flag in ("--ssl-cafile", "--ssl-certfile", "--ssl-keyfile", "--sasl-username"):
            assert flag in text
        assert "--security-protocol {PLAINTEXT,SSL,SASL_PLAINTEXT,SASL_SSL}" in text
