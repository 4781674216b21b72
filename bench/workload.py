"""A seeded, contract-shaped workload: spaces, members, definitions, smart groups and event streams.

Everything is drawn from one :class:`random.Random` seeded by :class:`WorkloadSpec`, so the same
spec (seed, sizes and ``now_ms``) yields byte-identical events. Events are
:class:`Event` tuples ``(logical topic, key, value)``; :func:`encode` turns one into Kafka bytes.

Shape (per space; every space gets the same *number* of groups, drawn independently):

* definitions — 8 properties and 5 questions of every value type, a few static groups, ``groups``
  smart groups with 3-6 triggers in a nested ``all``/``any`` tree (``email_domain``, ``eq`` and
  ``in`` on properties, answers, ``within_last`` on ``last_active_at``, tags, roles, a ``not``
  now and then, and ``groups`` triggers naming static or earlier smart groups), and one *probe*
  group (``property.probe eq true``) that the latency benchmark toggles;
* members — realistic profiles (names, emails over ~30 domains with subdomains, a status mix
  that is ~85 % eligible, roles, tags, timestamps) plus initial property values and answers;
* changes — 60 % profile updates (mostly ``last_active_at``), 20 % property, 15 % answer and
  5 % cheap definition changes (renames, static membership, blacklists), with a trickle of
  deletions. Scan-triggering definition changes (activate/deactivate) are left out on purpose:
  their cost is measured by the backfill benchmark instead.

Run ``python -m bench.workload --members 5 --groups 3 --changes 10`` to print a sample as JSONL.
"""

from __future__ import annotations

import argparse
import itertools
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson

DAY_MS = 86_400_000

STATUS_MIX = (
    ("accepted", 70),
    ("invited", 10),
    ("pending", 5),
    ("deactivated", 7),
    ("unsubscribed", 4),
    ("declined", 2),
    ("rejected", 2),
)
ROLE_MIX = (("member", 88), ("admin", 3), ("moderator", 4), ("coach", 3), ("speaker", 2))
DOMAINS = tuple(
    [f"corp{i}.com" for i in range(12)]
    + ["gmail.com", "outlook.com", "yahoo.com", "proton.me", "icloud.com"]
    + [f"uni{i}.edu" for i in range(6)]
    + [f"agency{i}.io" for i in range(7)]
)
TAGS = tuple(
    f"tag-{name}"
    for name in (
        "early",
        "beta",
        "ambassador",
        "donor",
        "alumni",
        "mentor",
        "volunteer",
        "partner",
        "press",
        "staff",
        "founder",
        "investor",
        "student",
        "speaker",
        "vip",
    )
)
FIRST = ("Ada", "Bo", "Cy", "Dee", "Eli", "Fay", "Gus", "Hal", "Ivy", "Jo", "Kai", "Lu", "Mo")
LAST = ("Smith", "Jones", "Garcia", "Chen", "Khan", "Muller", "Rossi", "Silva", "Kim", "Nowak")
TITLES = ("Engineer", "Designer", "Founder", "Manager", "Student", "Teacher", "Coach", "Analyst")
PLANS = ("free", "pro", "team", "enterprise")
INTERESTS = tuple(f"i{n}" for n in range(10))
SPORTS = ("tennis", "football", "chess", "running", "climbing", "yoga")
TOPICS = tuple(f"t{n}" for n in range(12))
CITIES = ("Paris", "Berlin", "Lagos", "Lima", "Osaka", "Oslo", "Pune", "Quito", "Rome", "Seoul")

PROPERTIES = (
    ("vip", "boolean", None),
    ("plan", "single_select", PLANS),
    ("score", "number", None),
    ("company", "text", None),
    ("interests", "multi_select", INTERESTS),
    ("renewal_at", "date", None),
    ("city", "text", None),
    ("probe", "boolean", None),
)
QUESTIONS = (
    ("sport", "single_select", SPORTS),
    ("topics", "multi_select", TOPICS),
    ("goal", "text", None),
    ("newsletter", "boolean", None),
    ("experience", "number", None),
)
PROBE_GROUP = "bench-probe"


