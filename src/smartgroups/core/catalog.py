"""The definitions of one space — groups, properties, questions — and the guards of contract §3.

:class:`SpaceCatalog` applies :mod:`~smartgroups.core.commands` in the space's one total order
and answers each with an :class:`Outcome`: accepted (with the group as it now is and an
``effect`` tag for the member side) or rejected with the contract's code. Guards never scan:
reverse indexes map each property, question, ``(field, option)`` and group to the existing
groups whose triggers name it.

Static memberships and blacklists are *not* kept here (a space may have millions); the member
side holds them. So ``group.member_added`` on an existing static group is always accepted with
effect ``member_added`` and the member side decides whether anything changes.

Decisions where the contract is silent:

* **Existing** means created and not deleted, active or not. Deactivated groups count for the
  ``*_in_use`` and ``group_in_use`` guards (they can be reactivated), and may be named by a new
  group's ``groups`` trigger (a member is simply in no inactive group).
* **Deleting** a group frees its id and slug; a group with the same id can be created again.
  It also frees everything the group's triggers named: a property used only by a deleted group
  is deletable again.
* **Conditions** are parsed at ``group.created``, and at each ``group.updated`` with
  ``conditions`` of a group created with ``editable: true``, against the current definitions
  (properties and questions with their types and options; groups = the existing groups other
  than the group itself). A new tree that names a group which depends on the edited one (at any
  depth) is rejected with ``cycle``, so the ``groups`` references always form a DAG. An edit
  re-indexes the group: the guards follow the *current* tree (what only the old tree named is
  free again). ``conditions`` on a group that is not editable is ``triggers_immutable``, even
  when it equals the current tree; on an editable group an identical tree is a no-op.
  ``conditions: null`` on an editable group is ``invalid``.
* **Segment sets** (contract section 9) are kept here with their guards: every listed group
  must exist (``unknown_reference``), a group a set names cannot be deleted (``group_in_use``),
  ``segment_set_exists`` / ``segment_set_not_found``. A set may name inactive groups.
* **Slugs**: an explicit slug (normalised by the command parser) must be free, else
  ``slug_taken``. Without one, a slug is **derived** from the name (else the group id, else
  ``group``); if that is taken, ``-2``, ``-3`` … ``-100`` is appended (first free), then the
  normalised group id (``team-g42``) — never a rejection, and a pure function of the state.
  So every group has a slug. ``group.updated`` with ``"slug": null`` derives it again from the
  (possibly new) name; renaming alone keeps the slug (links stay stable).
* **No-ops** are accepted with effect None: deactivating an inactive group, activating an
  active one, an update or definition change that changes nothing, removing an option that is
  not there (compared casefolded). Membership and blacklist commands always carry their effect.
* **Options** are matched casefolded (as triggers compare them): removing ``"Tennis"`` removes
  ``"tennis"``. Changing a property's ``value_type`` while an existing group's triggers use it
  is ``property_in_use``; changing it when unused keeps the options when the new type is a
  select type too, and drops them otherwise.
* A :class:`Group` carries a snapshot of the definitions its conditions were parsed against
  (only the ones they name), so :meth:`Group.from_json` rebuilds it anywhere without the
  catalog. The snapshot never goes stale: what the triggers name cannot be deleted, retyped or
  have its named options removed while the group exists.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, cast

from smartgroups.core.commands import (
    ABSENT,
    SELECT_TYPES,
    Command,
    GroupActivated,
    GroupBlacklisted,
    GroupCreated,
    GroupDeactivated,
    GroupDeleted,
    GroupKind,
    GroupMemberAdded,
    GroupMemberRemoved,
    GroupUnblacklisted,
    GroupUpdated,
    PropertyDefined,
    PropertyDeleted,
    PropertyOptionRemoved,
    PropertyUpdated,
    QuestionDefined,
    QuestionDeleted,
    QuestionOptionRemoved,
    QuestionUpdated,
    Resource,
    SegmentSetDefined,
    SegmentSetDeleted,
    SegmentSetUpdated,
)
from smartgroups.core.conditions import Condition, References, parse_conditions, references
from smartgroups.core.fields import PROFILE_FIELDS, FieldSchema, FieldSpec, StaticFieldSchema
from smartgroups.core.segments import SegmentSet
from smartgroups.core.slug import normalize_slug, with_suffix
from smartgroups.core.values import ValueType, fold
from smartgroups.errors import RuleError

EFFECTS = frozenset(
    {
        "group_created",
        "group_updated",
        "group_edited",
        "group_activated",
        "group_deactivated",
        "group_deleted",
        "member_added",
        "member_removed",
        "blacklisted",
        "unblacklisted",
        "definition",
        "segment_set_defined",
        "segment_set_updated",
        "segment_set_deleted",
    }
)
"""Every ``Outcome.effect`` of an accepted command that changed something."""

DERIVED_SUFFIXES = 100
"""Numeric suffixes tried for a derived slug before the group id is used instead."""

FORMAT_VERSION = 1
"""Version of the JSON written by :meth:`SpaceCatalog.to_json`."""


# -- groups ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Group:
    """A group as it now is. ``conditions`` and friends are None for static groups.

    ``schema`` is the snapshot of the definitions the conditions were parsed against (the
    properties, questions and groups they name); None for static groups.
    """

    group_id: str
    name: str
    kind: GroupKind
    slug: str
    description: str | None = None
    icon: str | None = None
    resources: tuple[Resource, ...] = ()
    conditions: Condition | None = None
    conditions_raw: object | None = None
    references: References | None = None
    active: bool = True
    schema: StaticFieldSchema | None = None
    editable: bool = False

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict that :meth:`from_json` turns back into an equal group."""
        doc: dict[str, Any] = {
            "group_id": self.group_id,
            "name": self.name,
            "kind": self.kind,
            "slug": self.slug,
            "description": self.description,
            "icon": self.icon,
            "resources": [r.to_json() for r in self.resources],
            "active": self.active,
        }
        if self.kind == "smart":
            doc["conditions"] = self.conditions_raw
            doc["schema"] = _schema_to_json(self.schema or StaticFieldSchema())
            if self.editable:
                doc["editable"] = True
        return doc

    @classmethod
    def from_json(cls, doc: Mapping[str, Any], schema: FieldSchema | None = None) -> Group:
        """Rebuild a group from :meth:`to_json`; conditions are parsed again.

        By default against the group's own definitions snapshot, so no catalog is needed;
        ``schema`` overrides it. Raises ``RuleError`` if the conditions no longer parse.
        """
        kind = cast(GroupKind, doc["kind"])
        group = cls(
            group_id=doc["group_id"],
            name=doc["name"],
            kind=kind,
            slug=doc["slug"],
            description=doc.get("description"),
            icon=doc.get("icon"),
            resources=tuple(Resource(r["type"], r["id"]) for r in doc.get("resources", ())),
            active=bool(doc.get("active", True)),
            editable=bool(doc.get("editable", False)),
        )
        if kind != "smart":
            return group
        snapshot = _schema_from_json(doc.get("schema") or {})
        conditions = parse_conditions(doc["conditions"], schema or snapshot)
        return replace(
            group,
            conditions=conditions,
            conditions_raw=doc["conditions"],
            references=references(conditions),
            schema=snapshot,
        )


