"""``smartgroups status`` without a broker: where it finds the workers, and what it draws."""

from __future__ import annotations

from rich.console import Console

from smartgroups.cli import status


def test_the_worker_url_comes_from_fausts_group_metadata() -> None:
    metadata = (
        b'\x00\x04\x00\x00\x00\x01\x00\x0fp.group-changes\x00\x00\x00\x50{"assignment":'
        b'{"actives":{},"standbys":{}},"url":"http://127.0.0.1:6066","topic_groups":{}}'
    )
    assert status.metadata_url(metadata) == "http://127.0.0.1:6066"
    assert status.metadata_url(b"\x00\x00no json") is None
    assert status.metadata_url(b"{not json") is None


def draw(now: status.Snapshot, before: status.Snapshot | None = None) -> str:
    console = Console(record=True, width=140)
    console.print(status.render(now, before))
    return console.export_text()


def test_workers_lag_and_backfills_with_time_left() -> None:
    worker = status.Worker(
        "http://127.0.0.1:6066",
        reachable=True,
        owned={("p.member-changes", 0), ("p.group-changes", 0)},
        backfills={0: (1, 300, 1000)},
    )
    gone = status.Worker("http://127.0.0.1:7077")
    lag = [("p.member-changes", 0, 90, 100), ("p.group-changes", 0, None, 4)]
    before = status.Snapshot(
        10.0, {}, lag, [status.Worker(worker.url, True, set(), {0: (1, 100, 1000)})]
    )
    now = status.Snapshot(12.0, {"p.sg": 2, "p.sg-members": 1}, lag, [worker, gone])
    text = draw(now, before)
    assert "p.sg: 2 consumer(s), p.sg-members: 1 consumer(s)" in text
    assert "http://127.0.0.1:7077" in text and "unreachable" in text
    rows = [line.split() for line in text.splitlines()]
    assert ["p.member-changes", "0", "90", "100", "10", "http://127.0.0.1:6066"] in [
        [c for c in r if c not in "│┃"] for r in rows
    ]
    assert "300/1000" in text
    assert "7 s" in text  # 700 members left at 100 per second
    assert "-" in draw(now)  # one look: no time left


def test_nothing_running() -> None:
    text = draw(status.Snapshot(0.0, {"p.sg": 0, "p.sg-members": 0}, [], []))
    assert "(no worker in the group)" in text and "backfills in progress: none" in text
