"""What a tree depends on: the definitions it names and the fields it reads."""

from __future__ import annotations

from dataclasses import dataclass

from smartgroups.core.conditions.model import (
    SELECT_OPS,
    TIME_OPS,
    Condition,
    Trigger,
    triggers_of,
)


@dataclass(frozen=True, slots=True)
class References:
    """The dependencies of a condition tree.

    * ``properties`` / ``questions``: ids named by ``property.*`` / ``answer.*`` fields;
    * ``groups``: group ids named by ``groups`` triggers;
    * ``options``: ``(field, option)`` for every option id named by an eq/neq/in/not_in/has_*
      trigger on a select field other than ``groups`` (e.g. ``("property.p1", "gold")``); option
      ids are folded (``values.fold``), so compare them with a folded id;
    * ``fields``: every field read (``"profile.email"``, ``"property.p1"``, ``"groups"`` …);
    * ``time_relative``: some trigger uses ``within_last``, ``older_than`` or ``within_next``.
    """

    properties: frozenset[str]
    questions: frozenset[str]
    groups: frozenset[str]
    options: frozenset[tuple[str, str]]
    fields: frozenset[str]
    time_relative: bool


def references(cond: Condition) -> References:
    """The :class:`References` of ``cond``."""
    triggers = triggers_of(cond)
    options: set[tuple[str, str]] = set()
    groups: set[str] = set()
    for trigger in triggers:
        named = _named(trigger)
        if trigger.field == "groups":
            groups.update(named)
        elif trigger.value_type in ("single_select", "multi_select"):
            options.update((trigger.field, option) for option in named)
    fields = frozenset(trigger.field for trigger in triggers)
    return References(
        properties=_ids(fields, "property."),
        questions=_ids(fields, "answer."),
        groups=frozenset(groups),
        options=frozenset(options),
        fields=fields,
        time_relative=any(trigger.op in TIME_OPS for trigger in triggers),
    )


def _named(trigger: Trigger) -> set[str]:
    if trigger.op not in SELECT_OPS:
        return set()
    value = trigger.value
    items = value if isinstance(value, frozenset) else {value}
    return {item for item in items if isinstance(item, str)}


def _ids(fields: frozenset[str], prefix: str) -> frozenset[str]:
    return frozenset(field.removeprefix(prefix) for field in fields if field.startswith(prefix))