def _spec_to_json(spec: FieldSpec) -> list[Any]:
    return [spec.value_type, None if spec.options is None else sorted(spec.options)]


def _spec_from_json(doc: list[Any]) -> FieldSpec:
    value_type, options = doc
    return FieldSpec(value_type, None if options is None else frozenset(options))


def _schema_to_json(schema: StaticFieldSchema) -> dict[str, Any]:
    return {
        "properties": {k: _spec_to_json(v) for k, v in schema.properties.items()},
        "questions": {k: _spec_to_json(v) for k, v in schema.questions.items()},
        "groups": sorted(schema.groups),
    }


def _schema_from_json(doc: Mapping[str, Any]) -> StaticFieldSchema:
    return StaticFieldSchema(
        properties={k: _spec_from_json(v) for k, v in doc.get("properties", {}).items()},
        questions={k: _spec_from_json(v) for k, v in doc.get("questions", {}).items()},
        groups=frozenset(doc.get("groups", ())),
    )


# -- property and question definitions ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Definition:
    """A property or question definition; ``options`` is None for non-select types."""

    ident: str
    name: str
    value_type: ValueType
    options: tuple[str, ...] | None
    spec: FieldSpec = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "spec", FieldSpec.define(self.value_type, self.options))

    def to_json(self) -> list[Any]:
        options = None if self.options is None else list(self.options)
        return [self.ident, self.name, self.value_type, options]

    @classmethod
    def from_json(cls, doc: list[Any]) -> Definition:
        ident, name, value_type, options = doc
        return cls(ident, name, value_type, None if options is None else tuple(options))


