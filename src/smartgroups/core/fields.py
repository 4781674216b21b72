"""What a condition's field refers to: its value type and, for select types, its options.

Field names are ``profile.{name}``, ``property.{property_id}``, ``answer.{question_id}`` and
``groups`` (contract section 5). The built-in ones are described by :data:`PROFILE_FIELDS`;
properties and questions come from the space's definitions through a :class:`FieldSchema`.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol

from smartgroups.core.values import ValueType, fold

MEMBER_STATUSES: tuple[str, ...] = (
    "accepted",
    "invited",
    "pending",
    "deactivated",
    "unsubscribed",
    "declined",
    "rejected",
)
"""Every profile ``status`` of the contract (section 3)."""

ELIGIBLE_STATUSES: frozenset[str] = frozenset(("accepted", "invited", "pending"))
"""Profile statuses that count for smart groups (contract section 1)."""


def is_eligible(profile: Mapping[str, object]) -> bool:
    """Whether a profile's ``status`` lets the member count for smart groups (casefolded)."""
    status = profile.get("status")
    return isinstance(status, str) and status.casefold() in ELIGIBLE_STATUSES


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """The type of a field and, for select types, its option ids *folded* (see ``values.fold``).

    ``value_type`` None means the type is unknown: every op is allowed and the value's own JSON
    type decides how it compares. ``options`` None means any option id is accepted.
    """

    value_type: ValueType | None
    options: frozenset[str] | None = None

    @classmethod
    def define(
        cls, value_type: ValueType | None, options: Iterable[str] | None = None
    ) -> FieldSpec:
        """The spec of a definition as given on the wire (option ids are folded here)."""
        folded = None if options is None else frozenset(fold(option) for option in options)
        return cls(value_type, folded)


class FieldSchema(Protocol):
    """The space's definitions, as ``parse_conditions`` consults them.

    ``parse_conditions`` calls ``resolve`` only for ``property.*`` and ``answer.*`` fields (the
    built-in ones come from :data:`PROFILE_FIELDS`), and ``has_group`` for the ids a ``groups``
    trigger names.
    """

    def resolve(self, field: str) -> FieldSpec | None:
        """The spec of ``field`` (e.g. ``"property.p1"``); None if it names no definition."""
        ...

    def has_group(self, group_id: str) -> bool:
        """Whether a group with this id may be named by a ``groups`` trigger."""
        ...


_TEXT = FieldSpec("text")
_DATE = FieldSpec("date")

PROFILE_FIELDS: Mapping[str, FieldSpec] = MappingProxyType(
    {
        "profile.first_name": _TEXT,
        "profile.last_name": _TEXT,
        "profile.email": _TEXT,
        "profile.title": _TEXT,
        "profile.status": FieldSpec.define("single_select", MEMBER_STATUSES),
        "profile.role": _TEXT,
        "profile.tags": FieldSpec("multi_select"),
        "profile.invited_at": _DATE,
        "profile.registered_at": _DATE,
        "profile.last_active_at": _DATE,
        "groups": FieldSpec("multi_select"),
    }
)
"""The built-in fields and their types: the ``profile.*`` fields and ``groups``."""


@dataclass(frozen=True, slots=True)
class StaticFieldSchema:
    """A fixed schema: properties and questions by id, and the ids of the existing groups."""

    properties: Mapping[str, FieldSpec] = field(default_factory=dict)
    questions: Mapping[str, FieldSpec] = field(default_factory=dict)
    groups: Collection[str] = frozenset()

    def resolve(self, field: str) -> FieldSpec | None:
        """The spec of any field name, built-in ones included; None if unknown."""
        builtin = PROFILE_FIELDS.get(field)
        if builtin is not None:
            return builtin
        source, _, ident = field.partition(".")
        if source == "property":
            return self.properties.get(ident)
        if source == "answer":
            return self.questions.get(ident)
        return None

    def has_group(self, group_id: str) -> bool:
        """Whether ``group_id`` is one of ``groups``."""
        return group_id in self.groups
