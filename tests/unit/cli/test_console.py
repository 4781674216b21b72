"""What ``smartgroups worker`` prints: the banner, and which log records reach the terminal."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from smartgroups import __version__
from smartgroups.cli.console import FRAMEWORKS, banner, configure_logging
from smartgroups.cli.main import build_parser
from smartgroups.settings import Settings


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    names = (*FRAMEWORKS, "faust.tables.recovery")
    levels = {name: logging.getLogger(name).level for name in names}
    yield
    root.handlers[:], root.level = saved
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def emit_all(level: str) -> str:
    stream = io.StringIO()
    configure_logging(level, stream)
    logging.getLogger("smartgroups.worker").debug("our debug")
    logging.getLogger("smartgroups.demo").info("our info")
    logging.getLogger("smartgroups.edge").warning("our warning")
    logging.getLogger("faust.transport.drivers.aiokafka").info("[^--Producer]: Starting...")
    logging.getLogger("aiokafka.consumer.group_coordinator").info("Joined group")
    logging.getLogger("mode.timers").info("Timer woke up too late")
    logging.getLogger("aiokafka.cluster").warning("framework warning")
    logging.getLogger("faust.tables.recovery").info("[^---Recovery]: Worker ready")
    logging.getLogger("smartgroups.worker.app").info("[^-App]: Wait for streams...")
    return stream.getvalue()


def test_info_shows_ours_the_framework_s_warnings_and_worker_ready() -> None:
    out = emit_all("info")
    assert "our info" in out and "our warning" in out and "framework warning" in out
    assert "our debug" not in out
    assert "Starting..." not in out and "Joined group" not in out and "woke up" not in out
    assert "Wait for streams" not in out  # faust's lifecycle, though our subclass logs it
    assert "INFO smartgroups.worker: Worker ready\n" in out
    assert "\x1b" not in out


def test_debug_adds_the_framework_s_info_chatter() -> None:
    out = emit_all("debug")
    assert "our debug" in out and "Starting..." in out and "Joined group" in out
    assert "Wait for streams" in out
    assert "Worker ready" in out


def test_warning_shows_only_warnings() -> None:
    out = emit_all("warning")
    assert "our warning" in out and "framework warning" in out
    assert "our info" not in out and "Worker ready" not in out and "Starting" not in out


def test_a_benign_framework_error_shows_only_at_debug_and_others_stay_errors() -> None:
    coordinator = logging.getLogger("aiokafka.consumer.group_coordinator")
    for level, shown in (("info", False), ("debug", True)):
        stream = io.StringIO()
        configure_logging(level, stream)
        coordinator.error(
            "Group Coordinator Request failed: %s",
            "[Error 15] GroupCoordinatorNotAvailableError",
        )
        coordinator.error("Group Coordinator Request failed: %s", "[Error 30] Authorization")
        out = stream.getvalue()
        assert ("INFO aiokafka.consumer.group_coordinator" in out) is shown
        assert "ERROR aiokafka.consumer.group_coordinator" in out and "Authorization" in out
        assert out.count("ERROR") == 1  # the authorization failure only


def test_a_retried_not_leader_on_the_first_offset_lookup_is_benign_too() -> None:
    fetcher = logging.getLogger("aiokafka.consumer.fetcher")
    stream = io.StringIO()
    configure_logging("info", stream)
    fetcher.error("Failed fetch offsets from %s: %s", 1, "[Error 6] NotLeaderForPartitionError: x")
    fetcher.error("Failed fetch offsets from %s: %s", 1, "[Error 29] TopicAuthorizationFailed")
    out = stream.getvalue()
    assert "NotLeaderForPartition" not in out  # at info: not shown at all
    assert out.count("ERROR aiokafka.consumer.fetcher") == 1 and "Authorization" in out


def test_log_level_flag_and_its_alias() -> None:
    parser = build_parser()
    assert parser.parse_args(["worker", "--loglevel", "info"]).log_level == "info"
    assert parser.parse_args(["worker", "--log-level", "DEBUG"]).log_level == "debug"
    assert parser.parse_args(["worker"]).log_level == "info"
    with pytest.raises(SystemExit) as exit_:
        parser.parse_args(["worker", "--log-level", "loud"])
    assert exit_.value.code == 2


def test_banner_names_what_a_newcomer_needs() -> None:
    settings = Settings(
        bootstrap_servers="127.0.0.1:19192", topic_prefix="t.", partitions=4, web_port=6070
    )
    text = banner(settings, demo=True)
    assert text.splitlines()[0] == f"smartgroups {__version__} worker --demo"
    for part in ("127.0.0.1:19192", "topic prefix t.", "partitions  4", "var/data", ":6070/"):
        assert part in text
    assert "\x1b" not in text and len(text.splitlines()) <= 8


def test_json_format_writes_one_object_per_line_with_the_record_coordinates() -> None:
    import orjson

    stream = io.StringIO()
    configure_logging("info", stream, as_json=True)
    edge = logging.getLogger("smartgroups.edge")
    edge.warning(
        "dead-lettered %s: %s", "t[3]@7", "decode_error", extra={"partition": 3, "offset": 7}
    )
    logging.getLogger("smartgroups.worker").debug("not shown at info")
    logging.getLogger("faust.tables.recovery").info("[^---Recovery]: Worker ready")
    try:
        raise ValueError("boom\nsecond line")
    except ValueError:
        edge.exception("failed on %s", "t[0]@1")
    lines = stream.getvalue().splitlines()
    records = [orjson.loads(line) for line in lines]
    assert len(records) == 3
    first = records[0]
    assert set(first) == {"time", "level", "logger", "message", "partition", "offset"}
    assert first["level"] == "WARNING" and first["logger"] == "smartgroups.edge"
    assert first["message"] == "dead-lettered t[3]@7: decode_error"
    assert (first["partition"], first["offset"]) == (3, 7)
    assert first["time"].endswith("Z") and first["time"][10] == "T"
    assert records[1]["logger"] == "smartgroups.worker" and records[1]["message"] == "Worker ready"
    assert "ValueError: boom" in records[2]["exception"]


def test_log_format_comes_from_the_flag_or_the_variable() -> None:
    parser = build_parser()
    args = parser.parse_args(["worker", "--log-format", "json"])
    assert args.log_format == "json"
    assert Settings.from_env({"SMARTGROUPS_LOG_FORMAT": "json"}).log_format == "json"
    assert Settings.from_env({}).log_format == "text"
