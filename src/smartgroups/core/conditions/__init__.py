"""Smart-group conditions (contract section 5): parse, render, evaluate, time.

A pure core: stdlib only, no clock (``now`` is always passed in), no environment.

* :func:`parse_conditions` validates wire JSON against a ``FieldSchema`` into a normalised
  tree of :class:`All` / :class:`AnyOf` / :class:`Not` / :class:`Trigger`;
* :func:`render` turns a tree back into (canonical) wire JSON;
* :func:`references` lists what a tree names and reads;
* :func:`evaluate` / :func:`compile_condition` decide a member at an instant;
* :func:`next_change` is the next instant the verdict flips by time alone.

Additions to the agreed API (nothing agreed was changed): ``Trigger.value_type`` (the field's
type at parse time; ``is_set`` and ``references`` use it), ``compile_condition`` and
``Predicate`` (the hot path: compile once, call per member), the limit constants,
``MAX_DURATION``, ``OPS_BY_TYPE``, ``ALL_OPS``, ``TIME_OPS``. Also relied upon by the matching
index: ``evaluate.trigger_test`` / ``evaluate.Test`` (the test of a positive trigger on one
field value) and ``model.positive_twin``. Elsewhere: ``values.format_instant``,
``values.VALUE_TYPES``, ``fields.FieldSpec.define``, ``fields.MEMBER_STATUSES``.

The decisions where the contract is silent are stated where they apply: value reading in
``values``, validation in ``parse``, evaluation in ``evaluate``, time in ``timing``.
"""

from smartgroups.core.conditions.evaluate import Predicate, compile_condition, evaluate
from smartgroups.core.conditions.model import (
    ALL_OPS,
    MAX_DEPTH,
    MAX_LIST_ITEMS,
    MAX_TEXT_CHARS,
    MAX_TRIGGERS,
    OPS_BY_TYPE,
    TIME_OPS,
    All,
    AnyOf,
    Condition,
    Not,
    Trigger,
)
from smartgroups.core.conditions.parse import MAX_DURATION, parse_conditions
from smartgroups.core.conditions.references import References, references
from smartgroups.core.conditions.render import render
from smartgroups.core.conditions.timing import next_change

__all__ = [
    "ALL_OPS",
    "MAX_DEPTH",
    "MAX_DURATION",
    "MAX_LIST_ITEMS",
    "MAX_TEXT_CHARS",
    "MAX_TRIGGERS",
    "OPS_BY_TYPE",
    "TIME_OPS",
    "All",
    "AnyOf",
    "Condition",
    "Not",
    "Predicate",
    "References",
    "Trigger",
    "compile_condition",
    "evaluate",
    "next_change",
    "parse_conditions",
    "references",
    "render",
]
