"""Matching benchmark: evaluation cost per member event, indexed matching vs every group.

For each size (default 10, 100, 1,000 and 10,000 smart groups) it builds one space through the
real catalog: ~200 distinct fields (9 profile fields, 150 properties and 41 questions of every
value type); groups of 3 to 6 triggers, mostly selective (``eq``/``in``/``has_*``, thresholds),
negative ops now and then, 30 % of date triggers time-relative, shaped as an AND of an OR and
the rest (70 %) or an OR of two ANDs (30 %); ~15 % of the groups also name 1 or 2 earlier groups
through a ``groups`` trigger. Members have values for ~90 % of the fields and start from their
exact memberships. Every event changes 1 to 3 random fields of a random member. The same script
of events is replayed from the same starting state for each way of deciding, in its own passes
(so one way's work does not evict the caches another relies on): once to warm up (the
interpreter specialises each compiled predicate after its first runs, as in a worker that has
been up for a while) and once timed; the pruned way's first, cold run is reported as well. Each
way decides as the worker does (``membership.decide``: active smart group, eligible status, its
compiled conditions, through the cascade's shortcut):

* **affected** — ``cascade(index, index.affected(changes, current, now), decide, current)``:
  only groups where a trigger on a changed field flipped the way that can change membership;
  plus each changed field's next due instant (``index.next_flip``), as the worker schedules it;
* **candidates** — ``cascade(index, index.candidates(changed), decide, current)``: every group
  reading a changed field;
* **every group** — ``cascade(index, all groups, decide, current)``.

All three must return the same flips on every event (checked; the run fails otherwise).
Reported per size: average groups decided first (``aff``/``cands``), flips per event, and
p50/p99/mean µs per event for each way, with the p50 speed-ups over every group. Targets (one
core): at 10,000 groups p50 ≤ 300 µs and ≥ 10x faster than evaluating every group.

Run: ``.venv/bin/python -m bench.matching`` (``--sizes 10 100 --events 500`` for a quick run).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from smartgroups.core.catalog import SpaceCatalog
from smartgroups.core.commands import parse_command
from smartgroups.core.matching import Decide, GroupIndex, Shortcut, cascade
from smartgroups.core.snapshot import MemberSnapshot
from smartgroups.core.space import GroupEntry

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
TYPES = ("text", "number", "boolean", "date", "single_select", "multi_select")
OPTIONS = [f"o{i}" for i in range(10)]
WORDS = [f"w{i}" for i in range(20)]
DOMAINS = ["acme.com", "corp.io", "gmail.com", "uni.edu", "mail.acme.com"]
TAGS = [f"t{i}" for i in range(12)]
PROFILE_FIELDS = {
    "profile.first_name": "text",
    "profile.last_name": "text",
    "profile.email": "email",
    "profile.title": "text",
    "profile.role": "text",
    "profile.tags": "tags",
    "profile.invited_at": "date",
    "profile.registered_at": "date",
    "profile.last_active_at": "date",
}


@dataclass(frozen=True, slots=True)
class Field:
    name: str  # "property.p3"
    kind: str  # a value type, or "email" / "tags" for those profile fields


def fields_of_space() -> list[Field]:
    fields = [Field(name, kind) for name, kind in PROFILE_FIELDS.items()]
    fields += [Field(f"property.p{i}", TYPES[i % 6]) for i in range(150)]
    fields += [Field(f"answer.q{i}", TYPES[i % 6]) for i in range(41)]
    return fields


def define(catalog: SpaceCatalog, fields: list[Field]) -> None:
    for f in fields:
        source, _, ident = f.name.partition(".")
        if source == "profile":
            continue
        kind = "property" if source == "property" else "question"
        command: dict[str, Any] = {
            "type": f"{kind}.defined",
            f"{kind}_id": ident,
            "name": ident,
            "value_type": f.kind,
        }
        if f.kind.endswith("select"):
            command["options"] = OPTIONS
        assert catalog.apply(parse_command(command)).accepted


def instant(rng: random.Random, span_days: int = 400) -> str:
    at = NOW - timedelta(days=rng.uniform(-30, span_days))
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def pick(rng: random.Random, weighted: dict[str, int]) -> str:
    return rng.choices(list(weighted), weights=list(weighted.values()))[0]


def trigger(rng: random.Random, f: Field) -> dict[str, Any]:
    """A trigger on ``f``, mostly selective (as segments are); negative ops now and then."""
    kind = f.kind
    if kind == "email":
        return {"field": f.name, "op": "email_domain", "value": rng.sample(DOMAINS, 1)}
    if kind == "tags":
        op = pick(rng, {"has_any": 7, "has_all": 2, "has_none": 1})
        return {"field": f.name, "op": op, "value": rng.sample(TAGS, 2)}
    if kind == "text":
        op = pick(rng, {"eq": 5, "in": 2, "contains": 1, "starts_with": 1, "neq": 1})
        if op == "in":
            return {"field": f.name, "op": op, "value": rng.sample(WORDS, 3)}
        return {"field": f.name, "op": op, "value": rng.choice(WORDS)}
    if kind == "number":
        op = pick(rng, {"gt": 3, "lt": 3, "eq": 1, "between": 3})
        if op == "between":
            low = rng.randint(0, 80)
            return {"field": f.name, "op": op, "value": [low, low + rng.randint(1, 20)]}
        threshold = rng.randint(60, 100) if op == "gt" else rng.randint(0, 40)
        return {"field": f.name, "op": op, "value": threshold}
    if kind == "boolean":
        return {"field": f.name, "op": "eq", "value": rng.random() < 0.5}
    if kind == "date":
        if rng.random() < 0.3:
            return {"field": f.name, "op": "within_last", "value": {"days": rng.randint(7, 90)}}
        return {"field": f.name, "op": rng.choice(["gt", "lt"]), "value": instant(rng)}
    if kind == "single_select":
        op = pick(rng, {"eq": 6, "in": 3, "neq": 1})
        value = rng.sample(OPTIONS, 2) if op == "in" else rng.choice(OPTIONS)
        return {"field": f.name, "op": op, "value": value}
    op = pick(rng, {"has_any": 5, "has_all": 4, "has_none": 1})
    return {"field": f.name, "op": op, "value": rng.sample(OPTIONS, 2)}


def conditions(rng: random.Random, fields: list[Field], earlier: list[str]) -> dict[str, Any]:
    leaves = [trigger(rng, f) for f in rng.sample(fields, rng.randint(3, 6))]
    if earlier and rng.random() < 0.15:
        named = rng.sample(earlier, min(len(earlier), rng.randint(1, 2)))
        op = rng.choice(["has_any", "has_all", "has_none"])
        leaves[-1] = {"field": "groups", "op": op, "value": named}
    if rng.random() < 0.7:  # AND of an OR and the rest: the usual segment shape
        k = rng.randint(1, 2)
        return {"all": [{"any": leaves[:k]}, *leaves[k:]]}
    split = rng.randint(1, len(leaves) - 1)  # OR of two ANDs
    return {"any": [{"all": leaves[:split]}, {"all": leaves[split:]}]}


def value(rng: random.Random, f: Field) -> object:
    if rng.random() < 0.1:
        return None
    kind = f.kind
    if kind == "email":
        return f"u{rng.randint(0, 999)}@{rng.choice(DOMAINS)}"
    if kind == "tags":
        return rng.sample(TAGS, rng.randint(0, 4))
    if kind == "text":
        return rng.choice(WORDS) + ("" if rng.random() < 0.7 else " extra")
    if kind == "number":
        return rng.randint(0, 100)
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "date":
        return instant(rng)
    if kind == "single_select":
        return rng.choice(OPTIONS)
    return rng.sample(OPTIONS, rng.randint(0, 4))


class Member:
    """A member's values, split by source as a MemberSnapshot wants them."""

    def __init__(self, rng: random.Random, fields: list[Field]) -> None:
        self.profile: dict[str, object] = {"status": "accepted"}
        self.properties: dict[str, object] = {}
        self.answers: dict[str, object] = {}
        for f in fields:
            self.set(f, value(rng, f))
        self.groups: frozenset[str] = frozenset()

    def get(self, f: Field) -> object:
        source, _, key = f.name.partition(".")
        values = {"profile": self.profile, "property": self.properties, "answer": self.answers}
        return values[source].get(key)

    def set(self, f: Field, new: object) -> None:
        source, _, key = f.name.partition(".")
        values = {"profile": self.profile, "property": self.properties, "answer": self.answers}
        if new is None:
            values[source].pop(key, None)
        else:
            values[source][key] = new


