"""``smartgroups tail`` prints each output topic's records as one JSON line, losing nothing."""

from __future__ import annotations

import base64

import orjson
import pytest

from smartgroups.cli.main import main
from smartgroups.cli.tail import format_record

ADDED = {"id": "a:vip:m1:1", "type": "member.added", "space": "a", "group_id": "vip"}


def test_changes_and_results_print_the_event_filtered_by_group() -> None:
    value = orjson.dumps(ADDED)
    assert orjson.loads(format_record("membership-changes", b"a:m1", value) or "") == ADDED
    assert format_record("membership-changes", b"a:m1", value, group="vip") is not None
    assert format_record("membership-changes", b"a:m1", value, group="other") is None
    result = orjson.dumps({"type": "command.rejected", "space": "a", "code": "invalid_condition"})
    assert format_record("group-change-results", b"a", result, group="vip") is None
    assert orjson.loads(format_record("group-change-results", b"a", result) or "")["code"] == (
        "invalid_condition"
    )


def test_state_prints_key_and_value_and_a_tombstone_as_null() -> None:
    state = {"space": "a", "group_id": "vip", "member_id": "m1", "version": 1, "since": "t"}
    line = format_record("membership-state", b"a:vip:m1", orjson.dumps(state))
    assert orjson.loads(line or "") == {"key": "a:vip:m1", "value": state}
    tombstone = format_record("membership-state", b"a:vip:m1", None, group="vip")
    assert tombstone == '{"key":"a:vip:m1","value":null}'
    assert format_record("membership-state", b"a:other:m1", None, group="vip") is None


def test_dead_letters_print_key_headers_and_value_as_text() -> None:
    headers = [
        ("error.code", b"decode_error"),
        ("error.message", b"not JSON"),
        ("source.topic", b"p.member-changes"),
        ("source.partition", b"3"),
        ("source.offset", b"17"),
    ]
    line = format_record("dead-letters", b"a:m1", b"{oops", headers)
    assert orjson.loads(line or "") == {
        "key": "a:m1",
        "headers": {
            "error.code": "decode_error",
            "error.message": "not JSON",
            "source.topic": "p.member-changes",
            "source.partition": "3",
            "source.offset": "17",
        },
        "value": "{oops",
    }


def test_bytes_that_are_not_utf8_are_shown_as_base64_never_garbled() -> None:
    raw = b"\xff\xfe\x00binary"
    line = orjson.loads(format_record("dead-letters", None, raw, []) or "")
    assert line == {"key": None, "headers": {}, "value_base64": base64.b64encode(raw).decode()}
    assert base64.b64decode(line["value_base64"]) == raw


def test_a_foreign_record_on_an_output_topic_is_shown_not_dropped() -> None:
    for topic in ("membership-changes", "group-change-results", "membership-state"):
        line = format_record(topic, b"k", b"not json", group="vip")
        assert orjson.loads(line or "") == {"key": "k", "value": "not json"}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--topic", "dead-letters", "--group", "g"],
            "smartgroups: --group does not apply to dead-letters (their values are raw inputs;"
            " drop --group)\n",
        ),
        (
            ["--topic", "segment-state", "--group", "g"],
            "smartgroups: --group does not apply to segment-state (its tombstones name no group;"
            " use --topic segment-changes --group G)\n",
        ),
        (["--timeout", "0"], "smartgroups: --timeout 0: must be more than 0 seconds\n"),
    ],
)
def test_arguments_that_cannot_work_are_one_line_before_connecting(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["tail", "--bootstrap-servers", "127.0.0.1:1", *argv]) == 2
    assert capsys.readouterr().err == message


def test_an_unreachable_broker_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tail", "--bootstrap-servers", "127.0.0.1:1", "--timeout", "5"]) == 2
    err = capsys.readouterr().err
    assert err == (
        "smartgroups: cannot reach Kafka at 127.0.0.1:1: connection refused (is a broker running"
        " there? set KAFKA_BOOTSTRAP_SERVERS or --bootstrap-servers)\n"
    )


def test_segment_changes_filter_by_the_segment_entered_or_left() -> None:
    event = {"type": "segment.changed", "segment": "vip", "previous": None, "set_id": "s"}
    raw = orjson.dumps(event)
    assert orjson.loads(format_record("segment-changes", b"a:m1", raw, group="vip") or "") == event
    left = orjson.dumps({**event, "segment": None, "previous": "vip"})
    assert format_record("segment-changes", b"a:m1", left, group="vip") is not None
    assert format_record("segment-changes", b"a:m1", raw, group="other") is None
    tombstone = format_record("segment-state", b"a:s:m1", None)
    assert orjson.loads(tombstone or "") == {"key": "a:s:m1", "value": None}
