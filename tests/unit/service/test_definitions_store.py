"""How the definitions service stores a space: each group's definition under a key of its own.

A command writes only what it changed (the group's new version and the space's document), and
whatever prefix of a save's writes reaches the table, the space reads back whole: as it was before
the command or as it is after it.
"""

from __future__ import annotations

import contextlib
from typing import Any

import orjson
import pytest
from tests.unit.service.bus import Bus

from smartgroups.core.ids import catalog_group_key, catalog_recent_key, space_key, space_prefix
from smartgroups.core.partitioning import partition_for
from smartgroups.service.definitions import RECENT_INPUTS, SpaceState
from smartgroups.service.memory import MemoryTable

SPACE = "acme"
PARTITION = partition_for(space_key(SPACE), 4)
ACME = {"field": "profile.email", "op": "email_domain", "value": ["acme.com"]}
_ids = iter(range(1, 1_000_000))


def command(type_: str, **fields: Any) -> dict[str, Any]:
    return {"id": f"c{next(_ids)}", "type": type_, "space": SPACE, **fields}


def smart(group_id: str) -> dict[str, Any]:
    conditions = {"all": [ACME]}
    return command("group.created", group_id=group_id, name=group_id, kind="smart",
                   conditions=conditions)  # fmt: skip


class Recording(MemoryTable):
    """A MemoryTable that logs its writes, and can fail at the ``fail_at``-th one."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[tuple[str, bytes]] = []
        self.fail_at: int | None = None

    def _write(self, kind: str, key: bytes) -> None:
        if self.fail_at is not None and len(self.writes) == self.fail_at:
            raise OSError("the process died here")
        self.writes.append((kind, key))

    def put(self, partition: int, key: bytes, value: bytes) -> None:
        self._write("put", key)
        super().put(partition, key, value)

    def delete(self, partition: int, key: bytes) -> None:
        self._write("delete", key)
        super().delete(partition, key)


def view(state: SpaceState) -> dict[str, Any]:
    """What a state means (its catalog and bookkeeping), not how it is cached."""
    return {
        "catalog": state.catalog.to_json(),
        "seq": state.seq,
        "created": state.created,
        "seen": state.seen,
        "recent": orjson.loads(orjson.dumps(state.recent)),
        "decided": state.decided,
    }


@pytest.fixture
def bus() -> tuple[Bus, Recording]:
    bus = Bus(partitions=4)
    table = Recording()
    bus.definitions.catalogs = table
    return bus, table


async def test_a_command_writes_the_group_it_changed_and_the_space_document_only(
    bus: tuple[Bus, Recording],
) -> None:
    b, table = bus
    for group_id in ("g1", "g2", "g3"):
        b.event("group-changes", smart(group_id))
    await b.run()
    state = b.definitions.cache[(PARTITION, SPACE)]
    old = state.versions["g2"]
    table.writes.clear()
    b.event("group-changes", command("group.updated", group_id="g2", name="Renamed"))
    await b.run()
    new = state.versions["g2"]
    assert new > old
    assert table.writes == [
        ("put", catalog_group_key(SPACE, "g2", new)),
        ("put", catalog_recent_key(SPACE, new + 1)),  # the command's outputs, for re-sending
        ("put", space_key(SPACE)),
        ("delete", catalog_group_key(SPACE, "g2", old)),
    ]
    stored = [k for k, _ in table.scan(PARTITION, space_prefix(SPACE), limit=100)]
    groups = [catalog_group_key(SPACE, g, v) for g, v in state.versions.items()]
    recent = [catalog_recent_key(SPACE, n) for n in state.numbers if n is not None]
    assert stored == sorted(groups + recent) and len(recent) == 4


async def test_only_the_newest_outputs_are_kept_each_under_its_own_key(
    bus: tuple[Bus, Recording],
) -> None:
    b, table = bus
    b.event("group-changes", smart("g1"))
    for i in range(RECENT_INPUTS + 8):
        b.event("group-changes", command("group.updated", group_id="g1", name=f"n{i}"))
    await b.run()
    state = b.definitions.cache[(PARTITION, SPACE)]
    stored = [k for k, _ in table.scan(PARTITION, space_prefix(SPACE), limit=100)]
    assert len(stored) == 1 + RECENT_INPUTS  # g1's definition, the newest outputs
    read, stale = SpaceState.read(table, PARTITION, SPACE)
    assert stale == [] and view(read) == view(state)
    assert [entry[1] for entry in read.recent] == list(range(9, RECENT_INPUTS + 9))


async def test_the_stored_state_reads_back_equal_after_creates_updates_and_deletes(
    bus: tuple[Bus, Recording],
) -> None:
    b, table = bus
    b.event("group-changes", smart("g1"))
    b.event("group-changes", smart("g2"))
    b.event("group-changes", command("group.updated", group_id="g1", name="One"))
    b.event("group-changes", command("group.deleted", group_id="g2"))
    b.event("group-changes", smart("g3"))
    b.event("group-changes", smart("g2"))  # created again: last in the order
    await b.run()
    state = b.definitions.cache[(PARTITION, SPACE)]
    read, stale = SpaceState.read(table, PARTITION, SPACE)
    assert stale == []
    assert view(read) == view(state)
    assert [g["group_id"] for g in read.catalog.to_json()["groups"]] == ["g1", "g3", "g2"]
    assert read.catalog.groups["g1"].name == "One"
    stored = [k for k, _ in table.scan(PARTITION, space_prefix(SPACE), limit=100)]
    # The deleted group's definition and old versions are gone; the six outputs are kept.
    groups = [catalog_group_key(SPACE, g, v) for g, v in (("g1", 5), ("g2", 10), ("g3", 8))]
    assert stored[:3] == groups and len(stored) == 3 + 6


async def test_the_order_of_the_groups_reads_back_after_an_edit_moves_a_group_last(
    bus: tuple[Bus, Recording],
) -> None:
    b, table = bus
    edited = {**smart("a"), "editable": True}
    for event in (edited, smart("b"), smart("c")):
        b.event("group-changes", event)
    await b.run()
    other = {"field": "profile.email", "op": "email_domain", "value": ["other.org"]}
    edit = command("group.updated", group_id="a", conditions={"all": [other]})
    b.event("group-changes", edit)
    b.event("group-changes", command("group.updated", group_id="b", name="B"))
    await b.run()
    state = b.definitions.cache[(PARTITION, SPACE)]
    order = [g["group_id"] for g in state.catalog.to_json()["groups"]]
    read, _ = SpaceState.read(table, PARTITION, SPACE)
    assert [g["group_id"] for g in read.catalog.to_json()["groups"]] == order
    assert view(read) == view(state)


async def test_a_crash_between_the_writes_of_a_command_leaves_a_whole_state(
    bus: tuple[Bus, Recording],
) -> None:
    b, table = bus
    b.event("group-changes", smart("g1"))
    b.event("group-changes", smart("g2"))
    await b.run()
    before = view(SpaceState.read(table, PARTITION, SPACE)[0])
    rename = command("group.updated", group_id="g1", name="One")
    writes = 4  # the group's new version, the outputs, the space's document, the old version out
    for fail_at in range(writes + 1):
        crashed = Recording()
        for key, value in table.scan(PARTITION, b"", limit=100):
            crashed.put(PARTITION, key, value)
        crashed.writes.clear()
        crashed.fail_at = fail_at if fail_at < writes else None
        again = Bus(partitions=4)
        again.definitions.catalogs = crashed
        again.logs = {k: list(v) for k, v in b.logs.items()}
        again.read = dict(b.read)
        again.event("group-changes", rename)
        with contextlib.suppress(OSError):
            await again.run()
        read, stale = SpaceState.read(crashed, PARTITION, SPACE)
        if fail_at < 3:  # the space's document not written: the command was not applied
            assert view(read) == before, fail_at
            assert read.catalog.groups["g1"].name == "g1"
        else:
            assert read.catalog.groups["g1"].name == "One", fail_at
            assert rename["id"] in orjson.dumps(read.recent).decode()
        # Left behind: the new version before the space's document named it, the old one after.
        new, outputs = catalog_group_key(SPACE, "g1", 5), catalog_recent_key(SPACE, 6)
        strays = {1: [new], 2: [new, outputs], 3: [catalog_group_key(SPACE, "g1", 1)]}
        assert stale == strays.get(fail_at, []), fail_at


async def test_the_definitions_are_read_where_a_crash_left_them_and_strays_deleted(
    bus: tuple[Bus, Recording],
) -> None:
    b, table = bus
    b.event("group-changes", smart("g1"))
    await b.run()
    stray = catalog_group_key(SPACE, "g1", 99)
    table.put(PARTITION, stray, b"{}")  # a version whose save never reached its document
    b.definitions.forget()
    b.event("group-changes", smart("g2"))
    await b.run()
    assert table.get(PARTITION, stray) is None
    assert set(b.definitions.cache[(PARTITION, SPACE)].catalog.groups) == {"g1", "g2"}


async def test_a_space_stored_as_one_document_is_read_and_split_on_its_next_command(
    bus: tuple[Bus, Recording],
) -> None:
    b, _ = bus
    b.event("group-changes", smart("g1"))
    await b.run()
    state = b.definitions.cache[(PARTITION, SPACE)]
    one_document = view(state)  # the groups' documents inline in the catalog
    old = MemoryTable()
    old.put(PARTITION, space_key(SPACE), orjson.dumps(one_document))
    read, _ = SpaceState.read(old, PARTITION, SPACE)
    assert view(read) == view(state)
    b.definitions.catalogs = old
    b.definitions.forget()
    b.event("group-changes", smart("g2"))
    await b.run()
    head = orjson.loads(old.get(PARTITION, space_key(SPACE)) or b"")
    assert list(head["catalog"]["groups"]) == ["g1", "g2"]  # group id -> version, in order
    assert all(isinstance(number, int) for number in head["recent"])
    assert len(old.scan(PARTITION, space_prefix(SPACE), limit=100)) == 2 + 2  # groups, outputs
