"""The native extension (``_native.c``): built by ``pip install`` (setup.py), or None.

It holds the two hot loops of a member event: the condition evaluator
(:mod:`smartgroups.core.conditions.native` lowers trees for it) and the cascade
(:func:`smartgroups.core.matching.cascade`). Where it is missing (the package run from a source
tree that was never installed), both stay in Python: the same answers, more slowly.

``SMARTGROUPS_NATIVE=0`` in the environment turns it off on purpose: the test suite runs its
unit and property tests that way too, so the Python reference stays correct on its own. (The
one variable read outside :class:`~smartgroups.settings.Settings`: the evaluator is chosen when
the core is imported, before any settings exist.)

The C code and the Python code that builds its nodes share enums (node kinds, value sources,
conversions, comparisons, the cascade's node fields). The extension publishes its values as
``LAYOUT``, and each Python module that writes them calls :func:`check_layout` at import: a build
whose enums differ from the Python side refuses to load rather than answer wrongly.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from smartgroups.errors import SmartGroupsError

try:
    from smartgroups.core import _native
except ImportError:  # pragma: no cover - the installed package always has it
    _native = None  # type: ignore[assignment]

NATIVE_ENV = "SMARTGROUPS_NATIVE"
"""Set to ``0`` to run without the extension (the Python reference)."""

if os.environ.get(NATIVE_ENV, "1") == "0":
    _native = None  # type: ignore[assignment]

NATIVE = _native

_checked: set[str] = set()


class LayoutMismatch(SmartGroupsError, ImportError):
    """The built extension's enums differ from the Python side's: rebuild (``pip install -e .``)."""


def check_layout(expected: Mapping[str, int], layout: Mapping[str, int] | None = None) -> None:
    """Raise :class:`LayoutMismatch` unless the extension's ``LAYOUT`` has ``expected``'s values.

    ``layout`` defaults to the built extension's (nothing to check when it is not loaded).
    """
    _checked.update(expected)
    if layout is None:
        if NATIVE is None:
            return
        layout = NATIVE.LAYOUT
    wrong = [
        f"{name}: C {layout.get(name)!r}, Python {value!r}"
        for name, value in expected.items()
        if layout.get(name) != value
    ]
    if wrong:
        raise LayoutMismatch(
            "smartgroups.core._native was built from other enums than this source ("
            + "; ".join(wrong)
            + "): rebuild it with pip install -e ."
        )


def checked_names() -> frozenset[str]:
    """The ``LAYOUT`` names the Python side has checked so far (a test holds this to all)."""
    return frozenset(_checked)
