"""The JSON Schemas in ``schemas/``: well-formed, one per topic, and the examples as labelled.

Each ``schemas/examples/<topic>/valid/*.json`` must validate against the topic's schema and each
``invalid/*.json`` must not (Draft 2020-12, with format checking). The formats are checked here
with the standard library, independently of ``smartgroups.wire``.
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker

from smartgroups.core.ids import ID_PATTERN
from smartgroups.wire.inputs import MEMBER_TOPICS
from smartgroups.wire.timestamps import DATE_TIME_PATTERN, TIMESTAMP_PATTERN

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
EXAMPLES = SCHEMAS / "examples"

INPUT_TOPICS = ["member-changes", "property-changes", "form-answers", "group-changes"]
OUTPUT_TOPICS = [
    "membership-changes",
    "membership-state",
    "group-change-results",
    "segment-changes",
    "segment-state",
]
SCHEMA_FILES = {topic: f"{topic}.v1.schema.json" for topic in INPUT_TOPICS + OUTPUT_TOPICS}
SCHEMA_FILES["dead-letters"] = "dead-letters.headers.v1.schema.json"

FORMATS = FormatChecker(formats=())


@FORMATS.checks("date-time", raises=ValueError)
def _date_time(text: object) -> bool:
    if isinstance(text, str):
        text = re.sub(r":60(?=[.Zz+-])", ":59", text)  # RFC 3339 leap second
        parsed = datetime.fromisoformat(text.upper())
        return parsed.tzinfo is not None and "T" in text.upper()
    return True


@FORMATS.checks("date", raises=ValueError)
def _date(text: object) -> bool:
    if isinstance(text, str):
        date.fromisoformat(text)
        return len(text) == 10
    return True


def load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def validator(topic: str) -> Draft202012Validator:
    return Draft202012Validator(load(SCHEMAS / SCHEMA_FILES[topic]), format_checker=FORMATS)


def examples(topic: str, label: str) -> list[Path]:
    return sorted((EXAMPLES / topic / label).glob("*.json"))


ALL_EXAMPLES = [
    pytest.param(topic, label, path, id=f"{topic}/{label}/{path.stem}")
    for topic in SCHEMA_FILES
    for label in ("valid", "invalid")
    for path in examples(topic, label)
]


@pytest.mark.parametrize("topic", SCHEMA_FILES)
def test_schema_is_well_formed_and_named(topic: str) -> None:
    schema = load(SCHEMAS / SCHEMA_FILES[topic])
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    suffix = ":headers:v1" if topic == "dead-letters" else ":v1"
    assert schema["$id"] == f"urn:smartgroups:{topic}{suffix}"
    assert schema["title"] and schema["description"]


def test_every_schema_file_is_known() -> None:
    assert {p.name for p in SCHEMAS.glob("*.schema.json")} == set(SCHEMA_FILES.values())


@pytest.mark.parametrize(("topic", "label", "path"), ALL_EXAMPLES)
def test_example_validates_as_labelled(topic: str, label: str, path: Path) -> None:
    errors = list(validator(topic).iter_errors(load(path)))
    if label == "valid":
        assert errors == [], [e.message for e in errors]
    else:
        assert errors, f"{path.name} should be rejected by the {topic} schema"


@pytest.mark.parametrize("topic", SCHEMA_FILES)
def test_each_topic_has_several_examples_of_both_kinds(topic: str) -> None:
    assert len(examples(topic, "valid")) >= 2
    assert len(examples(topic, "invalid")) >= 3


@pytest.mark.parametrize("topic", INPUT_TOPICS)
def test_every_event_type_has_a_valid_example(topic: str) -> None:
    declared = set(load(SCHEMAS / SCHEMA_FILES[topic])["properties"]["type"]["enum"])
    if topic in MEMBER_TOPICS:
        assert declared == set(MEMBER_TOPICS[topic])
    shown = {load(path)["type"] for path in examples(topic, "valid")}
    assert shown == declared


@pytest.mark.parametrize("topic", OUTPUT_TOPICS)
def test_every_output_type_has_a_valid_example(topic: str) -> None:
    kinds = load(SCHEMAS / SCHEMA_FILES[topic])["properties"].get("type", {}).get("enum", [None])
    shown = {load(path).get("type") for path in examples(topic, "valid")}
    assert shown == set(kinds)


@pytest.mark.parametrize("topic", INPUT_TOPICS)
def test_inputs_are_forward_compatible(topic: str) -> None:
    """Unknown fields are ignored (contract §3): no closed envelope, no closed event."""
    schema = load(SCHEMAS / SCHEMA_FILES[topic])
    assert "additionalProperties" not in schema
    assert "unevaluatedProperties" not in schema
    for kind in schema["properties"]["type"]["enum"]:
        assert "additionalProperties" not in schema["$defs"][kind]


@pytest.mark.parametrize("topic", OUTPUT_TOPICS)
def test_outputs_are_exact(topic: str) -> None:
    """Output schemas describe exactly what is emitted: no field outside the list."""
    assert load(SCHEMAS / SCHEMA_FILES[topic])["additionalProperties"] is False


@pytest.mark.parametrize("topic", INPUT_TOPICS + OUTPUT_TOPICS)
def test_shared_definitions_match_the_code(topic: str) -> None:
    """The schemas are self-contained; their copies of the shared definitions must not drift."""
    defs = load(SCHEMAS / SCHEMA_FILES[topic])["$defs"]
    assert defs["id"]["pattern"] == ID_PATTERN
    assert defs["eventId"] | {"description": ""} == {
        "description": "",
        "type": "string",
        "minLength": 1,
        "maxLength": 200,
    }
    if topic in INPUT_TOPICS:
        assert defs["timestamp"]["pattern"] == TIMESTAMP_PATTERN
        assert defs["version"]["const"] == 1
    else:
        assert defs["instant"]["pattern"] == DATE_TIME_PATTERN
