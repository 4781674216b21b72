"""The segment set listing over the in-memory services: who is in each segment, in listing
order, paged without skip or repeat over any split of the partitions, and its errors."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import pytest
from tests.unit.service.bus import Bus
from tests.unit.service.test_segments_and_edits import ACME, BETA, command, smart, upsert

from smartgroups.errors import QueryError
from smartgroups.service.query import Filters, QueryService, decode_cursor, merge

PARTITIONS = 4


@pytest.fixture
def bus() -> Bus:
    return Bus(partitions=PARTITIONS, scan_chunk=3)


def service(bus: Bus) -> QueryService:
    return QueryService(
        members=bus.members_table,
        groups=bus.groups_table,
        index_table=bus.index_table,
        clock=bus.clock,
        guard=contextlib.nullcontext,
        check=lambda partition: None,
        spaces=bus.members._space,
        slice_size=2,  # several slices per partition
    )


async def page(
    query: QueryService,
    segment: str | None,
    *,
    limit: int = 50,
    cursor: str | None = None,
    filters: Filters | None = None,
    splits: Sequence[Sequence[int]] = (range(PARTITIONS),),
) -> dict[str, Any]:
    """One page, merged from the partials of ``splits`` (as several workers would answer)."""
    after = decode_cursor(cursor)
    parts = [
        await query.segment_listing(
            "acme", "plan", segment, filters or Filters(), after, limit, list(split)
        )
        for split in splits
    ]
    return merge(parts, limit)


async def walk(query: QueryService, segment: str | None, limit: int) -> tuple[list[str], int]:
    """Every member of the segment, page by page over two halves of the partitions."""
    seen: list[str] = []
    cursor = None
    totals = set()
    while True:
        got = await page(query, segment, limit=limit, cursor=cursor, splits=([0, 2], [1, 3]))
        seen += [m["member_id"] for m in got["members"]]
        totals.add(got["total"])
        cursor = got["next_cursor"]
        if cursor is None:
            [total] = totals
            return seen, total


async def population(bus: Bus) -> None:
    names = {"a": "Ann", "b": "Bob", "c": "Cleo", "d": "Dan", "e": "Émile"}
    for i in range(1, 6):
        for prefix, domain in (("a", "acme.com"), ("b", "beta.com"), ("x", "other.org")):
            member_id = f"{prefix}{i}"
            first = names["abcde"[i - 1]]
            profile = {"first_name": first, "last_name": f"{prefix.upper()}{i}"}
            profile |= {"email": f"{member_id}@{domain}", "status": "accepted"}
            bus.event("member-changes", upsert(member_id, **profile))
    bus.event("group-changes", smart("acme", ACME))
    bus.event("group-changes", smart("beta", {"any": [BETA, ACME]}))  # a-members are in both
    define = command(
        "segment_set.defined", set_id="plan", name="Plan", groups=["acme", "beta"], fallback="n"
    )
    bus.event("group-changes", define)
    await bus.run()


def ordered(ids: list[str]) -> list[str]:
    """Listing order of the population: first name, then the last name (the id, uppercased)."""
    first = {"1": "ann", "2": "bob", "3": "cleo", "4": "dan", "5": "émile"}
    return sorted(ids, key=lambda m: (first[m[1]], m))


async def test_each_segment_lists_its_members_in_order(bus: Bus) -> None:
    await population(bus)
    query = service(bus)
    acme = await page(query, "acme")
    beta = await page(query, "beta")
    fallback = await page(query, None)
    assert [m["member_id"] for m in acme["members"]] == ordered([f"a{i}" for i in range(1, 6)])
    # the a-members are in beta too, but their segment is acme, the first of the list
    assert [m["member_id"] for m in beta["members"]] == ordered([f"b{i}" for i in range(1, 6)])
    assert [m["member_id"] for m in fallback["members"]] == ordered([f"x{i}" for i in range(1, 6)])
    assert (acme["total"], beta["total"], fallback["total"]) == (5, 5, 5)
    a1 = next(m for m in acme["members"] if m["member_id"] == "a1")
    assert a1["version"] == 1 and a1["since"] is not None and a1["first_name"] == "Ann"
    x1 = next(m for m in fallback["members"] if m["member_id"] == "x1")
    assert (x1["since"], x1["version"]) == (None, None)  # always in the fallback


async def test_a_deactivation_moves_members_and_pages_walk_without_skip_or_repeat(
    bus: Bus,
) -> None:
    await population(bus)
    bus.event("group-changes", command("group.deactivated", group_id="acme"))
    await bus.run()
    query = service(bus)
    assert (await page(query, "acme"))["members"] == []
    beta, total = await walk(query, "beta", limit=3)
    assert beta == ordered([f"{p}{i}" for p in "ab" for i in range(1, 6)]) and total == 10
    moved = next(m for m in (await page(query, "beta"))["members"] if m["member_id"] == "a1")
    assert moved["version"] == 2  # the segment.changed version of its move
    # a member leaving beta goes to the fallback, and the fallback walks across slices too
    bus.event("member-changes", upsert("b2", email="b2@gone.org"))
    await bus.run()
    fallback, total = await walk(query, None, limit=2)
    assert fallback == ordered(["b2", *(f"x{i}" for i in range(1, 6))]) and total == 6


async def test_filters_apply_and_count(bus: Bus) -> None:
    await population(bus)
    query = service(bus)
    got = await page(query, "beta", filters=Filters.parse(q="bob"))
    assert [m["member_id"] for m in got["members"]] == ["b2"] and got["total"] == 1
    got = await page(query, None, filters=Filters.parse(q="X3", status="accepted"))
    assert [m["member_id"] for m in got["members"]] == ["x3"] and got["total"] == 1
    got = await page(query, None, filters=Filters.parse(status="pending"))
    assert got == {"members": [], "total": 0, "next_cursor": None}


async def test_an_unknown_or_deleted_set_and_a_foreign_segment(bus: Bus) -> None:
    await population(bus)
    query = service(bus)
    with pytest.raises(QueryError) as caught:
        await query.segment_listing("acme", "nope", None, Filters(), None, 10, [0])
    assert (caught.value.status, caught.value.code) == (404, "segment_set_not_found")
    with pytest.raises(QueryError) as caught:
        await query.segment_listing("acme", "plan", "other", Filters(), None, 10, [0])
    assert (caught.value.status, caught.value.code) == (400, "invalid")
    bus.event("group-changes", command("segment_set.deleted", set_id="plan"))
    await bus.run()
    with pytest.raises(QueryError) as caught:
        await query.segment_listing("acme", "plan", None, Filters(), None, 10, [0])
    assert (caught.value.status, caught.value.code) == (404, "segment_set_not_found")
