"""The ``group-changes`` commands (contract §3) as typed values, and their parser.

:func:`parse_command` turns one decoded JSON object (the edge has already checked the envelope
``id``/``type``/``space``) into one of the frozen dataclasses below, or raises
``RuleError("invalid", message)`` naming the offending field. Only the command's *shape* is
checked here; everything that depends on the space's state (does the group exist, is the slug
free, do the conditions name known properties) is the catalog's job
(:mod:`smartgroups.core.catalog`). Unknown extra fields are ignored.

Decisions where the contract is silent:

* **Ids** (``group_id``, ``member_id``, ``property_id``, ``question_id``, option ids, resource
  ids) match ``^[A-Za-z0-9_.@+-]{1,200}$``. **Texts** (``name``, ``description``, ``icon``,
  ``slug``) are at most 1,000 characters; ``name`` must not be blank.
* **Slug**: an explicit ``slug`` is normalised here (:mod:`smartgroups.core.slug`); one that
  normalises to nothing is ``invalid``. ``GroupCreated.slug`` is None when no slug was given:
  the catalog then derives one from the name (see there).
* **group.updated** distinguishes *absent* from *null* with the :data:`ABSENT` sentinel: an
  absent field keeps its value. ``null`` clears ``description`` and ``icon``, empties
  ``resources``, and for ``slug`` means "derive it again from the (new) name". ``name: null``
  is ``invalid`` (a group always has a name). A ``kind`` field, whatever its value (null
  included), is rejected with ``triggers_immutable`` before anything else is checked. A
  ``conditions`` field is kept raw (null included): only the catalog knows whether the group is
  editable (else ``triggers_immutable``) and parses the tree.
* **blacklist** (``group.created``, smart only): member ids, at most 10,000, each kept once;
  ``null`` is none. **editable**: a boolean (``null``: false); ``true`` on a static group is
  ``invalid``.
* **Segment sets**: ``groups`` is a list of 1 to 100 distinct group ids (a repeated id is
  ``invalid``, not silently dropped: the order is the rule); ``fallback`` is a non-blank text of
  at most 1,000 characters (a label, not an id), required at ``segment_set.defined``.
* **conditions**: kept raw (``conditions_raw``) and parsed by the catalog against the space's
  schema. Required (not null) on a smart group; on a static group a non-null ``conditions`` is
  ``invalid`` (``null`` is read as absent).
* **resources**: a list of ``{type, id}``; ``type`` one of ``live course channel forum
  collection``; at most 1,000 items; repeated ``(type, id)`` pairs are kept once, in first-seen
  order. ``null`` means no resources.
* **options**: ids, at most 1,000, kept once each in first-seen order. They are allowed only
  with a select ``value_type`` (``invalid`` otherwise). ``options: null`` is read as absent. A
  select property defined without options has none (an empty list) until an update adds some.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal, TypeAlias, cast

from smartgroups.core.ids import is_id
from smartgroups.core.slug import normalize_slug
from smartgroups.core.values import VALUE_TYPES, ValueType
from smartgroups.errors import RuleError

MAX_TEXT = 1_000
"""Longest ``name``, ``description``, ``icon`` or ``slug`` accepted, in characters."""

MAX_ITEMS = 1_000
"""Longest ``resources`` or ``options`` list accepted."""

MAX_BLACKLIST = 10_000
"""Longest ``blacklist`` of a ``group.created`` accepted (contract section 3)."""

MAX_SET_GROUPS = 100
"""Most groups a segment set may list (contract section 9)."""

RESOURCE_TYPES = frozenset({"live", "course", "channel", "forum", "collection"})
SELECT_TYPES = frozenset({"single_select", "multi_select"})

GroupKind = Literal["static", "smart"]


class Absent(enum.Enum):
    """The type of :data:`ABSENT`: a field that was not in the command at all."""

    ABSENT = "absent"

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT = Absent.ABSENT
"""An absent ``group.updated`` / ``*.updated`` field: the current value is kept."""


@dataclass(frozen=True, slots=True)
class Resource:
    """A resource linked to a group, copied onto every membership output."""

    type: str
    id: str

    def to_json(self) -> dict[str, str]:
        return {"type": self.type, "id": self.id}


# -- groups ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GroupCreated:
    """``group.created``; ``slug`` is normalised, or None when not given (the catalog derives)."""

    group_id: str
    name: str
    kind: GroupKind
    slug: str | None = None
    description: str | None = None
    icon: str | None = None
    conditions_raw: object | None = None
    resources: tuple[Resource, ...] = ()
    blacklist: tuple[str, ...] = ()
    editable: bool = False


@dataclass(frozen=True, slots=True)
class GroupUpdated:
    """``group.updated``: :data:`ABSENT` keeps a field; see the module docstring for null.

    ``conditions_raw`` is the new tree of an editable group (:data:`ABSENT`: unchanged); the
    catalog parses it and rejects it with ``triggers_immutable`` on any other group.
    """

    group_id: str
    name: str | Absent = ABSENT
    slug: str | Absent | None = ABSENT
    description: str | Absent | None = ABSENT
    icon: str | Absent | None = ABSENT
    resources: tuple[Resource, ...] | Absent = ABSENT
    conditions_raw: object | Absent = ABSENT


@dataclass(frozen=True, slots=True)
class GroupDeactivated:
    group_id: str


@dataclass(frozen=True, slots=True)
class GroupActivated:
    group_id: str


@dataclass(frozen=True, slots=True)
class GroupDeleted:
    group_id: str


@dataclass(frozen=True, slots=True)
class GroupMemberAdded:
    """Static groups only."""

    group_id: str
    member_id: str


@dataclass(frozen=True, slots=True)
class GroupMemberRemoved:
    """Static groups only."""

    group_id: str
    member_id: str


@dataclass(frozen=True, slots=True)
class GroupBlacklisted:
    """Smart groups only."""

    group_id: str
    member_id: str


@dataclass(frozen=True, slots=True)
class GroupUnblacklisted:
    """Smart groups only."""

    group_id: str
    member_id: str


# -- property and question definitions ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PropertyDefined:
    property_id: str
    name: str
    value_type: ValueType
    options: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class PropertyUpdated:
    property_id: str
    name: str | Absent = ABSENT
    value_type: ValueType | Absent = ABSENT
    options: tuple[str, ...] | Absent = ABSENT


@dataclass(frozen=True, slots=True)
class PropertyDeleted:
    property_id: str


@dataclass(frozen=True, slots=True)
class PropertyOptionRemoved:
    property_id: str
    option: str


@dataclass(frozen=True, slots=True)
class QuestionDefined:
    question_id: str
    name: str
    value_type: ValueType
    options: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class QuestionUpdated:
    question_id: str
    name: str | Absent = ABSENT
    value_type: ValueType | Absent = ABSENT
    options: tuple[str, ...] | Absent = ABSENT


@dataclass(frozen=True, slots=True)
class QuestionDeleted:
    question_id: str


@dataclass(frozen=True, slots=True)
class QuestionOptionRemoved:
    question_id: str
    option: str


# -- segment sets (contract section 9) ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SegmentSetDefined:
    set_id: str
    name: str
    groups: tuple[str, ...]
    fallback: str


@dataclass(frozen=True, slots=True)
class SegmentSetUpdated:
    set_id: str
    name: str | Absent = ABSENT
    groups: tuple[str, ...] | Absent = ABSENT
    fallback: str | Absent = ABSENT


@dataclass(frozen=True, slots=True)
class SegmentSetDeleted:
    set_id: str


SetCommand: TypeAlias = SegmentSetDefined | SegmentSetUpdated | SegmentSetDeleted

GroupCommand: TypeAlias = (
    GroupCreated
    | GroupUpdated
    | GroupDeactivated
    | GroupActivated
    | GroupDeleted
    | GroupMemberAdded
    | GroupMemberRemoved
    | GroupBlacklisted
    | GroupUnblacklisted
)
DefinitionCommand: TypeAlias = (
    PropertyDefined
    | PropertyUpdated
    | PropertyDeleted
    | PropertyOptionRemoved
    | QuestionDefined
    | QuestionUpdated
    | QuestionDeleted
    | QuestionOptionRemoved
)
Command: TypeAlias = GroupCommand | DefinitionCommand | SetCommand


# -- parsing -----------------------------------------------------------------------------------


def _invalid(message: str) -> RuleError:
    return RuleError("invalid", message)


def _id(obj: Mapping[str, object], name: str) -> str:
    value = obj.get(name)
    if value is None:
        raise _invalid(f"'{name}' is required")
    return _check_id(value, f"'{name}'")


def _check_id(value: object, where: str) -> str:
    if not isinstance(value, str) or not is_id(value):
        raise _invalid(f"{where} must be an id matching ^[A-Za-z0-9_.@+-]{{1,200}}$")
    return value


def _text(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise _invalid(f"'{name}' must be a string")
    if len(value) > MAX_TEXT:
        raise _invalid(f"'{name}' is longer than {MAX_TEXT} characters")
    return value


def _name(value: object) -> str:
    name = _text(value, "name")
    if not name.strip():
        raise _invalid("'name' must not be blank")
    return name


def _required_name(obj: Mapping[str, object]) -> str:
    if obj.get("name") is None:
        raise _invalid("'name' is required")
    return _name(obj["name"])


def _optional_text(obj: Mapping[str, object], name: str) -> str | None:
    value = obj.get(name)
    return None if value is None else _text(value, name)


def _slug(value: object) -> str:
    slug = normalize_slug(_text(value, "slug"))
    if not slug:
        raise _invalid("'slug' has no letters or digits to build a slug from")
    return slug


def _list(value: object, name: str) -> list[object]:
    if not isinstance(value, list):
        raise _invalid(f"'{name}' must be a list")
    if len(value) > MAX_ITEMS:
        raise _invalid(f"'{name}' has more than {MAX_ITEMS} items")
    return value


def _resources(value: object) -> tuple[Resource, ...]:
    if value is None:
        return ()
    seen: dict[Resource, None] = {}
    for i, item in enumerate(_list(value, "resources")):
        if not isinstance(item, Mapping):
            raise _invalid(f"'resources[{i}]' must be an object with 'type' and 'id'")
        kind = item.get("type")
        if kind not in RESOURCE_TYPES:
            raise _invalid(
                f"'resources[{i}].type' must be one of {', '.join(sorted(RESOURCE_TYPES))}"
            )
        seen[Resource(cast(str, kind), _check_id(item.get("id"), f"'resources[{i}].id'"))] = None
    return tuple(seen)


def _value_type(value: object) -> ValueType:
    if value not in VALUE_TYPES:
        raise _invalid(f"'value_type' must be one of {', '.join(sorted(VALUE_TYPES))}")
    return cast(ValueType, value)


def _options(value: object) -> tuple[str, ...]:
    items = _list(value, "options")
    return tuple(dict.fromkeys(_check_id(o, f"'options[{i}]'") for i, o in enumerate(items)))


def _group_created(obj: Mapping[str, object]) -> GroupCreated:
    group_id = _id(obj, "group_id")
    name = _required_name(obj)
    kind = obj.get("kind")
    if kind not in ("static", "smart"):
        raise _invalid("'kind' must be 'static' or 'smart'")
    conditions = obj.get("conditions")
    if kind == "smart" and conditions is None:
        raise _invalid("'conditions' is required for a smart group")
    if kind == "static" and conditions is not None:
        raise _invalid("'conditions' is not allowed on a static group")
    blacklist = obj.get("blacklist")
    if kind == "static" and blacklist is not None:
        raise _invalid("'blacklist' is not allowed on a static group")
    editable = obj.get("editable")
    if editable is not None and not isinstance(editable, bool):
        raise _invalid("'editable' must be true or false")
    if kind == "static" and editable:
        raise _invalid("'editable' is only allowed on a smart group")
    slug = obj.get("slug")
    return GroupCreated(
        group_id=group_id,
        name=name,
        kind=kind,
        slug=None if slug is None else _slug(slug),
        description=_optional_text(obj, "description"),
        icon=_optional_text(obj, "icon"),
        conditions_raw=conditions,
        resources=_resources(obj.get("resources")),
        blacklist=_blacklist(blacklist),
        editable=bool(editable),
    )


def _blacklist(value: object) -> tuple[str, ...]:
    """Member ids, at most :data:`MAX_BLACKLIST`, each kept once in first-seen order."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _invalid("'blacklist' must be a list of member ids")
    if len(value) > MAX_BLACKLIST:
        raise _invalid(f"'blacklist' has more than {MAX_BLACKLIST} items")
    return tuple(dict.fromkeys(_check_id(m, f"'blacklist[{i}]'") for i, m in enumerate(value)))


