"""The member record: partial updates, erasure, delivery bookkeeping, exact persistence."""

from __future__ import annotations

from typing import Any

from smartgroups.core.record import (
    OUTBOX_ENTRIES,
    OUTBOX_MAX_AGE_MS,
    Command,
    MemberRecord,
    OutboxEntry,
    Pair,
)


def test_profile_patch_changes_only_present_fields_and_null_clears() -> None:
    rec = MemberRecord()
    assert rec.patch_profile({"email": "a@x.com", "status": "accepted"}) == {
        "profile.email",
        "profile.status",
    }
    assert rec.patch_profile({"email": "a@x.com"}) == set()  # same value: no change
    assert rec.patch_profile({"email": None, "title": None}) == {"profile.email"}
    assert rec.profile == {"status": "accepted"}


def test_values_keep_their_json_type() -> None:
    rec = MemberRecord()
    assert rec.set_value("property", "p", 1) == {"property.p"}
    assert rec.set_value("property", "p", True) == {"property.p"}  # 1 == True, still a change
    assert rec.set_value("property", "p", True) == set()
    assert rec.set_value("answer", "q", None) == set()  # unset of nothing
    assert rec.set_value("property", "p", None) == {"property.p"}
    assert rec.properties == {} and rec.answers == {}


def test_eligibility_follows_status() -> None:
    rec = MemberRecord()
    assert not rec.eligible
    for status, eligible in [("accepted", True), ("invited", True), ("pending", True),
                             ("declined", False), ("deactivated", False)]:  # fmt: skip
        rec.patch_profile({"status": status})
        assert rec.eligible is eligible


def test_erase_forgets_personal_data_but_keeps_transition_counters() -> None:
    rec = MemberRecord()
    rec.patch_profile({"email": "a@x.com", "status": "accepted"})
    rec.set_value("property", "p", "v")
    rec.static["g"] = Command(True, 3)
    rec.blacklist["h"] = Command(True, 4)
    rec.pairs["g"] = Pair(True, 5, 1000)
    rec.dues["h"] = 99
    rec.erase()
    assert (rec.profile, rec.properties, rec.static, rec.blacklist, rec.dues) == (
        {},
        {},
        {},
        {},
        {},
    )
    assert rec.pairs["g"].version == 5


def test_outbox_keeps_the_newest_entries_within_age() -> None:
    rec = MemberRecord()
    for offset in range(OUTBOX_ENTRIES + 5):
        rec.remember(OutboxEntry("t#0", offset, 1_000_000 + offset, [{"id": str(offset)}]))
    assert len(rec.outbox) == OUTBOX_ENTRIES
    assert rec.outbox_for("t#0", 0) is None
    last = OUTBOX_ENTRIES + 4
    assert rec.outbox_for("t#0", last) == [{"id": str(last)}]
    rec.remember(OutboxEntry("t#1", 0, 1_000_000 + OUTBOX_MAX_AGE_MS + 100, []))
    assert [e.source for e in rec.outbox] == ["t#1"]


def test_settle_drops_only_the_entries_of_settled_inputs() -> None:
    rec = MemberRecord()
    rec.remember(OutboxEntry("t#0", 4, 1_000, [{"id": "a"}]))
    rec.remember(OutboxEntry("t#0", 9, 1_001, [{"id": "b"}]))
    rec.remember(OutboxEntry("u#3", 2, 1_002, [{"id": "c"}]))  # a source not named: kept
    assert rec.settle({"t#0": 9})
    assert [(e.source, e.offset) for e in rec.outbox] == [("t#0", 9), ("u#3", 2)]
    assert not rec.settle({"t#0": 9})  # nothing more to drop
    assert rec.outbox_for("t#0", 9) == [{"id": "b"}]


def test_settle_leaves_an_empty_outbox_encoded() -> None:
    def refuse(_: bytes) -> Any:
        raise AssertionError("an empty outbox is not decoded")

    rec = MemberRecord.from_docs(MemberRecord().state_doc(), b"[]", refuse)
    assert not rec.settle({"t#0": 100})
    assert rec.outbox_entries() is None and rec.outbox_bytes == b"[]"


