"""What the core renders for the output topics (:mod:`smartgroups.core.outputs`) fits the wire:
each output validates against its JSON Schema and is accepted by its model."""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import Draft202012Validator
from tests.unit.test_schemas import FORMATS
from tests.unit.wire.wire_examples import schema

from smartgroups.core.catalog import SpaceCatalog
from smartgroups.core.commands import parse_command
from smartgroups.core.membership import Transition
from smartgroups.core.outputs import (
    TIME_CAUSE,
    command_result,
    event_cause,
    membership_change,
    membership_state,
    segment_change,
    segment_state,
)
from smartgroups.core.segments import SegmentChange as Moved
from smartgroups.core.segments import SegmentSet, SetEntry
from smartgroups.core.space import GroupEntry
from smartgroups.wire.models import (
    CommandResult,
    MembershipChange,
    MembershipStateRecord,
    SegmentChange,
    SegmentStateRecord,
)
from smartgroups.wire.outputs import ADDED_REASONS, REMOVED_REASONS

AT_MS = 1_763_805_601_250


def valid(topic: str, doc: dict[str, Any]) -> bool:
    validator = Draft202012Validator(schema(f"{topic}.v1.schema.json"), format_checker=FORMATS)
    return validator.is_valid(doc)


def entry(**fields: Any) -> GroupEntry:
    command = {
        "id": "c1",
        "type": "group.created",
        "space": "acme",
        "group_id": "vip",
        "name": "VIP",
        "kind": "smart",
        "conditions": {"all": []},
        **fields,
    }
    outcome = SpaceCatalog().apply(parse_command(command))
    assert outcome.accepted and outcome.group is not None
    return GroupEntry(group=outcome.group, seq=1, created_seq=1)


CAUSES = [
    event_cause("event", "e1", "member-changes", 3, 1200),
    event_cause("definition", "c9", "group-changes", 0, 17),
    TIME_CAUSE,
]
GROUPS = [entry(), entry(slug="V.I.P.", resources=[{"type": "course", "id": "c1"}])]


@pytest.mark.parametrize("cause", CAUSES)
@pytest.mark.parametrize("group", GROUPS)
@pytest.mark.parametrize(
    ("added", "version", "reason"),
    [(True, 1, r) for r in sorted(ADDED_REASONS)]
    + [(False, 2, r) for r in sorted(REMOVED_REASONS)],
)
def test_membership_changes(
    cause: Any, group: GroupEntry, added: bool, version: int, reason: str
) -> None:
    transition = Transition(group_id="vip", added=added, version=version, reason=reason)
    doc = membership_change("acme", "m42", transition, group, cause, AT_MS)
    assert valid("membership-changes", doc)
    MembershipChange.model_validate(doc)


def test_membership_state() -> None:
    doc = membership_state("acme", "vip", "m42", 3, AT_MS)
    assert valid("membership-state", doc)
    MembershipStateRecord.model_validate(doc)


@pytest.mark.parametrize(
    ("group_id", "code", "message"),
    [
        ("vip", None, None),
        (None, None, None),
        ("vip", "group_not_found", "group 'vip' does not exist"),
        (None, "invalid", "unknown command type 'group.renamed'"),
    ],
)
def test_command_results(group_id: str | None, code: str | None, message: str | None) -> None:
    for command_id in ("c1", "c" * 200):
        doc = command_result(
            "a" * 200, command_id, "group.created", group_id=group_id, code=code, message=message
        )
        assert valid("group-change-results", doc)
        CommandResult.model_validate(doc)


@pytest.mark.parametrize("cause", CAUSES)
@pytest.mark.parametrize(
    ("segment", "previous", "slug"),
    [("vip", None, "vip"), (None, "vip", None), ("vip", "sport", "vip")],
)
def test_segment_changes(cause: Any, segment: str | None, previous: str | None, slug: Any) -> None:
    entry = SetEntry(SegmentSet("plan", "Plan", ("vip", "sport"), "native"), seq=3)
    doc = segment_change("acme", "m42", Moved("plan", segment, previous, 2), entry, slug, cause, 0)
    assert doc["id"] == "acme:plan:m42:2" and doc["fallback"] == "native"
    assert valid("segment-changes", doc)
    SegmentChange.model_validate(doc)


def test_segment_state() -> None:
    doc = segment_state("acme", "plan", "m42", "vip", 3, AT_MS)
    assert valid("segment-state", doc)
    SegmentStateRecord.model_validate(doc)
