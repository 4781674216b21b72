"""The ``group-changes`` examples agree with the core: schema-valid commands are accepted,
schema-invalid ones are rejected with the code their file name gives.

Commands are checked in two places: :func:`smartgroups.core.commands.parse_command` (the
command's shape) and :meth:`smartgroups.core.catalog.SpaceCatalog.apply` (conditions, which need
the space's definitions). Each example is applied to a catalog seeded with the definitions and
groups the examples refer to, so only the example itself can be the reason for a rejection.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.unit.wire.wire_examples import expected, load, params, raw, space_key_of

from smartgroups.core.catalog import Outcome, SpaceCatalog
from smartgroups.core.commands import parse_command
from smartgroups.errors import RuleError
from smartgroups.wire import GroupChangeEnvelope, decode_group_change


def _cmd(command_type: str, /, **fields: Any) -> dict[str, Any]:
    return {"id": f"seed-{command_type}", "type": command_type, "space": "acme", **fields}


SEEDS = [
    _cmd(
        "property.defined",
        property_id="plan",
        name="Plan",
        value_type="single_select",
        options=["free", "pro", "enterprise"],
    ),
    _cmd("property.defined", property_id="score", name="Score", value_type="number"),
    _cmd("property.defined", property_id="newsletter", name="Newsletter", value_type="boolean"),
    _cmd("property.defined", property_id="renewal", name="Renewal", value_type="date"),
    _cmd(
        "question.defined",
        question_id="q_sport",
        name="Sports",
        value_type="multi_select",
        options=["football", "tennis"],
    ),
    _cmd("question.defined", question_id="q_age", name="Age", value_type="number"),
    _cmd("group.created", group_id="banned", name="Banned", kind="static"),
    _cmd("group.created", group_id="staff", name="Staff", kind="static"),
    _cmd("group.created", group_id="old", name="Old", kind="static"),
    _cmd("group.created", group_id="vip", name="VIP", kind="smart", conditions={"all": []}),
    _cmd(
        "group.created",
        group_id="segment",
        name="Segment",
        kind="smart",
        editable=True,
        conditions={"all": []},
    ),
    _cmd("segment_set.defined", set_id="scenario", name="S", groups=["banned"], fallback="native"),
]
"""What the examples name: properties, questions and groups of the space ``acme``."""

_CREATES = {
    "group.created": "group_id",
    "property.defined": "property_id",
    "question.defined": "question_id",
    "segment_set.defined": "set_id",
}


def seeded_for(example: dict[str, Any]) -> SpaceCatalog:
    """A catalog holding the seeds, except one the example itself creates."""
    catalog = SpaceCatalog()
    id_field = _CREATES.get(example.get("type", ""))
    for seed in SEEDS:
        if id_field and seed["type"] == example["type"] and seed[id_field] == example[id_field]:
            continue
        outcome = catalog.apply(parse_command(seed))
        assert outcome.accepted, (seed, outcome)
    return catalog


def outcome_of(example: dict[str, Any]) -> Outcome:
    catalog = seeded_for(example)
    try:
        command = parse_command(example)
    except RuleError as rejection:
        return Outcome(False, code=rejection.code, message=rejection.message)
    return catalog.apply(command)


@pytest.mark.parametrize("path", params("group-changes", "valid"))
def test_schema_valid_commands_are_accepted(path: Path) -> None:
    outcome = outcome_of(load(path))
    assert outcome.accepted, (outcome.code, outcome.message)


@pytest.mark.parametrize("path", params("group-changes", "invalid"))
def test_schema_invalid_commands_are_rejected_with_their_code(path: Path) -> None:
    example = load(path)
    envelope = decode_group_change(space_key_of(example), raw(path))
    if not isinstance(envelope, GroupChangeEnvelope):
        return  # an envelope problem: dead-lettered, see test_wire_decode
    outcome = outcome_of(dict(envelope.event))
    assert not outcome.accepted, path.name
    assert outcome.code == expected(path), (outcome.code, outcome.message)