class Event(NamedTuple):
    """One input record: logical topic (contract name), Kafka key, JSON value."""

    topic: str
    key: bytes
    value: dict[str, Any]


def encode(event: Event) -> tuple[str, bytes, bytes]:
    """``(logical topic, key bytes, value bytes)`` ready for a producer."""
    return event.topic, event.key, orjson.dumps(event.value)


@dataclass(frozen=True)
class WorkloadSpec:
    """Sizes and seed. ``groups`` is smart groups *per space*; ``members`` is the total."""

    seed: int = 42
    spaces: int = 2
    members: int = 10_000
    groups: int = 100
    static_groups: int = 5
    now_ms: int = 1_795_000_000_000
    tag: str = "b"
    """Prefix of every event id, so ids stay unique across runs sharing topics."""
    space_prefix: str = "space"
    """Spaces are ``{space_prefix}-0`` … : the same for every tag, so definitions drawn by one
    instance and members drawn by another (same sizes) meet in the same spaces."""


def _pick(rng: random.Random, mix: tuple[tuple[str, int], ...]) -> str:
    names, cumulative = _CUMULATIVE.get(mix) or _CUMULATIVE.setdefault(
        mix, ([m[0] for m in mix], list(itertools.accumulate(m[1] for m in mix)))
    )
    return rng.choices(names, cum_weights=cumulative)[0]


_CUMULATIVE: dict[tuple[tuple[str, int], ...], tuple[list[str], list[int]]] = {}


def _iso(ms: int) -> str:
    """RFC 3339 UTC with milliseconds, e.g. ``2026-11-22T10:00:01.250Z``."""
    seconds, millis = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


@dataclass
class _Space:
    space: str
    members: list[str] = field(default_factory=list)
    statics: list[str] = field(default_factory=list)
    smarts: list[str] = field(default_factory=list)


