"""Identifiers and Kafka keys of the wire contract (contract sections 1 and 2): their one owner.

The pattern, the keys and the deterministic output ids are defined here and nowhere else: the
core's parsers, the edge's decoders, the worker's keys and the JSON Schemas' ``pattern`` (a test
holds ``schemas/`` to :data:`ID_PATTERN`) all use these.

Every id the contract names (``space``, ``member_id``, ``group_id``, ``property_id``,
``question_id``, option ids) matches :data:`ID_PATTERN`: 1 to 200 characters of ASCII letters,
digits and ``_ . @ + -``. There is no ``:`` in an id, because ``:`` joins the parts of keys.

The key builders here do not validate: they are called on ids that already passed the edge.
"""

from __future__ import annotations

import re
from typing import Final

ID_PATTERN: Final = "^[A-Za-z0-9_.@+-]{1,200}$"
"""The contract's id pattern, as written in the JSON Schemas (ECMA-262 / Rust regex syntax)."""

ID_RE: Final = re.compile(r"[A-Za-z0-9_.@+-]{1,200}")
""":data:`ID_PATTERN` for Python's :mod:`re`; use ``ID_RE.fullmatch`` (``$`` would admit a
trailing newline in Python)."""


def is_id(text: object) -> bool:
    """True when ``text`` is a ``str`` matching :data:`ID_PATTERN`."""
    return type(text) is str and ID_RE.fullmatch(text) is not None


def space_key(space: str) -> bytes:
    """Key of ``group-changes`` and ``group-change-results`` records: ``{space}``, UTF-8."""
    return space.encode()


def member_key(space: str, member_id: str) -> bytes:
    """Key of member-keyed topics (inputs, ``membership-changes``): ``{space}:{member_id}``."""
    return f"{space}:{member_id}".encode()


def group_key(space: str, group_id: str) -> bytes:
    """Key of a group's records in the worker's own tables: ``{space}:{group_id}``, UTF-8."""
    return f"{space}:{group_id}".encode()


def catalog_group_key(space: str, group_id: str, version: int) -> bytes:
    """Key of one version of a group's definition in the definitions side's ``catalogs`` table:
    ``{space}:{group_id}:{version:020d}``. The space's own state is under :func:`space_key`;
    :func:`space_prefix` scans its groups' definitions."""
    return b"%s:%020d" % (group_key(space, group_id), version)


def catalog_recent_key(space: str, number: int) -> bytes:
    """Key of one applied command's outputs kept for re-sending, in the ``catalogs`` table:
    ``{space}:~{number:020d}`` (``~`` is no id character: no group's key can be one)."""
    return b"%s~%020d" % (space_prefix(space), number)


def space_prefix(space: str) -> bytes:
    """The prefix every key of ``space`` starts with: ``{space}:``, UTF-8 (for range scans)."""
    return f"{space}:".encode()


def state_key(space: str, group_id: str, member_id: str) -> bytes:
    """Key of ``membership-state`` records: ``{space}:{group_id}:{member_id}``, UTF-8."""
    return f"{space}:{group_id}:{member_id}".encode()


def change_id(space: str, group_id: str, member_id: str, version: int) -> str:
    """``id`` of a ``membership-changes`` event: ``{space}:{group_id}:{member_id}:{version}``.

    Deterministic, so a re-delivered or replayed transition carries the same id (contract §4).
    """
    return f"{space}:{group_id}:{member_id}:{version}"


def set_key(space: str, set_id: str) -> bytes:
    """Key of a segment set's record in the worker's group table: ``{space}#{set_id}``.

    ``#`` is in no id, so it never meets a group's ``{space}:{group_id}`` key, and a scan of
    :func:`space_prefix` (the space's groups) never returns a set.
    """
    return f"{space}#{set_id}".encode()


def set_prefix(space: str) -> bytes:
    """The prefix of every :func:`set_key` of ``space``: ``{space}#``."""
    return f"{space}#".encode()


def segment_state_key(space: str, set_id: str, member_id: str) -> bytes:
    """Key of ``segment-state`` records: ``{space}:{set_id}:{member_id}``, UTF-8 (contract §9)."""
    return f"{space}:{set_id}:{member_id}".encode()


def segment_change_id(space: str, set_id: str, member_id: str, version: int) -> str:
    """``id`` of a ``segment-changes`` event: ``{space}:{set_id}:{member_id}:{version}``."""
    return f"{space}:{set_id}:{member_id}:{version}"
