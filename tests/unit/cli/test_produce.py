"""``smartgroups produce`` keys every event as the contract says, or sends nothing."""

from __future__ import annotations

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
