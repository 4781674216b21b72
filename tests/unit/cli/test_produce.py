"""``smartgroups produce`` keys every event as the contract says, or sends nothing."""

from __future__ import annotations

import orjson
import pytest

from smartgroups.cli.main import main
from smartgroups.cli.produce import ProduceError, read_events


def test_member_topics_are_keyed_by_space_and_member() -> None:
    text = (
        '{"id": "1", "type": "member.upserted", "space": "acme", "member_id": "m42", '
        '"profile": {}}\n'
        "\n"
        '{"id": "2", "type": "property.set", "space": "acme", "member_id": "m7", '
        '"property_id": "p", "value": 1}\n'
    )
    records = read_events("member-changes", text)
    assert [key for key, _ in records] == [b"acme:m42", b"acme:m7"]


def test_group_changes_are_keyed_by_space() -> None:
    records = read_events("group-changes", '{"id": "c", "type": "group.deleted", "space": "acme"}')
    assert records[0][0] == b"acme"


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("{not json", "line 2: not valid JSON"),
        ("[1, 2]", "line 2: not a JSON object"),
        ('{"id": "x", "type": "member.deleted"}', "line 2: 'space' is required"),
        ('{"id": "x", "type": "member.deleted", "space": "a"}', "line 2: 'member_id' is required"),
    ],
)
def test_a_bad_line_stops_everything_and_names_the_line(line: str, problem: str) -> None:
    good = '{"id": "1", "type": "member.deleted", "space": "a", "member_id": "m"}'
    with pytest.raises(ProduceError, match=problem):
        read_events("member-changes", f"{good}\n{line}\n")


def test_the_command_exits_2_before_sending(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "1"}\n')
    # An unreachable broker proves nothing was attempted: the file is rejected first.
    status = main(["produce", "member-changes", str(bad), "--bootstrap-servers", "127.0.0.1:1"])
    assert status == 2
    assert "line 1" in capsys.readouterr().err


def test_relative_instants_are_resolved_before_encoding() -> None:
    from datetime import UTC, datetime

    now = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)
    text = (
        '{"id": "1", "type": "member.upserted", "space": "acme", "member_id": "m1", '
        '"at": "now", "profile": {"last_active_at": "now-10d", "title": "now-10d"}}\n'
    )
    [(key, value)] = read_events("member-changes", text, now)
    assert key == b"acme:m1"
    assert orjson.loads(value) == {
        "id": "1",
        "type": "member.upserted",
        "space": "acme",
        "member_id": "m1",
        "at": "2027-03-01T12:00:00Z",
        "profile": {"last_active_at": "2027-02-19T12:00:00Z", "title": "now-10d"},
    }


def test_a_missing_file_is_one_line_and_exit_2(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    missing = tmp_path / "nope.jsonl"
    status = main(["produce", "member-changes", str(missing), "--bootstrap-servers", "127.0.0.1:1"])
    assert status == 2
    assert capsys.readouterr().err == f"smartgroups: {missing}: no such file (check the path)\n"


def test_a_file_that_is_not_utf8_names_the_line(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    latin = tmp_path / "latin1.jsonl"
    latin.write_bytes(b'{"a": 1}\n{"name": "Ren\xe9"}\n')
    status = main(["produce", "member-changes", str(latin), "--bootstrap-servers", "127.0.0.1:1"])
    assert status == 2
    err = capsys.readouterr().err
    assert err == f"smartgroups: {latin}: line 2 is not UTF-8 (save the file as UTF-8)\n"
