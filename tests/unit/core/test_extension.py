"""The C extension and the Python code that writes its nodes agree on every enum, or refuse to load.

A build of ``_native.c`` from other enums than the Python side (a stale ``.so``, a hand edit on one
side) would not fail: it would decide groups wrongly. So the extension publishes its enums as
``LAYOUT`` and the Python side checks them at import.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from tests.native_switch import native_only

import smartgroups.core.conditions.native
import smartgroups.core.matching  # noqa: F401  (imports check their part of the layout)
from smartgroups.core import extension
from smartgroups.core.extension import LayoutMismatch, check_layout


@native_only
def test_every_enum_of_the_extension_is_checked_by_the_python_side() -> None:
    assert extension.NATIVE is not None, "the extension is not built: pip install -e ."
    assert extension.checked_names() == frozenset(extension.NATIVE.LAYOUT)


def test_a_mismatch_refuses_to_load_and_names_the_enum() -> None:
    layout = {"K_STR": 0, "K_BOOL": 1}
    check_layout({"K_STR": 0, "K_BOOL": 1}, layout)
    with pytest.raises(LayoutMismatch, match=r"K_BOOL: C 1, Python 2.*pip install -e \."):
        check_layout({"K_STR": 0, "K_BOOL": 2}, layout)
    with pytest.raises(LayoutMismatch, match="K_NEW: C None"):
        check_layout({"K_NEW": 3}, layout)


def test_smartgroups_native_0_runs_the_python_reference() -> None:
    """``SMARTGROUPS_NATIVE=0``: no extension, and predicates are Python functions that answer."""
    code = (
        "from datetime import UTC, datetime\n"
        "from smartgroups.core import extension\n"
        "from smartgroups.core.conditions import compile_condition, native, parse_conditions\n"
        "from smartgroups.core.fields import StaticFieldSchema\n"
        "from smartgroups.core.snapshot import MemberSnapshot\n"
        "assert extension.NATIVE is None and not native.AVAILABLE\n"
        "cond = parse_conditions({'field': 'profile.email', 'op': 'email_domain',"
        " 'value': ['acme.com']}, StaticFieldSchema())\n"
        "predicate = compile_condition(cond)\n"
        "assert type(predicate).__name__ == 'function', type(predicate)\n"
        "member = MemberSnapshot({'email': 'a@eu.acme.com'}, {}, {}, frozenset())\n"
        "assert predicate(member, datetime.now(UTC)) is True\n"
        "print('pure')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={"SMARTGROUPS_NATIVE": "0", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "pure"
