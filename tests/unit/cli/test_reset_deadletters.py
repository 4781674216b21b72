"""``reset`` and ``dead-letters`` without a broker: arguments, which group moves what, the
table, the lines printed (the integration tests run them on the real broker)."""

from __future__ import annotations

from types import SimpleNamespace

import orjson
import pytest
from aiokafka import TopicPartition

from smartgroups.cli import deadletters, reset
from smartgroups.errors import UsageError
from smartgroups.settings import Settings
from smartgroups.worker.topology import Topology

TOPOLOGY = Topology.from_settings(Settings(topic_prefix="p.", app_id="sg"))


def test_topics_are_input_topics_only() -> None:
    assert reset.parse_topics(None) == (
        "member-changes", "property-changes", "form-answers", "group-changes",
    )  # fmt: skip
    assert reset.parse_topics("group-changes, member-changes") == (
        "group-changes",
        "member-changes",
    )
    for bad in ("membership-changes", "", ","):
        with pytest.raises(UsageError, match="is not an input topic"):
            reset.parse_topics(bad)


def test_datetime_is_rfc3339() -> None:
    assert reset.parse_datetime("2026-12-01T00:00:01Z") == 1_796_083_201_000
    with pytest.raises(UsageError, match="not an RFC 3339 timestamp"):
        reset.parse_datetime("yesterday")


def test_each_group_moves_the_topics_it_reads() -> None:
    plan = reset.group_topics(TOPOLOGY, ("member-changes", "group-changes"))
    assert plan == {
        "p.sg": ["p.group-changes", "p.member-changes"],
        "p.sg-members": ["p.member-changes"],
    }
    gc, mc = TopicPartition("p.group-changes", 0), TopicPartition("p.member-changes", 0)
    # The batch path: the member loop committed on the member topic, faust did not.
    batch = reset.readers(TOPOLOGY, {"p.sg": {gc: 5, mc: None}, "p.sg-members": {mc: 9}})
    assert batch == {"p.group-changes": {"p.sg"}, "p.member-changes": {"p.sg-members"}}
    # The agent path: faust's group reads both.
    agent = reset.readers(TOPOLOGY, {"p.sg": {gc: 5, mc: 3}, "p.sg-members": {mc: None}})
    assert agent == {"p.group-changes": {"p.sg"}, "p.member-changes": {"p.sg"}}
    # Nothing committed yet: the default path's groups.
    fresh = reset.readers(TOPOLOGY, {"p.sg": {gc: None, mc: None}, "p.sg-members": {mc: None}})
    assert fresh == {"p.group-changes": {"p.sg"}, "p.member-changes": {"p.sg-members"}}


def test_the_dry_run_table() -> None:
    moves = [
        reset.Move("p.sg", "p.group-changes", 0, 12, 0),
        reset.Move("p.sg-members", "p.member-changes", 3, None, 0),
        reset.Move("p.sg-members", "p.member-changes", 10, 5, 8),
    ]
    assert reset.table(moves).splitlines() == [
        "group         topic             partition  current  target  reread",
        "p.sg          p.group-changes           0       12       0      12",
        "p.sg-members  p.member-changes          3        -       0       0",
        "p.sg-members  p.member-changes         10        5       8      -3",
    ]


def letter(**fields: object) -> deadletters.Letter:
    headers = [
        ("error.code", b"decode_error"),
        ("error.message", b"not JSON"),
        ("source.topic", b"p.member-changes"),
        ("source.partition", b"2"),
        ("source.offset", b"41"),
    ]
    message = SimpleNamespace(
        topic="p.dead-letters", partition=1, offset=7, timestamp=1_796_083_201_000,
        key=b"s:m1", value=b"\xffsecret", headers=headers,
    )  # fmt: skip
    message.__dict__.update(fields)
    return deadletters.Letter.from_message(message)


def test_a_shown_dead_letter_has_no_value_unless_asked() -> None:
    shown = orjson.loads(deadletters.show_line(letter(), values=False))
    assert shown == {
        "dead_letter": "p.dead-letters[1]@7",
        "at": "2026-12-01T00:00:01.000Z",
        "key": "s:m1",
        "code": "decode_error",
        "message": "not JSON",
        "source": {"topic": "p.member-changes", "partition": 2, "offset": 41},
    }
    with_value = orjson.loads(deadletters.show_line(letter(), values=True))
    assert with_value["value_base64"] == "/3NlY3JldA=="  # not UTF-8: the exact bytes


def test_filters_and_summary() -> None:
    one = letter()
    assert deadletters.Filters(None, None, None).select(one)
    assert not deadletters.Filters("schema_error", None, None).select(one)
    assert not deadletters.Filters(None, "p.form-answers", None).select(one)
    assert not deadletters.Filters(None, None, one.timestamp + 1).select(one)
    assert deadletters.summary([one, one]).splitlines() == [
        "code          source topic      count",
        "decode_error  p.member-changes      2",
        "2 dead letters",
    ]


def test_redrive_marks_are_one_consumer_group_per_code() -> None:
    assert deadletters.redrive_group("p.sg", "processing_error") == "p.sg-redrive-processing_error"
    assert "processing_error" in deadletters.CODES