def decider(entries: dict[str, GroupEntry], member: Member) -> tuple[Decide, Shortcut]:
    """The worker's shape of deciding (``membership.decide``'s verdict and shortcut, for smart
    groups and no blacklist): one entry per group, live, eligible status, the compiled
    conditions; the shortcut decides the groups that do not see a flip without a call back."""
    # keyed by the set's identity: hashing a member's ~1,000 group ids costs more than the rest
    # of a snapshot (each snapshot holds its set, so no id is reused while the dict lives)
    snapshots: dict[int, MemberSnapshot] = {}
    status = member.profile.get("status")
    eligible = isinstance(status, str) and status in ("accepted", "invited", "pending")

    def snapshot(groups_now: frozenset[str]) -> MemberSnapshot:
        snap = snapshots.get(id(groups_now))
        if snap is None:
            snap = MemberSnapshot(member.profile, member.properties, member.answers, groups_now)
            snapshots[id(groups_now)] = snap
        return snap

    def decide(group_id: str, groups_now: frozenset[str]) -> bool:
        entry = entries.get(group_id)
        if entry is None or not entry.live:
            return False
        predicate = entry.predicate
        if predicate is None or not eligible:
            return False
        return predicate(snapshot(groups_now), NOW)

    return decide, Shortcut(snapshot(member.groups), NOW, eligible, (), [])