class Workload:
    """The generator (see the module docstring). Not thread-safe; one stream per instance."""

    def __init__(self, spec: WorkloadSpec) -> None:
        self.spec = spec
        self.rng = random.Random(spec.seed)
        self._ids = itertools.count()
        self.spaces = [_Space(f"{spec.space_prefix}-{i}") for i in range(spec.spaces)]
        for n in range(spec.members):
            self.spaces[n % spec.spaces].members.append(f"m{n}")
        self._probe_state: dict[tuple[str, str], bool] = {}

    # -- helpers -------------------------------------------------------------------------------
    def _id(self) -> str:
        return f"{self.spec.tag}-{next(self._ids)}"

    def _member_event(self, topic: str, etype: str, space: str, member: str, **body: Any) -> Event:
        value = {"id": self._id(), "type": etype, "space": space, "member_id": member, **body}
        return Event(topic, f"{space}:{member}".encode(), value)

    def _definition(self, etype: str, space: str, /, **body: Any) -> Event:
        value = {"id": self._id(), "type": etype, "space": space, **body}
        return Event("group-changes", space.encode(), value)

    def _ago(self, max_days: float) -> str:
        return _iso(self.spec.now_ms - int(self.rng.random() * max_days * DAY_MS))

    # -- definitions ---------------------------------------------------------------------------
    def definitions(self) -> list[Event]:
        """Every ``group-changes`` event that sets the spaces up, in a valid order."""
        events: list[Event] = []
        for sp in self.spaces:
            for pid, vtype, options in PROPERTIES:
                body: dict[str, Any] = {
                    "property_id": pid,
                    "name": pid.title(),
                    "value_type": vtype,
                }
                if options:
                    body["options"] = list(options)
                events.append(self._definition("property.defined", sp.space, **body))
            for qid, vtype, options in QUESTIONS:
                body = {"question_id": qid, "name": qid.title(), "value_type": vtype}
                if options:
                    body["options"] = list(options)
                events.append(self._definition("question.defined", sp.space, **body))
            for i in range(self.spec.static_groups):
                gid = f"static-{i}"
                sp.statics.append(gid)
                events.append(
                    self._definition(
                        "group.created", sp.space, group_id=gid, name=f"Static {i}", kind="static"
                    )
                )
            for i in range(self.spec.groups):
                gid = f"g{i}"
                events.append(
                    self._definition(
                        "group.created",
                        sp.space,
                        group_id=gid,
                        name=f"Group {i}",
                        kind="smart",
                        slug=f"group-{i}",
                        resources=[{"type": "course", "id": f"c{i % 17}"}],
                        conditions=self.conditions(sp),
                    )
                )
                sp.smarts.append(gid)
            events.append(
                self._definition(
                    "group.created",
                    sp.space,
                    group_id=PROBE_GROUP,
                    name="Latency probe",
                    kind="smart",
                    conditions={"all": [{"field": "property.probe", "op": "eq", "value": True}]},
                )
            )
            for member in sp.members[: 3 * self.spec.static_groups]:
                events.append(
                    self._definition(
                        "group.member_added",
                        sp.space,
                        group_id=self.rng.choice(sp.statics),
                        member_id=member,
                    )
                )
        return events

    def backfill_group(self, space_index: int = 0, group_id: str = "backfill") -> Event:
        """A new smart group over existing members (what the backfill benchmark creates)."""
        sp = self.spaces[space_index]
        return self._definition(
            "group.created",
            sp.space,
            group_id=group_id,
            name="Backfill",
            kind="smart",
            conditions=self.conditions(sp, allow_groups=False),
        )

    def conditions(self, sp: _Space, *, allow_groups: bool = True) -> dict[str, Any]:
        """3-6 triggers as ``{"all": [t, {"any": [t, t]}, …]}`` (sometimes ``any`` at the top)."""
        rng = self.rng
        n = rng.randint(3, 6)
        triggers = [self._trigger(sp, allow_groups and rng.random() < 0.15) for _ in range(n)]
        split = 1 if rng.random() < 0.4 else 2
        inner = {"any": triggers[split:]} if n - split > 1 else triggers[split]
        outer = "all" if rng.random() < 0.9 else "any"
        return {outer: [*triggers[:split], inner]}

    def _trigger(self, sp: _Space, use_groups: bool) -> dict[str, Any]:
        rng = self.rng
        if use_groups and (sp.statics or sp.smarts):
            pool = sp.statics + sp.smarts[-20:]
            picked = rng.sample(pool, k=min(len(pool), rng.randint(1, 2)))
            return {"field": "groups", "op": "has_any", "value": picked}
        kind = rng.randrange(12)
        trigger: dict[str, Any]
        if kind == 0:
            trigger = {
                "field": "profile.email",
                "op": "email_domain",
                "value": rng.sample(DOMAINS, k=rng.randint(2, 8)),
            }
        elif kind == 1:
            trigger = {"field": "property.vip", "op": "eq", "value": rng.random() < 0.7}
        elif kind == 2:
            trigger = {"field": "property.plan", "op": "in", "value": rng.sample(PLANS, k=2)}
        elif kind == 3:
            low = rng.randrange(0, 80)
            trigger = {"field": "property.score", "op": "between", "value": [low, low + 40]}
        elif kind == 4:
            trigger = {"field": "answer.sport", "op": "eq", "value": rng.choice(SPORTS)}
        elif kind == 5:
            trigger = {
                "field": "answer.topics",
                "op": "has_any",
                "value": rng.sample(TOPICS, k=rng.randint(2, 5)),
            }
        elif kind == 6:
            trigger = {
                "field": "profile.last_active_at",
                "op": "within_last",
                "value": {"days": rng.choice((7, 14, 30, 60, 90))},
            }
        elif kind == 7:
            trigger = {
                "field": "profile.tags",
                "op": "has_any",
                "value": rng.sample(TAGS, k=rng.randint(1, 4)),
            }
        elif kind == 8:
            op, role = ("neq", "member") if rng.random() < 0.2 else ("eq", _pick(rng, ROLE_MIX))
            trigger = {"field": "profile.role", "op": op, "value": role}
        elif kind == 9:
            trigger = {"field": "property.city", "op": "eq", "value": rng.choice(CITIES)}
        elif kind == 10:
            trigger = {"field": "answer.newsletter", "op": "eq", "value": True}
        else:
            trigger = {"field": "profile.title", "op": "contains", "value": rng.choice(TITLES)[:4]}
        if rng.random() < 0.04:
            return {"not": trigger}
        return trigger

    # -- members -------------------------------------------------------------------------------
    def profile(self, member: str) -> dict[str, Any]:
        """A full profile for a new member."""
        rng = self.rng
        first, last = rng.choice(FIRST), rng.choice(LAST)
        domain = DOMAINS[min(int(rng.paretovariate(1.2)) - 1, len(DOMAINS) - 1)]
        if rng.random() < 0.1:
            domain = f"{rng.choice(('eu', 'us', 'apac'))}.{domain}"
        return {
            "first_name": first,
            "last_name": last,
            "email": f"{first.lower()}.{last.lower()}.{member}@{domain}",
            "title": rng.choice(TITLES),
            "status": _pick(rng, STATUS_MIX),
            "role": _pick(rng, ROLE_MIX),
            "tags": rng.sample(TAGS, k=rng.choice((0, 0, 1, 1, 2, 3, 4))),
            "invited_at": self._ago(900),
            "registered_at": self._ago(800),
            "last_active_at": self._ago(120),
        }

    def creations(self, *, values: bool = True) -> Iterator[Event]:
        """One full ``member.upserted`` per member, each followed by ~3 values and answers.

        ``values=False`` yields the profiles only (fast bulk loads).
        """
        order = [(sp, m) for sp in self.spaces for m in sp.members]
        self.rng.shuffle(order)
        for sp, member in order:
            yield self._member_event(
                "member-changes",
                "member.upserted",
                sp.space,
                member,
                profile=self.profile(member),
            )
            if values:
                for _ in range(self.rng.choice((1, 2, 3, 3, 4, 5))):
                    yield self._value_event(sp, member)

    def _value_event(self, sp: _Space, member: str) -> Event:
        if self.rng.random() < 0.55:
            return self._property_event(sp, member)
        return self._answer_event(sp, member)

    def _property_event(self, sp: _Space, member: str) -> Event:
        rng = self.rng
        pid = rng.choice(("vip", "plan", "score", "company", "interests", "renewal_at", "city"))
        if rng.random() < 0.05:
            return self._member_event(
                "property-changes", "property.unset", sp.space, member, property_id=pid
            )
        value: Any = {
            "vip": rng.random() < 0.2,
            "plan": rng.choice(PLANS),
            "score": rng.randrange(0, 120),
            "company": f"Company {rng.randrange(500)}",
            "interests": rng.sample(INTERESTS, k=rng.randint(1, 4)),
            "renewal_at": self._ago(-180),
            "city": rng.choice(CITIES),
        }[pid]
        return self._member_event(
            "property-changes", "property.set", sp.space, member, property_id=pid, value=value
        )

    def _answer_event(self, sp: _Space, member: str) -> Event:
        rng = self.rng
        qid = rng.choice(("sport", "topics", "goal", "newsletter", "experience"))
        if rng.random() < 0.05:
            return self._member_event(
                "form-answers", "answer.unset", sp.space, member, question_id=qid
            )
        value: Any = {
            "sport": rng.choice(SPORTS),
            "topics": rng.sample(TOPICS, k=rng.randint(1, 5)),
            "goal": rng.choice(("network", "learn", "hire", "teach")) + " more",
            "newsletter": rng.random() < 0.5,
            "experience": rng.randrange(0, 30),
        }[qid]
        return self._member_event(
            "form-answers", "answer.set", sp.space, member, question_id=qid, value=value
        )

    # -- the change stream ---------------------------------------------------------------------
    def changes(self, count: int, *, definitions: bool = True) -> Iterator[Event]:
        """``count`` events of the mix (see the module docstring) over existing members."""
        rng = self.rng
        for _ in range(count):
            sp = rng.choice(self.spaces)
            member = rng.choice(sp.members)
            draw = rng.random()
            if draw < 0.60:
                yield self._profile_change(sp, member)
            elif draw < 0.80:
                yield self._property_event(sp, member)
            elif draw < 0.95 or not definitions:
                yield self._answer_event(sp, member)
            else:
                yield self._definition_change(sp, member)

    def _profile_change(self, sp: _Space, member: str) -> Event:
        rng = self.rng
        draw = rng.random()
        if draw < 0.002:
            return self._member_event("member-changes", "member.deleted", sp.space, member)
        if draw < 0.55:
            patch: dict[str, Any] = {"last_active_at": self._ago(2)}
        elif draw < 0.70:
            patch = {"status": _pick(rng, STATUS_MIX)}
        elif draw < 0.85:
            patch = {"tags": rng.sample(TAGS, k=rng.randint(0, 4))}
        elif draw < 0.93:
            patch = {"title": rng.choice(TITLES), "role": _pick(rng, ROLE_MIX)}
        elif draw < 0.97:
            patch = self.profile(member)  # a re-created or fully re-synced member
        else:
            patch = {"email": f"{member}@{rng.choice(DOMAINS)}"}
        return self._member_event(
            "member-changes", "member.upserted", sp.space, member, profile=patch
        )

    def definition_changes(self, count: int) -> list[Event]:
        """``count`` cheap definition changes (call :meth:`definitions` first)."""
        out = []
        for _ in range(count):
            sp = self.rng.choice(self.spaces)
            out.append(self._definition_change(sp, self.rng.choice(sp.members)))
        return out

    def _definition_change(self, sp: _Space, member: str) -> Event:
        rng = self.rng
        draw = rng.random()
        if draw < 0.3 and sp.smarts:
            gid = rng.choice(sp.smarts)
            return self._definition("group.updated", sp.space, group_id=gid, name=f"{gid} renamed")
        if draw < 0.6 and sp.statics:
            kind = "group.member_added" if rng.random() < 0.6 else "group.member_removed"
            gid = rng.choice(sp.statics)
            return self._definition(kind, sp.space, group_id=gid, member_id=member)
        if draw < 0.85 and sp.smarts:
            kind = "group.blacklisted" if rng.random() < 0.5 else "group.unblacklisted"
            gid = rng.choice(sp.smarts)
            return self._definition(kind, sp.space, group_id=gid, member_id=member)
        pid = rng.choice(("company", "city", "score"))
        return self._definition(
            "property.updated", sp.space, property_id=pid, name=f"{pid} {rng.randrange(99)}"
        )

    # -- latency probes ------------------------------------------------------------------------
    def probe_members(self, per_space: int) -> list[Event]:
        """Eligible members ``probe-N`` that the probes toggle (create them before probing)."""
        events = []
        for sp in self.spaces:
            for i in range(per_space):
                member = f"probe-{i}"
                profile = self.profile(member) | {"status": "accepted"}
                events.append(
                    self._member_event(
                        "member-changes", "member.upserted", sp.space, member, profile=profile
                    )
                )
                self._probe_state[(sp.space, member)] = False
        return events

    def probe(self) -> Event:
        """Toggle ``property.probe`` of a probe member: always exactly one membership change."""
        space, member = self.rng.choice(list(self._probe_state))
        value = not self._probe_state[(space, member)]
        self._probe_state[(space, member)] = value
        sp = next(s for s in self.spaces if s.space == space)
        return self._member_event(
            "property-changes", "property.set", sp.space, member, property_id="probe", value=value
        )


def main(argv: list[str] | None = None) -> int:
    """Print a sample workload as JSONL: ``topic<TAB>key<TAB>value`` per line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--spaces", type=int, default=2)
    parser.add_argument("--members", type=int, default=10)
    parser.add_argument("--groups", type=int, default=3)
    parser.add_argument("--changes", type=int, default=20)
    args = parser.parse_args(argv)
    spec = WorkloadSpec(
        seed=args.seed, spaces=args.spaces, members=args.members, groups=args.groups
    )
    workload = Workload(spec)
    stream = itertools.chain(
        workload.definitions(), workload.creations(), workload.changes(args.changes)
    )
    out = sys.stdout.buffer
    for event in stream:
        topic, key, value = encode(event)
        out.write(topic.encode() + b"\t" + key + b"\t" + value + b"\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
