"""The suite's pure-Python run: ``SMARTGROUPS_NATIVE=0`` (see ``smartgroups.core.extension``).

``make test`` runs the unit and property tests a second time that way, so the Python reference
evaluator and cascade are held to the same answers on their own. Tests *of the extension itself*
(native against Python, the extension is built) are marked :data:`native_only`: they are skipped
in that run only, with the reason shown, and run in every normal one.
"""

from __future__ import annotations

import os

import pytest

PURE_PYTHON = os.environ.get("SMARTGROUPS_NATIVE", "1") == "0"

native_only = pytest.mark.skipif(
    PURE_PYTHON, reason="SMARTGROUPS_NATIVE=0: the pure-Python run has no extension to test"
)
