"""The query service's pure parts: parameters, filters, the q prefilter, merging partials."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smartgroups.errors import QueryError
from smartgroups.service import index
from smartgroups.service.query import (
    Filters,
    Partial,
    decode_cursor,
    encode_cursor,
    member_doc,
    merge,
    parse_limit,
)

texts = st.one_of(st.none(), st.text(max_size=12), st.sampled_from(["Ann", "ANN", "Straße", "İ"]))


@settings(max_examples=400, deadline=None)
@given(first=texts, last=texts, email=texts, q=st.text(min_size=1, max_size=4))
def test_the_prefilter_never_drops_a_match(first: object, last: object, email: object, q: str):
    listing = (first, last, email, None, None)
    filters = Filters.parse(q=q)
    assert filters.q is not None
    value = [*listing, None, None, index.search_text(listing, "m1")]
    raw = orjson.dumps(value)
    matched = filters.match(value, "m1")
    assert matched == Filters.parse(q=q).match(listing, "m1")  # with or without the search text
    needle = index.prefilter(filters.q)
    if matched and needle is not None:
        assert needle in raw


def test_q_status_and_role_filters() -> None:
    listing = ("Ann", "Smith", "ann@acme.com", "Admin", "accepted")
    assert Filters.parse(q="ANN SM").match(listing, "m1")
    assert Filters.parse(q="acme.c").match(listing, "m1")
    assert not Filters.parse(q="bob").match(listing, "m1")
    assert Filters.parse(status="pending, ACCEPTED", role="admin").match(listing, "m1")
    assert not Filters.parse(role="member").match(listing, "m1")
    assert Filters.parse(q="", status=",", role="").empty
    assert not Filters.parse(status="accepted").match((None, None, None, None, None), "m1")
    assert Filters.parse(q="m1").match((None, None, None, None, None), "m1")  # the display name


@pytest.mark.parametrize("raw", ["0", "1001", "-1", "ten", "1.5", True])
def test_a_bad_limit_is_invalid(raw: object) -> None:
    with pytest.raises(QueryError) as caught:
        parse_limit(raw)
    assert (caught.value.status, caught.value.code) == (400, "invalid")


def test_limits_and_cursors() -> None:
    assert parse_limit(None) == 50 and parse_limit("1000") == 1000 and parse_limit(7) == 7
    key = index.sort_key(("Émile", None, None), "m7")
    assert decode_cursor(encode_cursor(key)) == key
    assert decode_cursor(None) is None and decode_cursor("") is None
    for bad in ("%%", "bm9udWw", "YQ", 5):  # not base64, no NUL, no member id, not text
        with pytest.raises(QueryError):
            decode_cursor(bad)


def test_partials_of_disjoint_partitions_merge_in_order() -> None:
    def entry(name: str, member: str) -> tuple[bytes, dict[str, object]]:
        listing = (name, None, None, None, None)
        return index.sort_key(listing, member), member_doc(member, listing, None, None)

    one = Partial([entry("ann", "m2"), entry("bob", "m1"), entry("zed", "m9")], 5)
    two = Partial([entry("ann", "m1"), entry("carl", "m3")], 2)
    page = merge([one, Partial.from_json(two.to_json())], 3)
    assert [m["member_id"] for m in page["members"]] == ["m1", "m2", "m1"]
    assert page["total"] == 7
    rest = merge([one, two], 10)
    assert rest["next_cursor"] is None and len(rest["members"]) == 5
    assert decode_cursor(page["next_cursor"]) == entry("bob", "m1")[0]