@dataclass(slots=True)
class Result:
    groups: int
    events: int
    candidates: float
    affected: float
    flips: float
    indexed: list[float]
    pruned: list[float]
    every: list[float]
    pruned_cold: list[float]


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(size: int, events: int, members: int, seed: int) -> Result:
    rng = random.Random(seed * 1_000_003 + size)
    fields = fields_of_space()
    catalog = SpaceCatalog()
    define(catalog, fields)
    ids: list[str] = []
    for i in range(size):
        command = {
            "type": "group.created",
            "group_id": f"g{i}",
            "name": f"Group {i}",
            "kind": "smart",
            "conditions": conditions(rng, fields, ids),
        }
        outcome = catalog.apply(parse_command(command))
        assert outcome.accepted, outcome
        ids.append(f"g{i}")
    groups = {g: GroupEntry(group, seq=0, created_seq=0) for g, group in catalog.groups.items()}
    index = GroupIndex()
    for entry in groups.values():
        index.add(entry.group)
    population = [Member(rng, fields) for _ in range(members)]
    for member in population:
        flips = cascade(index, ids, decider(groups, member)[0], frozenset())
        member.groups = frozenset(g for g, on in flips if on)

    script = [
        (
            rng.randrange(len(population)),
            [(f, value(rng, f)) for f in rng.sample(fields, rng.randint(1, 3))],
        )
        for _ in range(events)
    ]
    initial = [(m.profile, m.properties, m.answers, m.groups) for m in population]
    timer = time.perf_counter_ns

    Way = Callable[[dict[str, tuple[object, object]], frozenset[str]], Iterable[str]]
    Flips = list[list[tuple[str, bool]]]

    def replay(way: Way) -> tuple[list[float], Flips, float]:
        """Apply the script from the initial state, deciding each event through ``way``."""
        for member, (profile, properties, answers, groups_in) in zip(
            population, initial, strict=True
        ):
            member.profile, member.properties = dict(profile), dict(properties)
            member.answers, member.groups = dict(answers), groups_in
        samples: list[float] = []
        outcomes: Flips = []
        started_with = 0
        for member_index, assignments in script:
            member = population[member_index]
            changes: dict[str, tuple[object, object]] = {}
            for f, new in assignments:
                changes[f.name] = (member.get(f), new)
                member.set(f, new)
            current = member.groups
            started = timer()
            start = way(changes, current)
            decide, shortcut = decider(groups, member)
            flips = cascade(index, start, decide, current, shortcut)
            samples.append((timer() - started) / 1000)
            outcomes.append(sorted(flips))
            started_with += len(set(start))
            joined = {g for g, on in flips if on}
            member.groups = (current | joined) - {g for g, on in flips if not on}
        return samples, outcomes, started_with / events

    def pruned_way(changes: dict[str, tuple[object, object]], current: frozenset[str]) -> set[str]:
        start = index.affected(changes, current, NOW)
        for name, (_, new) in changes.items():  # the due instants the worker keeps per field
            index.next_flip(name, new, NOW)
        return start

    # Each way runs the script twice and the second run is reported: the interpreter
    # specialises a predicate's bytecode after its first few runs, as it soon has in a worker
    # that has been up for a while. The first (cold) run of the pruned way is reported too.
    pruned_cold, _, _ = replay(pruned_way)
    pruned, flips_pruned, decided = replay(pruned_way)
    by_field: Way = lambda changes, _: index.candidates(changes)  # noqa: E731
    replay(by_field)
    indexed, flips_indexed, candidates = replay(by_field)
    replay(lambda changes, current: ids)
    every, expected, _ = replay(lambda changes, current: ids)
    for i, (a, b, c) in enumerate(zip(flips_pruned, flips_indexed, expected, strict=True)):
        if not a == b == c:
            raise AssertionError(f"event {i}: pruned {a}, by field {b}, every group {c}")
    flipped = sum(len(flips) for flips in expected)
    return Result(
        size,
        events,
        candidates,
        decided,
        flipped / events,
        indexed,
        pruned,
        every,
        pruned_cold,
    )


