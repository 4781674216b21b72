"""The native extension (``_native.c``): built by ``pip install`` (setup.py), or None.

It holds the two hot loops of a member event: the condition evaluator
(:mod:`smartgroups.core.conditions.native` lowers trees for it) and the cascade
(:func:`smartgroups.core.matching.cascade`). Where it is missing (the package run from a source
tree that was never installed), both stay in Python: the same answers, more slowly.
"""

from __future__ import annotations

try:
    from smartgroups.core import _native
except ImportError:  # pragma: no cover - the installed package always has it
    _native = None  # type: ignore[assignment]

NATIVE = _native
