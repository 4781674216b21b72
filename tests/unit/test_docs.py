"""``docs/`` keeps its lists in step with the code: codes, reasons, causes, topics, variables.

Each list a user relies on is read from the code that defines it and from the table in ``docs/``
that documents it; the two must be the same set. A name the code gains fails here until it is
documented, and a name the docs keep after the code dropped it fails too. The tables are found
by the header of their first column (`code`, `reason`, …), so prose may mention names freely
(for instance what is *not yet* built).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import get_args

import pytest

from smartgroups.core.extension import NATIVE_ENV
from smartgroups.devbroker import cds, fetch, process
from smartgroups.devbroker import config as devbroker_config
from smartgroups.settings import _ENV, Settings
from smartgroups.wire.deadletter import DeadLetterCode
from smartgroups.wire.outputs import ADDED_REASONS, REMOVED_REASONS, CauseKind, RejectionCode
from smartgroups.worker.topology import Topology

DOCS = Path(__file__).resolve().parents[2] / "docs"

Table = list[list[str]]
"""A markdown table: its rows (header first, separator dropped), each a list of cells."""


def tables(page: str) -> list[Table]:
    """Every markdown table of ``docs/{page}``."""
    found: list[Table] = []
    current: Table = []
    for line in (DOCS / page).read_text(encoding="utf-8").splitlines():
        if line.startswith("|"):
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            if not all(re.fullmatch(r":?-+:?", cell) for cell in cells):
                current.append(cells)
        elif current:
            found.append(current)
            current = []
    if current:
        found.append(current)
    return found


def names(cell: str) -> list[str]:
    """The backticked names of a cell (`a` / `b`, `c` → a, b, c)."""
    return re.findall(r"`([^`]+)`", cell)


def column(page: str, header: str) -> list[list[str]]:
    """The body rows of every table of ``page`` whose first header cell is ``header``."""
    rows = [row for table in tables(page) if table[0][0] == header for row in table[1:]]
    assert rows, f"docs/{page} has no table headed {header!r}"
    return rows


def first_names(page: str, header: str) -> set[str]:
    return {name for row in column(page, header) for name in names(row[0])}


def test_the_table_reader() -> None:
    assert names("`a` / `b`, `c` and d") == ["a", "b", "c"]
    assert tables("README.md")[0][0] == ["page", "what it covers"]


def test_every_rejection_code_is_documented_and_no_other() -> None:
    assert first_names("rules.md", "code") == set(get_args(RejectionCode))


def test_every_reason_is_documented_with_its_type() -> None:
    documented: dict[str, set[str]] = {"added": set(), "removed": set()}
    for row in column("outputs.md", "reason"):
        documented[row[1]].update(names(row[0]))
    assert documented == {"added": set(ADDED_REASONS), "removed": set(REMOVED_REASONS)}


def test_every_dead_letter_code_is_documented_and_no_other() -> None:
    assert first_names("outputs.md", "`error.code`") == set(get_args(DeadLetterCode))


def test_every_dead_letter_header_is_documented() -> None:
    from smartgroups.wire.deadletter import DeadLetter, dead_letter_headers

    headers = {name for name, _ in dead_letter_headers(DeadLetter("too_large", "m"), "t", 0, 0)}
    assert first_names("outputs.md", "header") == headers


def test_every_cause_kind_is_documented_and_no_other() -> None:
    assert first_names("outputs.md", "`cause.kind`") == set(get_args(CauseKind))


def code_topics(tmp_path: Path) -> set[str]:
    """Every topic a worker with the default settings uses: the topology's, and those faust
    declares for the app's tables (changelogs) and its leader election."""
    from smartgroups.worker.app import create_app

    settings = Settings(data_dir=tmp_path)
    runtime = create_app(settings)
    changelogs = {table.changelog_topic.get_topic_name() for table in runtime.app.tables.values()}
    leader = runtime.app._leader_assignor._leader_topic_name
    specs = {spec.name for spec in Topology.from_settings(settings).specs()}
    return specs | changelogs | {leader}


def test_every_topic_is_documented_and_no_other(tmp_path: Path) -> None:
    topics = code_topics(tmp_path)
    assert {"member-changes", "smartgroups-catalogs-changelog"} <= topics  # defaults, no prefix
    assert first_names("topics.md", "topic") == topics


def test_every_environment_variable_is_documented_and_no_other() -> None:
    devbroker = {devbroker_config.PORT_ENV, process.RUN_DIR_ENV, fetch.LIBS_ENV, cds.CDS_ENV}
    # variables the devbroker reads by literal name (JAVA_HOME)
    for module in (devbroker_config, process, fetch, cds):
        source = Path(module.__file__ or "").read_text(encoding="utf-8")
        devbroker.update(re.findall(r"""env\.get\(\s*["']([A-Z][A-Z0-9_]*)["']""", source))
    assert "JAVA_HOME" in devbroker
    assert first_names("configuration.md", "variable") == (
        set(_ENV.values()) | devbroker | {NATIVE_ENV}
    )


@pytest.mark.parametrize(
    "page",
    ["README.md", "topics.md", "inputs.md", "outputs.md", "rules.md", "configuration.md",
     "cli.md", "http.md", "decisions.md", "operations.md", "deploy.md"],
)  # fmt: skip
def test_links_between_pages_resolve(page: str) -> None:
    """Every relative link names a file that exists and, with a #fragment, a heading in it."""
    text = (DOCS / page).read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)]+)\)", text):
        if target.startswith(("http://", "https://")):
            continue
        path, _, fragment = target.partition("#")
        file = (DOCS / path).resolve() if path else DOCS / page
        assert file.exists(), f"{page}: broken link {target}"
        if fragment:
            anchors = {
                _anchor(line.lstrip("#"))
                for line in file.read_text(encoding="utf-8").splitlines()
                if line.startswith("#")
            }
            assert fragment in anchors, f"{page}: no heading for #{fragment} in {path or page}"


def _anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lowercase, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")
