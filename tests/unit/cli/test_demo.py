"""The demo's examples: valid events that never go stale, and the memberships the README shows.

The worker's own parsers and evaluator decide here (no broker): the member topics' decoder, the
catalog's guards and the condition evaluator that ``smartgroups preview`` shares with the worker.
``tests/integration/test_demo.py`` runs the real ``worker --demo`` on the real broker.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from smartgroups.cli.demo import ORDER, change_line, example_records
from smartgroups.cli.preview import load_definitions, members_in
from smartgroups.cli.relative import relative_instant, resolve_relative
from smartgroups.core.snapshot import MemberSnapshot
from smartgroups.errors import PreviewError
from smartgroups.wire.decode import DeadLetter, decode_member_input

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
MEMBER_TOPICS = ("member-changes", "property-changes", "form-answers")


def events(logical: str, now: datetime, folder: Path = EXAMPLES) -> list[dict[str, object]]:
    text = (folder / f"{logical}.jsonl").read_text(encoding="utf-8")
    return [resolve_relative(orjson.loads(line), now) for line in text.splitlines() if line.strip()]


def world(now: datetime, tmp_path: Path) -> dict[str, list[str]]:
    """Who is in each group once every example is applied, evaluated at ``now``."""
    defs = tmp_path / "defs.jsonl"
    defs.write_bytes(b"\n".join(orjson.dumps(e) for e in events("group-changes", now)))
    definitions = load_definitions(str(defs))
    profiles: dict[str, dict[str, object]] = {}
    properties: dict[str, dict[str, object]] = {}
    answers: dict[str, dict[str, object]] = {}
    groups: dict[str, set[str]] = {}
    for e in events("member-changes", now):
        profiles.setdefault(str(e["member_id"]), {}).update(e["profile"])  # type: ignore[arg-type]
    for e in events("property-changes", now):
        properties.setdefault(str(e["member_id"]), {})[str(e["property_id"])] = e["value"]
    for e in events("form-answers", now):
        answers.setdefault(str(e["member_id"]), {})[str(e["question_id"])] = e["value"]
    for e in events("group-changes", now):
        if e["type"] == "group.member_added":
            groups.setdefault(str(e["member_id"]), set()).add(str(e["group_id"]))
    snapshots = [
        (
            "demo",
            m,
            MemberSnapshot(
                profiles[m], properties.get(m, {}), answers.get(m, {}), frozenset(groups.get(m, ()))
            ),
        )
        for m in sorted(profiles)
    ]
    result = {}
    for group_id in ("coaches", "acme-vip", "tennis-fans"):
        space, group = definitions.target(group_id, "demo")
        result[group_id] = members_in(group, space, iter(snapshots), now)
    return result


def test_every_topic_file_is_published_in_a_fixed_order() -> None:
    assert sorted(ORDER) == sorted(p.stem for p in EXAMPLES.glob("*.jsonl") if p.stem in ORDER)
    assert ORDER.index("member-changes") < ORDER.index("group-changes")  # coaches then cascades


@pytest.mark.parametrize("logical", MEMBER_TOPICS)
def test_member_examples_decode_as_the_worker_decodes_them(logical: str) -> None:
    text = (EXAMPLES / f"{logical}.jsonl").read_text(encoding="utf-8")
    records = example_records(logical, text)
    assert records
    for key, value in records:
        assert not isinstance(decode_member_input(logical, key, value), DeadLetter)


def instants(value: object) -> list[str]:
    """Every string under a key ending in ``_at`` (or ``at``), at any depth."""
    if isinstance(value, dict):
        return [
            found
            for key, item in value.items()
            for found in (
                [item] if (key.endswith("_at") or key == "at") and isinstance(item, str) else []
            )
            + instants(item)
        ]
    if isinstance(value, list):
        return [found for item in value for found in instants(item)]
    return []


def test_instants_are_relative_so_the_demo_never_goes_stale() -> None:
    files = [*EXAMPLES.glob("*.jsonl"), *EXAMPLES.glob("mistakes/*.jsonl")]
    found = [
        (path.name, text)
        for path in files
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
        for text in instants(orjson.loads(line))
    ]
    assert found  # the members' last_active_at at least
    now = datetime.now(UTC)
    assert [(name, t) for name, t in found if relative_instant(t, now) is None] == []


@pytest.mark.parametrize(
    "now", [datetime.now(UTC), datetime(2027, 6, 1, tzinfo=UTC), datetime(2031, 1, 1, tzinfo=UTC)]
)
def test_the_examples_make_the_memberships_the_readme_shows(now: datetime, tmp_path: Path) -> None:
    assert world(now, tmp_path) == {
        "coaches": ["m3"],
        "acme-vip": ["m1", "m3"],  # m3 through coaches (VIP is not set for m3)
        "tennis-fans": ["m2"],  # "Tennis" matches "tennis": casefolded
    }


def test_mistakes_are_rejected_and_dead_lettered(tmp_path: Path) -> None:
    defs = tmp_path / "defs.jsonl"
    defs.write_text(
        (EXAMPLES / "group-changes.jsonl").read_text()
        + (EXAMPLES / "mistakes" / "group-changes.jsonl").read_text()
    )
    with pytest.raises(PreviewError, match="triggers_immutable"):
        load_definitions(str(defs))
    text = (EXAMPLES / "mistakes" / "member-changes.jsonl").read_text()
    [(key, value)] = example_records("member-changes", text)
    letter = decode_member_input("member-changes", key, value)
    assert isinstance(letter, DeadLetter) and letter.code == "unknown_type"


def test_change_line() -> None:
    event = {
        "type": "member.added",
        "space": "demo",
        "group_id": "acme-vip",
        "member_id": "m1",
        "version": 1,
        "reason": "conditions_met",
    }
    assert change_line(event) == "member.added demo/acme-vip/m1 v1 (conditions_met)"