def _group_updated(obj: Mapping[str, object]) -> GroupUpdated:
    if "kind" in obj:
        raise RuleError("triggers_immutable", "'kind' of a group can never change")
    group_id = _id(obj, "group_id")
    name: str | Absent = ABSENT
    if "name" in obj:
        if obj["name"] is None:
            raise _invalid("'name' cannot be cleared")
        name = _name(obj["name"])
    slug: str | Absent | None = ABSENT
    if "slug" in obj:
        slug = None if obj["slug"] is None else _slug(obj["slug"])
    description = _optional_text(obj, "description") if "description" in obj else ABSENT
    icon = _optional_text(obj, "icon") if "icon" in obj else ABSENT
    resources = _resources(obj["resources"]) if "resources" in obj else ABSENT
    conditions = obj.get("conditions", ABSENT)
    return GroupUpdated(group_id, name, slug, description, icon, resources, conditions)


def _member_command(
    factory: Callable[[str, str], GroupCommand],
) -> Callable[[Mapping[str, object]], Command]:
    def parse(obj: Mapping[str, object]) -> Command:
        return factory(_id(obj, "group_id"), _id(obj, "member_id"))

    return parse


def _check_options_fit(value_type: ValueType | Absent, options: object) -> None:
    if options is not None and value_type is not ABSENT and value_type not in SELECT_TYPES:
        raise _invalid(f"'options' are only allowed for select types, not '{value_type}'")