def test_settle_drops_an_outbox_whose_inputs_are_all_settled_without_decoding_it() -> None:
    def refuse(_: bytes) -> Any:
        raise AssertionError("an outbox wholly settled is not decoded")

    rec = MemberRecord()
    rec.remember(OutboxEntry("t#0", 4, 1_000, [{"id": "a"}]))
    rec.mark_applied("t#0", 4)
    rec.mark_applied("u#0", 7)  # an input with no outputs
    stored = MemberRecord.from_docs(rec.state_doc(), b'[["t#0",4,1000,[{"id":"a"}]]]', refuse)
    assert stored.settle({"t#0": 5, "u#0": 8})
    assert stored.outbox == [] and stored.outbox_entries() == []


def test_settle_decodes_the_outbox_when_one_source_is_not_settled() -> None:
    rec = MemberRecord()
    rec.remember(OutboxEntry("t#0", 4, 1_000, [{"id": "a"}]))
    rec.remember(OutboxEntry("r#1", 2, 1_001, [{"id": "b"}]))  # rerouted: never settled here
    rec.mark_applied("t#0", 4)
    rec.mark_applied("r#1", 2)
    entries = rec.outbox
    stored = MemberRecord.from_docs(rec.state_doc(), b"<encoded>", lambda raw: list(entries))
    assert stored.settle({"t#0": 5})
    assert [(e.source, e.offset) for e in stored.outbox] == [("r#1", 2)]


def test_redelivery_is_recognised_per_source() -> None:
    rec = MemberRecord()
    rec.mark_applied("member-changes#2", 10)
    assert rec.already_applied("member-changes#2", 10)
    assert rec.already_applied("member-changes#2", 3)
    assert not rec.already_applied("member-changes#2", 11)
    assert not rec.already_applied("form-answers#2", 3)


# Values as orjson decodes them from the wire (integers within its 64-bit range).


def test_documents_round_trip_without_a_codec() -> None:
    """The core hands plain documents to the store adapter and takes them back."""
    rec = MemberRecord()
    rec.profile = {"status": "accepted"}
    rec.pairs = {"g": Pair(True, 3, 1_000)}
    rec.static = {"s": Command(True, 7)}
    rec.dues = {"profile.last_active_at": 5}
    rec.command_seq = 7
    rec.remember(OutboxEntry("t#0", 5, 10, [{"id": "x"}]))
    entries = rec.outbox_entries()
    assert entries == [OutboxEntry("t#0", 5, 10, [{"id": "x"}])]
    again = MemberRecord.from_docs(rec.state_doc(), b"<encoded>", lambda raw: list(entries))
    assert again.outbox_entries() is None and again.outbox_bytes == b"<encoded>"  # not read yet
    assert again.outbox_for("t#0", 5) == [{"id": "x"}]  # decoded on first use
    assert again.state_doc() == rec.state_doc()


def test_pairs_are_kept_as_stored_and_read_as_values() -> None:
    stored = {"g": [True, 2, 1_000], "h": [False, 1, 500]}
    rec = MemberRecord.from_docs(
        {"p": {}, "v": {}, "a": {}, "s": {}, "b": {}, "m": stored, "n": {}, "d": {}, "c": 0},
        b"[]",
        lambda raw: [],
    )
    assert rec.pairs.get("g") == Pair(True, 2, 1_000) and rec.pairs.get("x") is None
    assert rec.groups() == frozenset({"g"}) and rec.is_member("g") and not rec.is_member("h")
    assert list(rec.pairs.items()) == [("g", Pair(True, 2, 1_000)), ("h", Pair(False, 1, 500))]
    rec.pairs["h"] = Pair(True, 2, 2_000)  # a pair is a value: set again to change it
    rec.pairs["new"] = Pair(True, 1, 3_000)
    assert rec.state_doc()["m"] == {
        "g": [True, 2, 1_000], "h": [True, 2, 2_000], "new": [True, 1, 3_000],
    }  # fmt: skip
    assert rec.pairs.member_of() == ["g", "h", "new"]
    rec.pairs = {"only": Pair(False, 4, 9)}  # a mapping of pairs is taken as the whole set
    assert rec.state_doc()["m"] == {"only": [False, 4, 9]} and rec.groups() == frozenset()
