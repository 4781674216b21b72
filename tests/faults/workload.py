"""A seeded input stream for the fault scenarios, and its reference fold.

One space, three groups (a smart group on the email domain, a smart group on a boolean property,
a static group), ``members`` members, and ``events`` inputs drawn from one
:class:`random.Random`: profile patches (status and email), property sets and unsets, static
adds and removes, plus a few poison records (not JSON) that must be dead-lettered. The same seed
gives the same records, byte for byte.

The reference (:meth:`Workload.expected`) is written from the contract alone (§3, §5): a member
is eligible when its status is accepted, invited or pending; it is in ``acme`` when eligible
and its email ends in ``@acme.com``, in ``vip`` when eligible and its ``vip`` value is ``true``,
in ``static`` while its last static command was an add. Inputs of different topics reach the
worker in no fixed order, so the stream never lets the final state depend on that order: each
topic's events are folded on their own, and no member is deleted here (erasure has its own test).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Any

Record = tuple[str, bytes | None, bytes | None]
"""(logical topic, key, value)."""

STATUSES = ("accepted", "invited", "pending", "declined", "deactivated")


def _dumps(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


@dataclass
class Workload:
    seed: int
    space: str = "fx"
    members: int = 30
    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)
    vip: dict[str, Any] = field(default_factory=dict)
    static: dict[str, bool] = field(default_factory=dict)
    poison: int = 0
    _n: int = 0

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def _event(self, type_: str, **fields: Any) -> dict[str, Any]:
        self._n += 1
        return {"id": f"{self.space}-{self.seed}-{self._n}", "type": type_, "space": self.space,
                **fields}  # fmt: skip

    def definitions(self) -> list[Record]:
        """The group-changes that define the groups (send first, wait for their results)."""
        key = self.space.encode()
        docs = [
            self._event("property.defined", property_id="vip", name="VIP", value_type="boolean"),
            self._event("group.created", group_id="static", name="Static", kind="static"),
            self._event(
                "group.created",
                group_id="acme",
                name="Acme",
                kind="smart",
                conditions={
                    "all": [{"field": "profile.email", "op": "email_domain", "value": ["acme.com"]}]
                },
            ),
            self._event(
                "group.created",
                group_id="vip",
                name="VIP",
                kind="smart",
                conditions={"all": [{"field": "property.vip", "op": "eq", "value": True}]},
            ),
        ]
        return [("group-changes", key, _dumps(d)) for d in docs]

    def events(self, count: int, *, poison_every: int = 0) -> list[Record]:
        """``count`` more inputs (and a poison record every ``poison_every``, when set)."""
        out: list[Record] = []
        for i in range(count):
            m = f"m{self.rng.randrange(self.members)}"
            key = f"{self.space}:{m}".encode()
            roll = self.rng.random()
            if roll < 0.5:
                patch: dict[str, Any] = {}
                if self.rng.random() < 0.7:
                    patch["status"] = self.rng.choice(STATUSES)
                if self.rng.random() < 0.5:
                    patch["email"] = self.rng.choice([f"{m}@acme.com", f"{m}@other.org", None])
                profile = self.profiles.setdefault(m, {})
                for name, value in patch.items():
                    if value is None:
                        profile.pop(name, None)
                    else:
                        profile[name] = value
                doc = self._event("member.upserted", member_id=m, profile=patch)
                out.append(("member-changes", key, _dumps(doc)))
            elif roll < 0.8:
                value = self.rng.choice([True, False, None])
                self.vip[m] = value
                if value is None:
                    doc = self._event("property.unset", member_id=m, property_id="vip")
                else:
                    doc = self._event("property.set", member_id=m, property_id="vip", value=value)
                out.append(("property-changes", key, _dumps(doc)))
            else:
                on = self.rng.random() < 0.6
                self.static[m] = on
                kind = "group.member_added" if on else "group.member_removed"
                doc = self._event(kind, group_id="static", member_id=m)
                out.append(("group-changes", self.space.encode(), _dumps(doc)))
            if poison_every and i % poison_every == poison_every - 1:
                self.poison += 1
                out.append(("member-changes", key, b"{not json"))
        return out

    def expected(self) -> set[tuple[str, str, str]]:
        """The final (space, group, member) memberships the contract implies."""
        out = set()
        for i in range(self.members):
            m = f"m{i}"
            profile = self.profiles.get(m, {})
            eligible = profile.get("status") in ("accepted", "invited", "pending")
            if eligible and str(profile.get("email", "")).endswith("@acme.com"):
                out.add((self.space, "acme", m))
            if eligible and self.vip.get(m) is True:
                out.add((self.space, "vip", m))
            if self.static.get(m):
                out.add((self.space, "static", m))
        return out