def _defined(source: str) -> Callable[[Mapping[str, object]], Command]:
    key = f"{source}_id"

    def parse(obj: Mapping[str, object]) -> Command:
        ident = _id(obj, key)
        name = _required_name(obj)
        value_type = _value_type(obj.get("value_type"))
        raw = obj.get("options")
        _check_options_fit(value_type, raw)
        options: tuple[str, ...] | None = None
        if value_type in SELECT_TYPES:
            options = () if raw is None else _options(raw)
        if source == "property":
            return PropertyDefined(ident, name, value_type, options)
        return QuestionDefined(ident, name, value_type, options)

    return parse


def _updated(source: str) -> Callable[[Mapping[str, object]], Command]:
    key = f"{source}_id"

    def parse(obj: Mapping[str, object]) -> Command:
        ident = _id(obj, key)
        name: str | Absent = ABSENT
        if "name" in obj:
            if obj["name"] is None:
                raise _invalid("'name' cannot be cleared")
            name = _name(obj["name"])
        value_type: ValueType | Absent = ABSENT
        if obj.get("value_type") is not None:
            value_type = _value_type(obj["value_type"])
        raw = obj.get("options")
        _check_options_fit(value_type, raw)
        options = ABSENT if raw is None else _options(raw)
        if source == "property":
            return PropertyUpdated(ident, name, value_type, options)
        return QuestionUpdated(ident, name, value_type, options)

    return parse


