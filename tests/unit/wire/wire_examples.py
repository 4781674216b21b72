"""The labelled examples of ``schemas/examples`` for the wire tests.

An invalid example of an input topic is named ``<expected outcome>--<what is wrong>.json``: the
outcome is a dead-letter code (``schema_error``, ``unknown_type`` …) or, on ``group-changes``, a
rejection code of ``parse_command`` (``invalid``, ``triggers_immutable``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

SCHEMAS = Path(__file__).resolve().parents[3] / "schemas"
EXAMPLES = SCHEMAS / "examples"


def load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def raw(path: Path) -> bytes:
    """The example as a producer would send it: compact UTF-8 JSON."""
    return json.dumps(load(path), ensure_ascii=False, separators=(",", ":")).encode()


def schema(name: str) -> Any:
    return load(SCHEMAS / name)


def params(topic: str, label: str) -> list[Any]:
    """``pytest.param(path)`` for every example of ``topic`` labelled ``valid``/``invalid``."""
    paths = sorted((EXAMPLES / topic / label).glob("*.json"))
    assert paths, f"no {label} examples for {topic}"
    return [pytest.param(path, id=path.stem) for path in paths]


def expected(path: Path) -> str:
    """The outcome an invalid input example is labelled with (the part before ``--``)."""
    return path.stem.split("--", 1)[0]


def member_key_of(obj: Any) -> bytes:
    """The key a producer would use for a member-keyed example (best effort for broken ones)."""
    if isinstance(obj, dict):
        return f"{obj.get('space')}:{obj.get('member_id')}".encode()
    return b"acme:m42"


def space_key_of(obj: Any) -> bytes:
    return str(obj.get("space") if isinstance(obj, dict) else "acme").encode()