def report(results: list[Result]) -> str:
    def cols(samples: list[float]) -> str:
        p50, p99 = percentile(samples, 0.5), percentile(samples, 0.99)
        return f"{p50:>8.1f} {p99:>8.1f} {statistics.fmean(samples):>8.1f}"

    lines = [
        "matching cost per member event, µs (one core; same events, same state, same flips)",
        f"{'':>25} | {'affected (pruned)':^26} | {'candidates (by field)':^26} | "
        f"{'every group':^26} | speed-up p50",
        f"{'groups':>6} {'aff':>6} {'cands':>6} {'flips':>4} | "
        + " | ".join(f"{'p50':>8} {'p99':>8} {'mean':>8}" for _ in range(3))
        + " | pruned  cands",
    ]
    for r in results:
        every_p50 = percentile(r.every, 0.5)
        lines.append(
            f"{r.groups:>6} {r.affected:>6.1f} {r.candidates:>6.1f} {r.flips:>4.1f} | "
            f"{cols(r.pruned)} | {cols(r.indexed)} | {cols(r.every)} | "
            f"{every_p50 / percentile(r.pruned, 0.5):>5.0f}x "
            f"{every_p50 / percentile(r.indexed, 0.5):>5.0f}x"
        )
    lines.append("affected (pruned), first run of the script (cold): p50 / p99 / mean")
    lines.extend(f"{r.groups:>6} {cols(r.pruned_cold)}" for r in results)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1_000, 10_000])
    parser.add_argument("--events", type=int, default=2_000)
    parser.add_argument("--members", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    results = []
    for size in args.sizes:
        results.append(run(size, args.events, args.members, args.seed))
        print(report(results[-1:]).splitlines()[3], file=sys.stderr, flush=True)
    print(report(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
