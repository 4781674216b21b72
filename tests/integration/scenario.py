"""One space's view of a running cluster: send definitions and member events, read outcomes.

Scenarios share a worker; each uses its own space, so every read filters by space.
"""

from __future__ import annotations

import itertools
from typing import Any

from tests.integration.harness import Cluster, final_memberships

_ids = itertools.count(1)


def event(type_: str, space: str, **fields: Any) -> dict[str, Any]:
    return {"id": f"{space}-e{next(_ids)}", "type": type_, "space": space, **fields}


class Scenario:
    """Definitions, member inputs and their observable outcomes for one ``space``."""

    def __init__(self, cluster: Cluster, space: str) -> None:
        self.cluster = cluster
        self.space = space
        self.sent_commands: list[str] = []

    # -- inputs --------------------------------------------------------------------------------
    def define(self, type_: str, **fields: Any) -> str:
        """Send one ``group-changes`` command; returns its id."""
        command = event(type_, self.space, **fields)
        self.cluster.produce("group-changes", [command])
        self.sent_commands.append(command["id"])
        return str(command["id"])

    def upsert(self, member_id: str, **profile: Any) -> None:
        self.cluster.produce(
            "member-changes",
            [event("member.upserted", self.space, member_id=member_id, profile=profile)],
        )

    def delete_member(self, member_id: str) -> None:
        self.cluster.produce(
            "member-changes", [event("member.deleted", self.space, member_id=member_id)]
        )

    def set_property(self, member_id: str, property_id: str, value: Any) -> None:
        self.cluster.produce(
            "property-changes",
            [
                event(
                    "property.set",
                    self.space,
                    member_id=member_id,
                    property_id=property_id,
                    value=value,
                )
            ],
        )

    def answer(self, member_id: str, question_id: str, value: Any) -> None:
        self.cluster.produce(
            "form-answers",
            [
                event(
                    "answer.set",
                    self.space,
                    member_id=member_id,
                    question_id=question_id,
                    value=value,
                )
            ],
        )

    def barrier(self, member_id: str) -> None:
        """Wait until every definition sent so far has reached ``member_id``'s partition.

        The definitions agent sends each accepted change, in order, to the member side; a
        static group's ``member_added`` goes last to the member's own partition, so once the
        member shows up in that group, every earlier group change was applied there too.
        """
        group_id = f"barrier-{next(_ids)}"
        self.define("group.created", group_id=group_id, name=group_id, kind="static")
        self.define("group.member_added", group_id=group_id, member_id=member_id)
        self.wait_members(group_id, {member_id})

    # -- outcomes ------------------------------------------------------------------------------
    def results(self) -> dict[str, dict[str, Any]]:
        """``group-change-results`` of this space by command id."""
        return {
            r["command_id"]: r
            for r in self.cluster.events("group-change-results")
            if r["space"] == self.space
        }

    def wait_results(self, timeout: float = 60.0) -> dict[str, dict[str, Any]]:
        """Wait until every command sent so far has its result."""
        expected = set(self.sent_commands)
        self.cluster.wait_for(
            "group-change-results",
            lambda rs: expected <= {r["command_id"] for r in rs if r["space"] == self.space},
            timeout,
            what=f"results of {sorted(expected)}",
        )
        return self.results()

    def outcome(self, command_id: str) -> str:
        """``accepted`` or the rejection code of one command."""
        result = self.wait_results()[command_id]
        return "accepted" if result["type"] == "command.accepted" else str(result["code"])

    def changes(self) -> list[dict[str, Any]]:
        return [e for e in self.cluster.events("membership-changes") if e["space"] == self.space]

    def members(self, group_id: str) -> set[str]:
        """Members of ``group_id`` by the highest version of each pair."""
        return {m for (_, g, m) in final_memberships(self.changes()) if g == group_id}

    def wait_members(self, group_id: str, expected: set[str], timeout: float = 60.0) -> None:
        """Wait until ``group_id``'s members are exactly ``expected``."""

        def holds(events: list[dict[str, Any]]) -> bool:
            mine = [e for e in events if e["space"] == self.space]
            return {m for (_, g, m) in final_memberships(mine) if g == group_id} == expected

        self.cluster.wait_for(
            "membership-changes", holds, timeout, what=f"{group_id} == {sorted(expected)}"
        )

    def transitions(self, group_id: str, member_id: str) -> list[tuple[str, int, str]]:
        """(type, version, reason) of one pair, in version order."""
        pair = [
            (e["type"], e["version"], e["reason"])
            for e in self.changes()
            if e["group_id"] == group_id and e["member_id"] == member_id
        ]
        return sorted(set(pair), key=lambda t: t[1])