def _deleted(source: str) -> Callable[[Mapping[str, object]], Command]:
    key = f"{source}_id"

    def parse(obj: Mapping[str, object]) -> Command:
        ident = _id(obj, key)
        return PropertyDeleted(ident) if source == "property" else QuestionDeleted(ident)

    return parse


def _option_removed(source: str) -> Callable[[Mapping[str, object]], Command]:
    key = f"{source}_id"

    def parse(obj: Mapping[str, object]) -> Command:
        ident, option = _id(obj, key), _id(obj, "option")
        if source == "property":
            return PropertyOptionRemoved(ident, option)
        return QuestionOptionRemoved(ident, option)

    return parse


def _set_groups(value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise _invalid("'groups' must be a list of group ids")
    if not 1 <= len(value) <= MAX_SET_GROUPS:
        raise _invalid(f"'groups' must hold 1 to {MAX_SET_GROUPS} group ids")
    groups = tuple(_check_id(g, f"'groups[{i}]'") for i, g in enumerate(value))
    if len(set(groups)) != len(groups):
        raise _invalid("'groups' must not name a group twice")
    return groups


def _fallback(value: object) -> str:
    text = _text(value, "fallback")
    if not text.strip():
        raise _invalid("'fallback' must not be blank")
    return text


def _set_defined(obj: Mapping[str, object]) -> Command:
    set_id = _id(obj, "set_id")
    name = _required_name(obj)
    if obj.get("groups") is None:
        raise _invalid("'groups' is required")
    if obj.get("fallback") is None:
        raise _invalid("'fallback' is required")
    return SegmentSetDefined(set_id, name, _set_groups(obj["groups"]), _fallback(obj["fallback"]))


def _set_updated(obj: Mapping[str, object]) -> Command:
    set_id = _id(obj, "set_id")
    name: str | Absent = ABSENT
    if "name" in obj:
        if obj["name"] is None:
            raise _invalid("'name' cannot be cleared")
        name = _name(obj["name"])
    groups: tuple[str, ...] | Absent = ABSENT
    if obj.get("groups") is not None:
        groups = _set_groups(obj["groups"])
    fallback: str | Absent = ABSENT
    if obj.get("fallback") is not None:
        fallback = _fallback(obj["fallback"])
    return SegmentSetUpdated(set_id, name, groups, fallback)


_PARSERS: Mapping[str, Callable[[Mapping[str, object]], Command]] = {
    "group.created": _group_created,
    "group.updated": _group_updated,
    "group.deactivated": lambda obj: GroupDeactivated(_id(obj, "group_id")),
    "group.activated": lambda obj: GroupActivated(_id(obj, "group_id")),
    "group.deleted": lambda obj: GroupDeleted(_id(obj, "group_id")),
    "group.member_added": _member_command(GroupMemberAdded),
    "group.member_removed": _member_command(GroupMemberRemoved),
    "group.blacklisted": _member_command(GroupBlacklisted),
    "group.unblacklisted": _member_command(GroupUnblacklisted),
    "segment_set.defined": _set_defined,
    "segment_set.updated": _set_updated,
    "segment_set.deleted": lambda obj: SegmentSetDeleted(_id(obj, "set_id")),
    **{
        f"{source}.{verb}": make(source)
        for source in ("property", "question")
        for verb, make in (
            ("defined", _defined),
            ("updated", _updated),
            ("deleted", _deleted),
            ("option_removed", _option_removed),
        )
    },
}

COMMAND_TYPES: frozenset[str] = frozenset(_PARSERS)
"""Every ``type`` of the ``group-changes`` topic."""


def parse_command(obj: Mapping[str, object]) -> Command:
    """The command ``obj`` (one decoded ``group-changes`` event) stands for.

    Raises ``RuleError("invalid", …)`` for an unknown ``type`` or a missing or malformed field
    (the message names it), and ``RuleError("triggers_immutable", …)`` for a ``kind`` field on
    ``group.updated``.
    """
    kind = obj.get("type")
    parser = _PARSERS.get(kind) if isinstance(kind, str) else None
    if parser is None:
        raise _invalid(f"unknown command type {kind!r}")
    return parser(obj)
