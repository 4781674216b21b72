"""``smartgroups preview``: the contract's §6 offline preview, through main() and the script."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from smartgroups.cli.main import main

NOW = "2026-11-23T10:00:00Z"

DEFS = [
    {
        "type": "property.defined",
        "property_id": "plan",
        "name": "Plan",
        "value_type": "single_select",
        "options": ["free", "pro"],
    },
    {"type": "group.created", "group_id": "coaches", "name": "Coaches", "kind": "static"},
    {
        "type": "group.created",
        "group_id": "pros",
        "name": "Pros",
        "kind": "smart",
        "conditions": {"all": [{"field": "property.plan", "op": "eq", "value": "pro"}]},
    },
    {
        "type": "group.created",
        "group_id": "recent",
        "name": "Recent",
        "kind": "smart",
        "conditions": {
            "any": [
                {"field": "profile.last_active_at", "op": "within_last", "value": {"days": 7}},
                {"field": "groups", "op": "has_any", "value": ["coaches"]},
            ]
        },
    },
]


def member(
    member_id: str,
    space: str = "acme",
    status: str | None = "accepted",
    plan: str | None = None,
    active: str | None = None,
    groups: list[str] | None = None,
) -> dict[str, Any]:
    profile: dict[str, Any] = {}
    if status is not None:
        profile["status"] = status
    if active is not None:
        profile["last_active_at"] = active
    return {
        "space": space,
        "member_id": member_id,
        "profile": profile,
        "properties": {} if plan is None else {"plan": plan},
        "answers": {},
        "groups": groups or [],
    }


MEMBERS = [
    member("m1", plan="pro", active="2026-11-22T00:00:00Z"),
    member("m2", plan="free", active="2026-10-01T00:00:00Z"),
    member("m3", plan="PRO", groups=["coaches"]),
    member("m4", status="deactivated", plan="pro", active="2026-11-22T00:00:00Z"),
    member("m5", status=None, plan="pro"),
    member("m6", space="other", plan="pro", active="2026-11-22T00:00:00Z"),
]


def write(path: Path, rows: list[Any]) -> str:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(path)


def events(defs: list[dict[str, Any]], space: str = "acme") -> list[dict[str, Any]]:
    return [{"id": f"d{i}", "space": space, **d} for i, d in enumerate(defs)]


@pytest.fixture
def files(tmp_path: Path) -> tuple[str, str]:
    return write(tmp_path / "defs.jsonl", events(DEFS)), write(tmp_path / "members.jsonl", MEMBERS)


def preview(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str], str]:
    status = main(["preview", *args])
    out, err = capsys.readouterr()
    return status, out.splitlines(), err


def test_default_group_is_the_last_created(files: tuple[str, str], capsys: Any) -> None:
    defs, members = files
    status, out, _ = preview(capsys, "--definitions", defs, "--members", members, "--now", NOW)
    # recent: active in the last 7 days, or in coaches; eligible; only space acme
    assert (status, out) == (0, ["m1", "m3"])


def test_group_and_now_options(files: tuple[str, str], capsys: Any) -> None:
    defs, members = files
    args = ["--definitions", defs, "--members", members]
    assert preview(capsys, *args, "--group", "pros", "--now", NOW)[1] == [
        "m1",
        "m3",
    ]
    later = "2026-12-30T00:00:00Z"
    assert preview(capsys, *args, "--group", "recent", "--now", later)[1] == ["m3"]
    # a static group: the snapshots whose groups hold it
    assert preview(capsys, *args, "--group", "coaches", "--now", NOW)[1] == ["m3"]


def test_deactivated_group_has_nobody(tmp_path: Path, capsys: Any) -> None:
    defs = write(
        tmp_path / "d.jsonl", events([*DEFS, {"type": "group.deactivated", "group_id": "pros"}])
    )
    members = write(tmp_path / "m.jsonl", MEMBERS)
    status, out, _ = preview(
        capsys, "--definitions", defs, "--members", members, "--group", "pros", "--now", NOW
    )
    assert (status, out) == (0, [])


def test_a_rejected_definition_stops_with_its_code(tmp_path: Path, capsys: Any) -> None:
    bad = {
        "type": "group.created",
        "group_id": "x",
        "name": "X",
        "kind": "smart",
        "conditions": {"field": "property.ghost", "op": "is_set"},
    }
    defs = write(tmp_path / "d.jsonl", events([*DEFS, bad]))
    members = write(tmp_path / "m.jsonl", MEMBERS)
    status, out, err = preview(capsys, "--definitions", defs, "--members", members)
    assert status == 2 and out == []
    assert "unknown_reference" in err and ":5:" in err


def test_an_invalid_command_stops_with_invalid(tmp_path: Path, capsys: Any) -> None:
    defs = write(tmp_path / "d.jsonl", events([{"type": "group.exploded", "group_id": "g"}]))
    members = write(tmp_path / "m.jsonl", [])
    status, _, err = preview(capsys, "--definitions", defs, "--members", members)
    assert status == 2 and "invalid" in err


def test_blank_lines_are_ignored_and_bad_lines_name_their_number(
    tmp_path: Path, capsys: Any
) -> None:
    defs = tmp_path / "d.jsonl"
    defs.write_text("\n" + "\n".join(json.dumps(e) for e in events(DEFS)) + "\n\n   \n")
    members = tmp_path / "m.jsonl"
    members.write_text(json.dumps(MEMBERS[0]) + "\n\n{not json\n")
    status, out, err = preview(
        capsys, "--definitions", str(defs), "--members", str(members), "--now", NOW
    )
    assert status == 2 and f"{members}:3:" in err
    assert out == []  # nothing partial is printed
    members.write_text(json.dumps(MEMBERS[0]) + "\n[1, 2]\n")
    assert (
        f"{members}:2:" in preview(capsys, "--definitions", str(defs), "--members", str(members))[2]
    )
    members.write_text(json.dumps({**MEMBERS[0], "groups": "coaches"}) + "\n")
    assert "groups" in preview(capsys, "--definitions", str(defs), "--members", str(members))[2]


def test_several_spaces_each_have_their_own_catalog(tmp_path: Path, capsys: Any) -> None:
    defs = write(tmp_path / "d.jsonl", events(DEFS) + events(DEFS[:3], space="other"))
    members = write(tmp_path / "m.jsonl", MEMBERS)
    args = ["--definitions", defs, "--members", members, "--now", NOW]
    status, _, err = preview(capsys, *args, "--group", "pros")
    assert status == 2 and "--space" in err
    assert preview(capsys, *args, "--group", "pros", "--space", "other")[1] == ["m6"]
    assert preview(capsys, *args, "--group", "recent")[1] == ["m1", "m3"]  # only in acme
    assert preview(capsys, *args)[1] == ["m6"]  # the last created is 'pros' of 'other'


def test_missing_group_and_bad_now(files: tuple[str, str], capsys: Any) -> None:
    defs, members = files
    status, _, err = preview(capsys, "--definitions", defs, "--members", members, "--group", "nope")
    assert status == 2 and "nope" in err
    status, _, err = preview(
        capsys, "--definitions", defs, "--members", members, "--now", "yesterday"
    )
    assert status == 2 and "--now" in err
    status, _, err = preview(capsys, "--definitions", "/no/such/file", "--members", members)
    assert status == 2 and "/no/such/file" in err


def test_the_console_script(files: tuple[str, str]) -> None:
    defs, members = files
    script = Path(sys.executable).parent / "smartgroups"
    done = subprocess.run(
        [
            str(script),
            "preview",
            "--definitions",
            defs,
            "--members",
            members,
            "--group",
            "pros",
            "--now",
            NOW,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "m1\nm3\n", "")


REPO = Path(__file__).resolve().parents[3]


def test_the_readme_command_on_the_examples() -> None:
    """The README's command, run from the repository root as a newcomer would."""
    script = Path(sys.executable).parent / "smartgroups"
    done = subprocess.run(
        [
            str(script),
            "preview",
            "--definitions",
            "examples/group-changes.jsonl",
            "--members",
            "examples/members.jsonl",
            "--group",
            "acme-vip",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # m1: acme.com, active, VIP; m3: eu.acme.com (a subdomain), active, in coaches;
    # m2: example.org is not an acme.com address
    assert (done.returncode, done.stdout, done.stderr) == (0, "m1\nm3\n", "")


def test_every_example_group_previews(capsys: Any) -> None:
    args = [
        "--definitions",
        str(REPO / "examples/group-changes.jsonl"),
        "--members",
        str(REPO / "examples/members.jsonl"),
    ]
    assert preview(capsys, *args)[:2] == (0, ["m2"])  # tennis-fans: "Tennis" casefolded
    assert preview(capsys, *args, "--group", "coaches")[:2] == (0, ["m3"])


def test_relative_instants_resolve_against_now(tmp_path: Path, capsys: Any) -> None:
    members = write(
        tmp_path / "m.jsonl",
        [
            member("fresh", active="now-3d"),
            member("stale", active="now-10d"),
            member("fixed", active="2026-11-22T00:00:00Z"),
        ],
    )
    defs = write(tmp_path / "d.jsonl", events(DEFS))
    args = ["--definitions", defs, "--members", members, "--group", "recent"]
    # relative dates move with --now; a written date does not
    assert preview(capsys, *args, "--now", NOW)[1] == ["fresh", "fixed"]
    assert preview(capsys, *args, "--now", "2030-01-01T00:00:00Z")[1] == ["fresh"]
    assert preview(capsys, *args)[1] == ["fresh"]  # default: the real clock
    # --now may itself be relative to the real clock
    assert preview(capsys, *args, "--now", "now+10000d")[1] == ["fresh"]


def test_help_documents_the_snapshot_format(capsys: Any) -> None:
    with pytest.raises(SystemExit) as done:
        main(["preview", "--help"])
    out = capsys.readouterr().out
    assert done.value.code == 0
    for needed in (
        '"space"',
        '"member_id"',
        '"profile"',
        '"properties"',
        '"answers"',
        '"groups"',
        "now-10d",
        "last group created in DEFS",
        "exit status 2",
        "default {}",
        "default []",
    ):
        assert needed in out, needed
    # the epilog keeps its line breaks (RawDescriptionHelpFormatter)
    assert '\n  {"space": "demo", "member_id": "m1",\n' in out