@dataclass(frozen=True, slots=True)
class Outcome:
    """The answer to one command.

    ``group`` is the group after the command (for ``group.deleted``: as it was), for group
    commands that were accepted. ``effect`` is one of :data:`EFFECTS`, or None for an accepted
    command that changed nothing and for rejections (which carry ``code`` and ``message``).
    """

    accepted: bool
    code: str | None = None
    message: str | None = None
    group: Group | None = None
    effect: str | None = None
    segment_set: SegmentSet | None = None


def _accept(effect: str | None, group: Group | None = None) -> Outcome:
    return Outcome(True, group=group, effect=effect)


def _accept_set(effect: str | None, segment_set: SegmentSet) -> Outcome:
    return Outcome(True, effect=effect, segment_set=segment_set)


def _reject(code: str, message: str) -> Outcome:
    return Outcome(False, code=code, message=message)


class _ParseSchema:
    """The catalog's definitions as ``parse_conditions`` sees them while ``exclude`` is created."""

    __slots__ = ("catalog", "exclude")

    def __init__(self, catalog: SpaceCatalog, exclude: str) -> None:
        self.catalog = catalog
        self.exclude = exclude

    def resolve(self, field: str) -> FieldSpec | None:
        return self.catalog.resolve(field)

    def has_group(self, group_id: str) -> bool:
        return group_id != self.exclude and group_id in self.catalog.groups


class _Users:
    """A reverse index: key → ids of the existing groups whose triggers name it."""

    __slots__ = ("by_key",)

    def __init__(self) -> None:
        self.by_key: dict[Any, set[str]] = {}

    def add(self, keys: Iterable[Any], group_id: str) -> None:
        for key in keys:
            self.by_key.setdefault(key, set()).add(group_id)

    def discard(self, keys: Iterable[Any], group_id: str) -> None:
        for key in keys:
            users = self.by_key.get(key)
            if users is not None:
                users.discard(group_id)
                if not users:
                    del self.by_key[key]

    def get(self, key: Any) -> frozenset[str]:
        return frozenset(self.by_key.get(key, ()))


# -- the catalog -------------------------------------------------------------------------------


