"""Dead letters: why an input record could not be used, safe to publish (contract §4).

A :class:`DeadLetter` carries a ``code`` and a ``message``. The message names the field and the
problem (``"member.upserted: profile.status: must be one of accepted, invited, …"``) and never
contains the record's content: no values, no personal data, no unknown field names. The original
key and value bytes travel separately, as the dead-letter record's key and value.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Literal, TypeAlias

from pydantic_core import ErrorDetails

from smartgroups.core.ids import ID_PATTERN

DeadLetterCode: TypeAlias = Literal[
    "decode_error", "schema_error", "key_mismatch", "too_large", "unknown_type",
    "unsupported_version", "processing_error",
]  # fmt: skip
"""Why a record is dead-lettered:

* ``too_large``: the value is over 256 KiB;
* ``decode_error``: null or empty value, not UTF-8, not JSON, or not a JSON object;
* ``schema_error``: the envelope or the event's fields break the schema;
* ``unsupported_version``: ``v`` names a major version other than 1;
* ``unknown_type``: ``type`` is not an event type of the topic (member-keyed topics only);
* ``key_mismatch``: the key is null or differs from the one the value implies;
* ``processing_error``: not an edge code (the decoders never return it) but an addition to the
  contract's list: the worker failed on a record that decoded fine (a bug), and parks it here
  rather than lose it or stop. Replay it once fixed.
"""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A record that cannot be used: ``code`` (:data:`DeadLetterCode`) and a safe ``message``."""

    code: DeadLetterCode
    message: str


def dead_letter_headers(
    dead_letter: DeadLetter, topic: str, partition: int, offset: int
) -> list[tuple[str, bytes]]:
    """The headers of the dead-letter record for the input at ``topic``/``partition``/``offset``.

    ``topic`` is the topic the record was read from, as named on the broker (with the prefix).
    Values are UTF-8; partition and offset are decimal text.
    """
    return [
        ("error.code", dead_letter.code.encode()),
        ("error.message", dead_letter.message.encode()),
        ("source.topic", topic.encode()),
        ("source.partition", str(partition).encode()),
        ("source.offset", str(offset).encode()),
    ]


_MAX_PROBLEMS: Final = 3

_PHRASES: Final = {
    "missing": "required",
    "string_type": "must be a string",
    "int_type": "must be an integer",
    "float_type": "must be a number",
    "bool_type": "must be a boolean",
    "list_type": "must be a list",
    "dict_type": "must be an object",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "string_too_short": "must not be empty",
    "string_too_long": "is too long",
    "none_required": "must be null",
}


def describe_errors(errors: Iterable[ErrorDetails], prefix: str = "") -> str:
    """A safe message for pydantic errors (``ValidationError.errors()``): paths and problems.

    Paths are built from model field names and list indices only. Problems come from a fixed
    table, from the literal choices of our own schema, or from our validators' fixed messages.
    """
    problems: list[str] = []
    for error in errors:
        problem = f"{_path(error['loc'])}: {_phrase(error)}"
        if problem not in problems:
            problems.append(problem)
    shown = "; ".join(problems[:_MAX_PROBLEMS])
    if len(problems) > _MAX_PROBLEMS:
        shown += f"; and {len(problems) - _MAX_PROBLEMS} more"
    return prefix + shown


def _path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part.isidentifier():
            path += f".{part}" if path else part
        # Anything else is a pydantic union-member tag such as "function-after[...]": skip it.
    return path or "value"


def _phrase(error: ErrorDetails) -> str:
    kind = error["type"]
    context = error.get("ctx") or {}
    if kind == "literal_error":
        return f"must be one of {context.get('expected', 'the allowed values')}"
    if kind == "value_error" and "error" in context:
        return str(context["error"])
    if kind == "string_pattern_mismatch":
        if context.get("pattern") == ID_PATTERN:
            return f"must match {ID_PATTERN}"
        return "must be an RFC 3339 date-time or date"
    if kind == "greater_than_equal":
        return f"must be at least {context.get('ge')}"
    return _PHRASES.get(kind, f"invalid ({kind})")