class SpaceCatalog:
    """The definitions of one space; see the module docstring for the rules it enforces."""

    __slots__ = (
        "_docs",
        "_group_users",
        "_groups",
        "_option_users",
        "_properties",
        "_property_users",
        "_question_users",
        "_questions",
        "_set_users",
        "_sets",
        "_slugs",
    )

    def __init__(self) -> None:
        self._groups: dict[str, Group] = {}
        self._docs: dict[str, dict[str, Any]] = {}
        self._properties: dict[str, Definition] = {}
        self._questions: dict[str, Definition] = {}
        self._slugs: dict[str, str] = {}
        self._property_users = _Users()
        self._question_users = _Users()
        self._option_users = _Users()
        self._group_users = _Users()
        self._sets: dict[str, SegmentSet] = {}
        self._set_users = _Users()  # group id -> ids of the segment sets naming it

    # -- read access ---------------------------------------------------------------------------
    @property
    def groups(self) -> Mapping[str, Group]:
        """The existing groups by id (read-only view)."""
        return MappingProxyType(self._groups)

    @property
    def properties(self) -> Mapping[str, Definition]:
        return MappingProxyType(self._properties)

    @property
    def questions(self) -> Mapping[str, Definition]:
        return MappingProxyType(self._questions)

    @property
    def segment_sets(self) -> Mapping[str, SegmentSet]:
        """The segment sets by id (read-only view)."""
        return MappingProxyType(self._sets)

    def group_by_slug(self, slug: str) -> Group | None:
        group_id = self._slugs.get(slug)
        return None if group_id is None else self._groups[group_id]

    def preview_group(self, raw: object) -> Group:
        """The smart group (id ``preview``) that ``raw`` conditions would make if it were created
        now, validated exactly as ``group.created`` validates them (any existing group may be
        named); raises :class:`~smartgroups.errors.RuleError` with the same code and message.
        Its JSON carries the definitions it needs, so any worker can evaluate it."""
        if raw is None:
            raise RuleError("invalid", "'conditions' is required for a smart group")
        conditions = parse_conditions(raw, _ParseSchema(self, ""))
        refs = references(conditions)
        return Group(
            group_id="preview",
            name="preview",
            kind="smart",
            slug="preview",
            conditions=conditions,
            conditions_raw=raw,
            references=refs,
            schema=self._snapshot(refs),
        )

    def resolve(self, field: str) -> FieldSpec | None:
        """The spec of any field name (``profile.*``, ``groups``, ``property.*``, ``answer.*``)."""
        builtin = PROFILE_FIELDS.get(field)
        if builtin is not None:
            return builtin
        source, _, ident = field.partition(".")
        definitions = {"property": self._properties, "answer": self._questions}.get(source)
        definition = None if definitions is None else definitions.get(ident)
        return None if definition is None else definition.spec

    def has_group(self, group_id: str) -> bool:
        return group_id in self._groups

    def users_of_group(self, group_id: str) -> frozenset[str]:
        """Ids of the existing groups whose ``groups`` triggers name ``group_id``."""
        return self._group_users.get(group_id)

    # -- commands ------------------------------------------------------------------------------
    def apply(self, cmd: Command) -> Outcome:
        """Apply ``cmd`` if the guards allow it; never raises for a parsed command."""
        match cmd:
            case GroupCreated():
                return self._create(cmd)
            case GroupUpdated():
                return self._update(cmd)
            case GroupDeactivated() | GroupActivated():
                return self._set_active(cmd.group_id, isinstance(cmd, GroupActivated))
            case GroupDeleted():
                return self._delete(cmd.group_id)
            case GroupMemberAdded() | GroupMemberRemoved():
                added = isinstance(cmd, GroupMemberAdded)
                return self._member(
                    cmd.group_id, "static", "member_added" if added else "member_removed"
                )
            case GroupBlacklisted() | GroupUnblacklisted():
                on = isinstance(cmd, GroupBlacklisted)
                return self._member(cmd.group_id, "smart", "blacklisted" if on else "unblacklisted")
            case PropertyDefined() | QuestionDefined():
                return self._define(cmd)
            case PropertyUpdated() | QuestionUpdated():
                return self._redefine(cmd)
            case PropertyDeleted() | QuestionDeleted():
                return self._undefine(cmd)
            case PropertyOptionRemoved() | QuestionOptionRemoved():
                return self._remove_option(cmd)
            case SegmentSetDefined():
                return self._define_set(cmd)
            case SegmentSetUpdated():
                return self._update_set(cmd)
            case SegmentSetDeleted():
                return self._delete_set(cmd)
        raise TypeError(f"not a command: {cmd!r}")  # pragma: no cover - exhaustive above

    # -- groups --------------------------------------------------------------------------------
    def _create(self, cmd: GroupCreated) -> Outcome:
        if cmd.group_id in self._groups:
            return _reject("group_exists", f"group '{cmd.group_id}' already exists")
        if cmd.slug is not None and cmd.slug in self._slugs:
            return _reject("slug_taken", f"slug '{cmd.slug}' is used by another group")
        slug = cmd.slug or self._derive_slug(cmd.name, cmd.group_id)
        group = Group(
            group_id=cmd.group_id,
            name=cmd.name,
            kind=cmd.kind,
            slug=slug,
            description=cmd.description,
            icon=cmd.icon,
            resources=cmd.resources,
            editable=cmd.editable and cmd.kind == "smart",
        )
        if cmd.kind == "smart":
            try:
                conditions = parse_conditions(cmd.conditions_raw, _ParseSchema(self, cmd.group_id))
            except RuleError as error:
                return _reject(error.code, error.message)
            refs = references(conditions)
            group = replace(
                group,
                conditions=conditions,
                conditions_raw=cmd.conditions_raw,
                references=refs,
                schema=self._snapshot(refs),
            )
        self._install(group)
        return _accept("group_created", group)

    def _update(self, cmd: GroupUpdated) -> Outcome:
        current = self._groups.get(cmd.group_id)
        if current is None:
            return _not_found(cmd.group_id)
        name = current.name if cmd.name is ABSENT else cmd.name
        slug = current.slug
        if cmd.slug is None:
            slug = self._derive_slug(name, cmd.group_id)
        elif cmd.slug is not ABSENT:
            owner = self._slugs.get(cmd.slug)
            if owner is not None and owner != cmd.group_id:
                return _reject("slug_taken", f"slug '{cmd.slug}' is used by another group")
            slug = cmd.slug
        group = replace(
            current,
            name=name,
            slug=slug,
            description=current.description if cmd.description is ABSENT else cmd.description,
            icon=current.icon if cmd.icon is ABSENT else cmd.icon,
            resources=current.resources if cmd.resources is ABSENT else cmd.resources,
        )
        if cmd.conditions_raw is not ABSENT and not current.editable:
            return _reject(
                "triggers_immutable",
                f"the conditions of group '{cmd.group_id}' can never change "
                '(it was not created with "editable": true)',
            )
        if cmd.conditions_raw is not ABSENT and cmd.conditions_raw != current.conditions_raw:
            edited = self._edit(group, cmd.conditions_raw)
            if isinstance(edited, Outcome):
                return edited
            self._uninstall(current)
            self._install(edited)
            return _accept("group_edited", edited)
        if group == current:
            return _accept(None, current)
        self._replace(current, group)
        return _accept("group_updated", group)

    def _edit(self, group: Group, raw: object) -> Group | Outcome:
        """``group`` with the new conditions ``raw``, parsed and guarded as at creation, or the
        rejection (``cycle`` when a named group depends on ``group``, at any depth)."""
        if raw is None:
            return _reject("invalid", "'conditions' is required for a smart group")
        try:
            conditions = parse_conditions(raw, _ParseSchema(self, group.group_id))
        except RuleError as error:
            return _reject(error.code, error.message)
        refs = references(conditions)
        loop = self._path_to(group.group_id, refs.groups)
        if loop is not None:
            path = " -> ".join(f"'{g}'" for g in (group.group_id, *loop))
            return _reject(
                "cycle", f"the new conditions would make groups depend on each other: {path}"
            )
        return replace(
            group,
            conditions=conditions,
            conditions_raw=raw,
            references=refs,
            schema=self._snapshot(refs),
        )

    def _path_to(self, target: str, start: Iterable[str]) -> list[str] | None:
        """A chain of ``groups`` references from one of ``start`` to ``target``, if any."""
        parents: dict[str, str | None] = {}
        stack: list[tuple[str, str | None]] = [(g, None) for g in sorted(start)]
        while stack:
            group_id, parent = stack.pop()
            if group_id in parents:
                continue
            parents[group_id] = parent
            if group_id == target:
                path: list[str] = []
                node: str | None = group_id
                while node is not None:
                    path.append(node)
                    node = parents[node]
                return path[::-1]
            group = self._groups.get(group_id)
            refs = group.references if group is not None else None
            if refs is not None:
                stack.extend((named, group_id) for named in sorted(refs.groups))
        return None

    def _set_active(self, group_id: str, active: bool) -> Outcome:
        current = self._groups.get(group_id)
        if current is None:
            return _not_found(group_id)
        if current.active == active:
            return _accept(None, current)
        group = replace(current, active=active)
        self._replace(current, group)
        return _accept("group_activated" if active else "group_deactivated", group)

    def _delete(self, group_id: str) -> Outcome:
        current = self._groups.get(group_id)
        if current is None:
            return _not_found(group_id)
        users = self._group_users.get(group_id)
        if users:
            return _reject(
                "group_in_use", f"group '{group_id}' is named by the triggers of {_ids(users)}"
            )
        sets = self._set_users.get(group_id)
        if sets:
            return _reject(
                "group_in_use",
                f"group '{group_id}' is named by {_ids(sets, kind='segment set')}",
            )
        self._uninstall(current)
        return _accept("group_deleted", current)

    def _member(self, group_id: str, kind: str, effect: str) -> Outcome:
        current = self._groups.get(group_id)
        if current is None:
            return _not_found(group_id)
        if current.kind != kind:
            code = "not_static" if kind == "static" else "not_smart"
            return _reject(code, f"group '{group_id}' is {current.kind}, not {kind}")
        return _accept(effect, current)

    def _derive_slug(self, name: str, group_id: str) -> str:
        """The first free of ``base``, ``base-2`` … ``base-{DERIVED_SUFFIXES}``, then
        ``base-{group id}``, ``base-{group id}-2`` … (bounded work per create; deterministic)."""

        def free(slug: str) -> bool:
            return self._slugs.get(slug, group_id) == group_id

        base = normalize_slug(name) or normalize_slug(group_id) or "group"
        if free(base):
            return base
        for n in range(2, DERIVED_SUFFIXES + 1):
            if free(candidate := with_suffix(base, n)):
                return candidate
        base = with_suffix(base, normalize_slug(group_id) or "group")
        candidate, n = base, 2
        while not free(candidate):
            candidate, n = with_suffix(base, n), n + 1
        return candidate

    def _snapshot(self, refs: References) -> StaticFieldSchema:
        return StaticFieldSchema(
            properties={p: self._properties[p].spec for p in refs.properties},
            questions={q: self._questions[q].spec for q in refs.questions},
            groups=frozenset(refs.groups),
        )

    # -- group bookkeeping: the only places the indexes change ---------------------------------
    def _install(self, group: Group) -> None:
        self._groups[group.group_id] = group
        self._docs[group.group_id] = group.to_json()
        self._slugs[group.slug] = group.group_id
        refs = group.references
        if refs is not None:
            self._property_users.add(refs.properties, group.group_id)
            self._question_users.add(refs.questions, group.group_id)
            self._option_users.add(_option_keys(refs), group.group_id)
            self._group_users.add(refs.groups, group.group_id)

    def _uninstall(self, group: Group) -> None:
        del self._groups[group.group_id]
        del self._docs[group.group_id]
        if self._slugs.get(group.slug) == group.group_id:
            del self._slugs[group.slug]
        refs = group.references
        if refs is not None:
            self._property_users.discard(refs.properties, group.group_id)
            self._question_users.discard(refs.questions, group.group_id)
            self._option_users.discard(_option_keys(refs), group.group_id)
            self._group_users.discard(refs.groups, group.group_id)

    def _replace(self, current: Group, group: Group) -> None:
        """Swap in a changed version of a group (same conditions, so same references)."""
        if self._slugs.get(current.slug) == current.group_id:
            del self._slugs[current.slug]
        self._slugs[group.slug] = group.group_id
        self._groups[group.group_id] = group
        self._docs[group.group_id] = group.to_json()

    # -- segment sets (contract section 9) -----------------------------------------------------
    def _set_groups_exist(self, groups: Iterable[str]) -> Outcome | None:
        for group_id in groups:
            if group_id not in self._groups:
                message = f"segment set names group '{group_id}', which does not exist"
                return _reject("unknown_reference", message)
        return None

    def _define_set(self, cmd: SegmentSetDefined) -> Outcome:
        if cmd.set_id in self._sets:
            return _reject("segment_set_exists", f"segment set '{cmd.set_id}' already exists")
        missing = self._set_groups_exist(cmd.groups)
        if missing is not None:
            return missing
        segment_set = SegmentSet(cmd.set_id, cmd.name, cmd.groups, cmd.fallback)
        self._sets[cmd.set_id] = segment_set
        self._set_users.add(cmd.groups, cmd.set_id)
        return _accept_set("segment_set_defined", segment_set)

    def _update_set(self, cmd: SegmentSetUpdated) -> Outcome:
        current = self._sets.get(cmd.set_id)
        if current is None:
            return _not_found_set(cmd.set_id)
        groups = current.groups if cmd.groups is ABSENT else cmd.groups
        missing = self._set_groups_exist(groups)
        if missing is not None:
            return missing
        segment_set = SegmentSet(
            cmd.set_id,
            current.name if cmd.name is ABSENT else cmd.name,
            groups,
            current.fallback if cmd.fallback is ABSENT else cmd.fallback,
        )
        if segment_set == current:
            return _accept_set(None, current)
        self._set_users.discard(current.groups, cmd.set_id)
        self._set_users.add(groups, cmd.set_id)
        self._sets[cmd.set_id] = segment_set
        return _accept_set("segment_set_updated", segment_set)

    def _delete_set(self, cmd: SegmentSetDeleted) -> Outcome:
        current = self._sets.pop(cmd.set_id, None)
        if current is None:
            return _not_found_set(cmd.set_id)
        self._set_users.discard(current.groups, cmd.set_id)
        return _accept_set("segment_set_deleted", current)

    # -- properties and questions --------------------------------------------------------------
    def _table(self, cmd: Command) -> tuple[str, str, dict[str, Definition], _Users]:
        """(source, field prefix, definitions, users) of a property or question command."""
        if isinstance(
            cmd, PropertyDefined | PropertyUpdated | PropertyDeleted | PropertyOptionRemoved
        ):
            return "property", "property", self._properties, self._property_users
        return "question", "answer", self._questions, self._question_users

    def _define(self, cmd: PropertyDefined | QuestionDefined) -> Outcome:
        source, _, table, _ = self._table(cmd)
        ident = cmd.property_id if isinstance(cmd, PropertyDefined) else cmd.question_id
        if ident in table:
            return _reject(f"{source}_exists", f"{source} '{ident}' already exists")
        table[ident] = Definition(ident, cmd.name, cmd.value_type, cmd.options)
        return _accept("definition")

    def _redefine(self, cmd: PropertyUpdated | QuestionUpdated) -> Outcome:
        source, prefix, table, users = self._table(cmd)
        ident = cmd.property_id if isinstance(cmd, PropertyUpdated) else cmd.question_id
        current = table.get(ident)
        if current is None:
            return _reject(f"{source}_not_found", f"{source} '{ident}' does not exist")
        value_type = current.value_type if cmd.value_type is ABSENT else cmd.value_type
        if value_type != current.value_type and users.get(ident):
            return _reject(
                f"{source}_in_use",
                f"the type of {source} '{ident}' cannot change: used by the triggers of "
                f"{_ids(users.get(ident))}",
            )
        options: tuple[str, ...] | None = None
        if value_type in SELECT_TYPES:
            options = current.options or ()
            if cmd.options is not ABSENT:
                options = cmd.options
        elif cmd.options is not ABSENT:
            return _reject("invalid", "'options' are only allowed for select types")
        kept = frozenset(fold(o) for o in options or ())
        dropped = {fold(o) for o in current.options or ()} - kept
        in_use = self._options_in_use(prefix, ident, dropped)
        if in_use is not None:
            return in_use
        name = current.name if cmd.name is ABSENT else cmd.name
        definition = Definition(ident, name, value_type, options)
        if definition == current:
            return _accept(None)
        table[ident] = definition
        return _accept("definition")

    def _undefine(self, cmd: PropertyDeleted | QuestionDeleted) -> Outcome:
        source, _, table, users = self._table(cmd)
        ident = cmd.property_id if isinstance(cmd, PropertyDeleted) else cmd.question_id
        if ident not in table:
            return _reject(f"{source}_not_found", f"{source} '{ident}' does not exist")
        if users.get(ident):
            return _reject(
                f"{source}_in_use",
                f"{source} '{ident}' is used by the triggers of {_ids(users.get(ident))}",
            )
        del table[ident]
        return _accept("definition")

    def _remove_option(self, cmd: PropertyOptionRemoved | QuestionOptionRemoved) -> Outcome:
        source, prefix, table, _ = self._table(cmd)
        ident = cmd.property_id if isinstance(cmd, PropertyOptionRemoved) else cmd.question_id
        current = table.get(ident)
        if current is None:
            return _reject(f"{source}_not_found", f"{source} '{ident}' does not exist")
        folded = fold(cmd.option)
        kept = tuple(o for o in current.options or () if fold(o) != folded)
        if current.options is None or len(kept) == len(current.options):
            return _accept(None)
        in_use = self._options_in_use(prefix, ident, {folded})
        if in_use is not None:
            return in_use
        table[ident] = replace(current, options=kept)
        return _accept("definition")

    def _options_in_use(self, prefix: str, ident: str, dropped: Iterable[str]) -> Outcome | None:
        field_name = f"{prefix}.{ident}"
        for option in sorted(dropped):
            users = self._option_users.get((field_name, option))
            if users:
                return _reject(
                    "option_in_use",
                    f"option '{option}' of '{field_name}' is named by the triggers of "
                    f"{_ids(users)}",
                )
        return None

    # -- persistence ---------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict of the whole catalog (indexes are rebuilt on load, not stored).

        Group documents are cached as groups change, so this costs one list per call; the
        returned structure shares them — do not mutate it.
        """
        return {
            "v": FORMAT_VERSION,
            "groups": list(self._docs.values()),
            "properties": [d.to_json() for d in self._properties.values()],
            "questions": [d.to_json() for d in self._questions.values()],
            "sets": [s.to_json() for s in self._sets.values()],
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> SpaceCatalog:
        """Rebuild a catalog from :meth:`to_json` (group conditions are parsed again)."""
        catalog = cls()
        for raw in doc.get("properties", ()):
            definition = Definition.from_json(raw)
            catalog._properties[definition.ident] = definition
        for raw in doc.get("questions", ()):
            definition = Definition.from_json(raw)
            catalog._questions[definition.ident] = definition
        for raw in doc.get("groups", ()):
            catalog._install(Group.from_json(raw))
        for raw in doc.get("sets", ()):
            segment_set = SegmentSet.from_json(raw)
            catalog._sets[segment_set.set_id] = segment_set
            catalog._set_users.add(segment_set.groups, segment_set.set_id)
        return catalog


def _option_keys(refs: References) -> set[tuple[str, str]]:
    return {(field_name, fold(option)) for field_name, option in refs.options}


def _not_found(group_id: str) -> Outcome:
    return _reject("group_not_found", f"group '{group_id}' does not exist")


def _not_found_set(set_id: str) -> Outcome:
    return _reject("segment_set_not_found", f"segment set '{set_id}' does not exist")


def _ids(group_ids: Iterable[str], limit: int = 5, kind: str = "group") -> str:
    ordered = sorted(group_ids)
    shown = ", ".join(f"'{g}'" for g in ordered[:limit])
    more = len(ordered) - limit
    return f"{kind} {shown}" + (f" and {more} more" if more > 0 else "")
