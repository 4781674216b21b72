"""End-to-end benchmark: smartgroups beside raw aiokafka, faust and quix-streams pipes, one broker.

``python -m bench.e2e [--profile quick|full] [--out bench/results/latest.json]``

One run, in this order (bench/README.md explains how to read the result):

1. **Data, generated once** (:mod:`bench.workload`, seeded): a member stream (profiles, values,
   answers, probe members, then the change mix) and, per group count G, that space's
   definitions plus 5 % cheap definition changes.
2. **Repetitions, interleaved** (``--reps``, median reported): raw pipe, faust pipe, quix-streams
   stateful pipe, worker with G = 10, 100, 1,000. The pipes drain one topic set preloaded once
   (fresh consumer group each time). A worker run gets its own topic prefix: definitions are
   preloaded and applied first (worker started, results and fan-out drained, worker stopped), then
   the member stream and the definition changes are preloaded and the restarted worker drains
   them. Throughput is input events per second between the first commit and the commit that
   reaches the end offsets (:mod:`bench.kafka_io`); CPU µs per event and peak RSS come from
   ``/proc``.
3. **Latency** at ``--latency-share`` (50 %) of the median G = 100 rate: the last G = 100 worker
   (restarted over its state) gets an open-loop schedule (:mod:`bench.latency`).
4. **Backfill**: a worker loads N members (profiles), then one smart group is created over them;
   members/s until every member was scanned (``scans.members`` of ``/stats/``), with live
   open-loop traffic at ``--backfill-live-share`` of the G = 100 rate meanwhile. RSS per
   100,000 members held comes from this worker: its RSS once idle after the load (a second
   after the drain) minus its RSS before.
5. **Restore**: the backfill worker's data directory is deleted and a worker started on it
   restores every member-path partition from the changelogs: records/s over the restores'
   own time (``restore.ms`` of ``/stats/``), and the wall time until the member path is ready.

Every process started is stopped on exit; the broker too when the run started it (no
``KAFKA_BOOTSTRAP_SERVERS``). Logs stay in the printed temporary directory.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka import TopicPartition

from bench import kafka_io, procstats
from bench.broker import bench_broker
from bench.latency import open_loop
from bench.procs import Proc, Procs
from bench.report import environment, write_results
from bench.workload import Event, Workload, WorkloadSpec, encode

INPUTS = ("member-changes", "property-changes", "form-answers", "group-changes")
OUTPUTS = ("membership-changes", "membership-state", "group-change-results", "dead-letters")
APP_ID = "sg"
PIPE_COMMIT_INTERVAL_S = 1.0
"""How often the faust and quix-streams pipes commit (fewer commits than the worker's favour
them; the raw pipe commits every 0.1 s so that its one-second drain has commit points)."""
WORKER_COMMIT_INTERVAL_S = 0.1
IDLE_AFTER_LOAD_S = 1.0
"""How long the backfill phase lets its worker idle after the load before it reads the RSS:
the memory of a worker holding the members, once it gave back what the load's processing
freed (``smartgroups.worker.heap``: at its first idle fetch wait, 0.2 s)."""
"""The worker's SMARTGROUPS_COMMIT_INTERVAL default: its checkpoints and the definitions
agent's offset commits."""
PIPE_COPIES = {"raw": 10, "quix": 4, "faust": 1}
"""Copies of the records each pipe drains: a drain must span several commits to be timed (the
raw pipe drains ~20x faster than faust, quix-streams ~4x; one copy of quix-streams' drain was
sometimes over within one commit interval, and measured nothing)."""
MEMBERS_READY = "members: ready on partitions"
"""The worker's log line once the member path restored and took its partitions."""
CONSUMING = "members: the definitions side is ready"
"""The worker's log line once its member loop consumes: the definitions side (faust) has
started, so both paths run from then on."""

PROFILES: dict[str, dict[str, Any]] = {
    "quick": {
        "members": 3_000,
        # Drains of 5,000 changes lasted under a second once the member path ran as batches:
        # startup and the one-second faust commit of the definitions decided the figure.
        "changes": 30_000,
        "groups": [10, 100, 1000],
        "reps": 3,
        "partitions": 4,
        "latency_seconds": 20.0,
        "backfill_members": 100_000,
    },
    "full": {
        "members": 20_000,
        "changes": 20_000,
        "groups": [10, 100, 1000],
        "reps": 3,
        "partitions": 4,
        "latency_seconds": 60.0,
        "backfill_members": 1_000_000,
    },
}


@dataclass
class Config:
    """Everything a run needs to know (from the profile, overridden by flags)."""

    members: int
    changes: int
    groups: list[int]
    reps: int
    partitions: int
    latency_seconds: float
    backfill_members: int
    latency_share: float = 0.5
    backfill_live_share: float = 0.2
    seed: int = 42
    spaces: int = 2
    probes_per_space: int = 8
    drain_timeout_s: float = 900.0
    skip_worker: bool = False
    member_path: str = "batch"  # SMARTGROUPS_MEMBER_PATH of the workers
    reference_eps: float | None = None  # the G = 100 rate the loads are shares of; None: measured
    throughput_only: bool = False  # no latency and backfill phases
    py_spy: str | None = None  # record each worker drain with py-spy (collapsed stacks) here


def _median(values: list[float]) -> float | None:
    clean = [v for v in values if not math.isnan(v)]
    return round(statistics.median(clean), 1) if clean else None


class Bench:
    """One benchmark run against ``bootstrap`` (see the module docstring)."""

    def __init__(self, cfg: Config, bootstrap: str, procs: Procs, root: Path) -> None:
        self.cfg = cfg
        self.bootstrap = bootstrap
        self.procs = procs
        self.root = root
        self.run_id = uuid.uuid4().hex[:8]
        self.now_ms = int(time.time() * 1000)
        self.results: dict[str, Any] = {"runs": []}
        self._creations: list[tuple[str, bytes, bytes]] = []
        self._batches: list[list[tuple[str, bytes, bytes]]] = []
        self._defs: dict[int, list[tuple[str, bytes, bytes]]] = {}
        self._def_changes: dict[int, list[list[tuple[str, bytes, bytes]]]] = {}
        self._stream_workload: Workload | None = None
        self._probe_ids: set[str] = set()
        self._workers: dict[int, tuple[str, Path]] = {}
        self._backfilled: tuple[str, Path] | None = None  # the backfill worker's prefix and data

    # -- helpers -------------------------------------------------------------------------------
    def log(self, message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)

    def spec(self, **overrides: Any) -> WorkloadSpec:
        base = {
            "seed": self.cfg.seed,
            "spaces": self.cfg.spaces,
            "members": self.cfg.members,
            "groups": 0,
            "now_ms": self.now_ms,
            "tag": f"{self.run_id}m",
        }
        base.update(overrides)
        return WorkloadSpec(**base)

    @staticmethod
    def prefixed(prefix: str, records: list[tuple[str, bytes, bytes]]) -> Any:
        return ((prefix + topic, key, value) for topic, key, value in records)

    async def preload(self, prefix: str, records: list[tuple[str, bytes, bytes]]) -> None:
        await kafka_io.preload(self.bootstrap, self.prefixed(prefix, records))

    # -- data ----------------------------------------------------------------------------------
    def generate(self) -> None:
        """Encode everything once: member creations, one change batch per rep, definitions.

        Every G gets the same members and the same change batches; its own definitions and,
        per batch, 5 % definition changes drawn from those definitions.
        """
        cfg = self.cfg
        stream = Workload(self.spec())
        stream.definitions()  # names of static groups; the events themselves are per G
        creations = itertools.chain(stream.probe_members(cfg.probes_per_space), stream.creations())
        self._creations = [encode(e) for e in creations]
        self._batches = [
            [encode(e) for e in stream.changes(cfg.changes, definitions=False)]
            for _ in range(cfg.reps)
        ]
        self._stream_workload = stream
        share = max(1, cfg.changes * 5 // 95)
        for g in cfg.groups:
            defs = Workload(self.spec(groups=g, seed=cfg.seed + g, tag=f"{self.run_id}d{g}"))
            self._defs[g] = [encode(e) for e in defs.definitions()]
            self._def_changes[g] = [
                [encode(e) for e in defs.definition_changes(share)] for _ in range(cfg.reps)
            ]
        sizes = [len(v) for batch in self._batches for _, _, v in batch]
        self.results["workload"] = {
            "seed": cfg.seed,
            "spaces": cfg.spaces,
            "members": cfg.members,
            "creation_events": len(self._creations),
            "changes_per_batch": cfg.changes,
            "definition_changes_per_batch": share,
            "mean_change_bytes": round(sum(sizes) / len(sizes), 1),
            "definitions": {str(g): len(d) for g, d in self._defs.items()},
        }
        self.log(f"generated {len(self._creations)} creations, {cfg.reps} x {cfg.changes} changes")

    # -- pipes ---------------------------------------------------------------------------------
    async def prepare_pipes(self) -> dict[str, str]:
        """Preload the pipes' topic sets once: G = 100's definitions, member stream, changes.

        Each pipe gets :data:`PIPE_COPIES` copies of the same records: a one-copy drain of the
        faster pipes would be over before two commits could time it.
        """
        g = 100 if 100 in self._defs else self.cfg.groups[0]
        records = self._defs[g] + self._creations + self._batches[0] + self._def_changes[g][0]
        prefixes = {
            "faust": f"sgb-{self.run_id}-pipes.",
            "raw": f"sgb-{self.run_id}-pipes-raw.",
            "quix": f"sgb-{self.run_id}-pipes-quix.",
        }
        for kind, prefix in prefixes.items():
            await kafka_io.create_topics(
                self.bootstrap, [prefix + t for t in (*INPUTS, "out")], self.cfg.partitions
            )
            await self.preload(prefix, records * PIPE_COPIES[kind])
        return prefixes

    async def run_pipe(self, kind: str, prefix: str, rep: int) -> dict[str, Any]:
        module = {
            "raw": "bench.pipes.raw",
            "faust": "bench.pipes.faust_pipe",
            "quix": "bench.pipes.quix_pipe",
        }[kind]
        group = f"{prefix}{kind}-{rep}"
        interval = 0.1 if kind == "raw" else PIPE_COMMIT_INTERVAL_S
        args = ["-m", module, "--bootstrap", self.bootstrap, "--group", group]
        args += ["--out", prefix + "out", "--commit-interval", str(interval)]
        if kind == "faust":
            args += ["--partitions", str(self.cfg.partitions)]
        proc = self.procs.python(f"pipe-{kind}-{rep}", [*args, *(prefix + t for t in INPUTS)])
        # Timed from its readiness: quix-streams creates its changelog topics first (seconds),
        # which a drain timed from the start counted when the first commit came late.
        proc.wait_ready()
        ends = await kafka_io.end_offsets(self.bootstrap, [prefix + t for t in INPUTS])
        drain = await kafka_io.watch_drain(
            self.bootstrap, group, ends, timeout_s=self.cfg.drain_timeout_s, pid=proc.pid
        )
        peak = procstats.peak_rss_bytes(proc.pid)
        proc.stop()
        return self._record(f"pipe_{kind}", rep, drain, peak)

    def _record(self, name: str, rep: int, drain: kafka_io.Drain, peak: int) -> dict[str, Any]:
        row = {
            "system": name,
            "rep": rep,
            "events": drain.total,
            "measured_events": drain.measured_events,
            "seconds": round(drain.seconds, 3),
            "eps": round(drain.rate, 1),
            "cpu_us_per_event": round(drain.cpu_us_per_event, 1),
            "peak_rss_mb": round(peak / 2**20, 1),
            "commit_points": len(drain.points),
            "timed_out": drain.timed_out,
        }
        self.results["runs"].append(row)
        self.log(f"{name} rep {rep}: {row['eps']} ev/s, {row['cpu_us_per_event']} µs/ev")
        return row

    # -- worker --------------------------------------------------------------------------------
    def start_worker(self, name: str, prefix: str, data_dir: Path) -> Proc:
        port = _free_port()
        env = {
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "SMARTGROUPS_TOPIC_PREFIX": prefix,
            "SMARTGROUPS_APP_ID": APP_ID,
            "SMARTGROUPS_PARTITIONS": str(self.cfg.partitions),
            "SMARTGROUPS_DATA_DIR": str(data_dir),
            "SMARTGROUPS_WEB_PORT": str(port),
            "SMARTGROUPS_MEMBER_PATH": self.cfg.member_path,
        }
        args = ["-m", "smartgroups", "worker", "--loglevel", "info"]
        proc = self.procs.python(name, args, env, web_port=port)
        proc.wait_ready()
        return proc

    async def create_worker_topics(self, prefix: str) -> None:
        names = [prefix + t for t in (*INPUTS, *OUTPUTS)]
        names += [f"{prefix}{APP_ID}-fanout", f"{prefix}{APP_ID}-commands"]
        await kafka_io.create_topics(
            self.bootstrap, names, self.cfg.partitions, compacted=[prefix + "membership-state"]
        )
        await asyncio.sleep(0.5)  # let the metadata reach every listener

    async def apply_definitions(self, prefix: str, data_dir: Path, defs: list[Any], name: str):
        """Start a worker over ``defs`` alone, wait until applied everywhere, stop it.

        Every topic the worker needs is created here first, as production does; the worker
        then only verifies them.
        """
        await self.create_worker_topics(prefix)
        await self.preload(prefix, defs)
        proc = self.start_worker(f"{name}-defs", prefix, data_dir)
        results = prefix + "group-change-results"
        deadline = time.monotonic() + self.cfg.drain_timeout_s
        while await kafka_io.total_records(self.bootstrap, [results]) < len(defs):
            if time.monotonic() > deadline:
                raise RuntimeError(f"definitions not applied:\n{proc.tail()}")
            await asyncio.sleep(0.5)
        internal = [prefix + "group-changes", f"{prefix}{APP_ID}-fanout"]
        internal.append(f"{prefix}{APP_ID}-commands")
        ends = await kafka_io.end_offsets(self.bootstrap, internal)
        drain = await kafka_io.watch_drain(
            self.bootstrap, self.groups_of(prefix), ends, timeout_s=self.cfg.drain_timeout_s
        )
        if not drain.done:
            raise RuntimeError(f"fan-out not drained:\n{proc.tail()}")
        proc.stop()

    async def setup_worker(self, groups: int) -> None:
        """Give G its own topics and state: definitions applied, then every member created."""
        prefix = f"sgb-{self.run_id}-g{groups}."
        data_dir = self.root / f"data-g{groups}"
        name = f"worker-g{groups}"
        t0 = time.monotonic()
        await self.apply_definitions(prefix, data_dir, self._defs[groups], name)
        await self.preload(prefix, self._creations)
        proc = self.start_worker(f"{name}-load", prefix, data_dir)
        ends = await kafka_io.end_offsets(self.bootstrap, [prefix + t for t in INPUTS])
        drain = await kafka_io.watch_drain(
            self.bootstrap, self.groups_of(prefix), ends, timeout_s=self.cfg.drain_timeout_s
        )
        stats = proc.stats()
        proc.stop()
        if not drain.done:
            raise RuntimeError(f"{name}: members not loaded:\n{proc.tail()}")
        self._workers[groups] = (prefix, data_dir)
        self.results.setdefault("setup", {})[str(groups)] = {
            "seconds": round(time.monotonic() - t0, 1),
            "transitions": stats.get("transitions"),
        }
        self.log(f"{name}: {self.cfg.members} members loaded, {stats.get('transitions')} joins")

    def groups_of(self, prefix: str) -> kafka_io.Groups:
        """Which consumer group commits each topic: the batch member path commits the member
        topics (and the fan-out) in ``{app}-members``, the definitions in ``{app}``."""
        app = prefix + APP_ID
        if self.cfg.member_path != "batch":
            return app
        member_topics = {prefix + t for t in INPUTS if t != "group-changes"}
        member_topics.add(f"{app}-fanout")
        return lambda topic: f"{app}-members" if topic in member_topics else app

    async def run_worker(self, groups: int, rep: int) -> dict[str, Any]:
        """Preload change batch ``rep`` while the worker is stopped, restart it, time the drain."""
        prefix, data_dir = self._workers[groups]
        name = f"worker-g{groups}-r{rep}"
        await self.preload(prefix, self._batches[rep] + self._def_changes[groups][rep])
        inputs = [prefix + t for t in INPUTS]
        ends = await kafka_io.end_offsets(self.bootstrap, inputs)
        baseline = await _committed(self.bootstrap, self.groups_of(prefix), ends)
        outputs = [prefix + t for t in OUTPUTS]
        outputs_before = await kafka_io.total_records(self.bootstrap, outputs)
        proc = self.start_worker(name, prefix, data_dir)
        if self.cfg.member_path == "batch":
            # Timed once both paths consume: the definitions agent commits every 0.1 s from
            # its start, and a first commit before the member loop had joined its group and
            # restored counted that start-up in the drain; the member loop consumes once the
            # definitions side has started (an earlier watch saw most member inputs done
            # before it began, and timed only the definitions that followed).
            proc.wait_ready(markers=(MEMBERS_READY,))
            proc.wait_ready(markers=(CONSUMING,))
        before = proc.stats()
        spy = self._spy(proc, name)
        drain = await kafka_io.watch_drain(
            self.bootstrap,
            self.groups_of(prefix),
            ends,
            timeout_s=self.cfg.drain_timeout_s,
            baseline=baseline,
            pid=proc.pid,
        )
        peak = procstats.peak_rss_bytes(proc.pid)
        stats = proc.stats()
        _stop_spy(spy)
        proc.stop()
        row = self._record(f"smartgroups_{groups}", rep, drain, peak)
        row["events"] = drain.total - baseline
        # Output records (changes, states, results, dead letters) per input, at the drain's rate.
        produced = await kafka_io.total_records(self.bootstrap, outputs) - outputs_before
        row["output_records"] = produced
        if row["events"] and math.isfinite(row["eps"]):
            row["output_records_per_s"] = round(row["eps"] * produced / row["events"], 1)
            self.log(f"{name}: {produced} output records, {row['output_records_per_s']} per s")
        for counter in ("transitions", "batches", "checkpoints"):
            row[counter] = (stats.get(counter) or 0) - (before.get(counter) or 0)
        return row

    def _spy(self, proc: Proc, name: str) -> subprocess.Popen[bytes] | None:
        """py-spy recording ``proc`` into ``--py-spy DIR/name.txt`` (collapsed stacks), or None."""
        if self.cfg.py_spy is None:
            return None
        out = Path(self.cfg.py_spy) / f"{name}.txt"
        out.parent.mkdir(parents=True, exist_ok=True)
        spy = Path(sys.executable).with_name("py-spy")
        args = [str(spy), "record", "--pid", str(proc.pid), "--format", "raw", "-o", str(out)]
        args += ["--rate", "250", "--nonblocking"]
        return subprocess.Popen(args, stdout=subprocess.DEVNULL)

    # -- latency -------------------------------------------------------------------------------
    def latency_events(self, workload: Workload, count: int, probe_share: float = 0.2) -> list:
        events: list[Event] = []
        changes = workload.changes(count, definitions=False)
        for i in range(count):
            if i % round(1 / probe_share) == 0:
                probe = workload.probe()
                self._probe_ids.add(probe.value["id"])
                events.append(probe)
            else:
                events.append(next(changes))
        return events

    async def run_latency(self, rate: float) -> dict[str, Any]:
        groups = 100 if 100 in self._workers else self.cfg.groups[0]
        prefix, data_dir = self._workers[groups]
        proc = self.start_worker(f"worker-latency-g{groups}", prefix, data_dir)
        assert self._stream_workload is not None
        seconds = self.cfg.latency_seconds
        events = self.latency_events(self._stream_workload, int(rate * seconds) + 1)
        result = await open_loop(
            self.bootstrap,
            lambda t: prefix + t,
            events,
            rate=rate,
            seconds=seconds,
            probe_ids=self._probe_ids,
        )
        proc.stop()
        summary = {"groups": groups, "share_of_max": self.cfg.latency_share, **result.summary()}
        self.log(f"latency at {rate:.0f} ev/s: {summary}")
        return summary

    # -- backfill ------------------------------------------------------------------------------
    async def run_backfill(self, live_rate: float) -> dict[str, Any]:
        cfg = self.cfg
        n = cfg.backfill_members
        prefix = f"sgb-{self.run_id}-bf."
        data_dir = self.root / "data-bf"
        workload = Workload(
            self.spec(spaces=1, members=n, static_groups=0, tag=f"{self.run_id}b", seed=cfg.seed)
        )
        defs = [encode(e) for e in workload.definitions()]
        await self.apply_definitions(prefix, data_dir, defs, "worker-bf")
        proc = self.start_worker("worker-bf", prefix, data_dir)
        rss_before = procstats.rss_bytes(proc.pid)
        load = [encode(e) for e in workload.probe_members(cfg.probes_per_space)]
        load += [encode(e) for e in workload.creations(values=False)]
        t0 = time.monotonic()
        await self.preload(prefix, load)
        ends = await kafka_io.end_offsets(self.bootstrap, [prefix + "member-changes"])
        drain = await kafka_io.watch_drain(
            self.bootstrap, self.groups_of(prefix), ends, timeout_s=cfg.drain_timeout_s * 2
        )
        load_s = time.monotonic() - t0
        await asyncio.sleep(IDLE_AFTER_LOAD_S)
        rss_after = procstats.rss_bytes(proc.pid)
        rocksdb = _rocksdb_mb(proc.stats())
        held = len(load)
        self.log(f"backfill: {held} members loaded in {load_s:.1f}s")
        scanned0 = int(proc.stats().get("scans.members", 0))
        stop = asyncio.Event()
        live_events = self.latency_events(workload, int(live_rate * 600))
        live = asyncio.create_task(
            open_loop(
                self.bootstrap,
                lambda t: prefix + t,
                live_events,
                rate=live_rate,
                seconds=600,
                probe_ids=self._probe_ids,
                warmup_s=3.0,
                stop=stop,
            )
        )
        await asyncio.sleep(3.0)
        spy = self._spy(proc, "worker-backfill")  # the backfill and the live traffic beside it
        group = workload.backfill_group(0, "backfill")
        group.value["conditions"] = BACKFILL_CONDITIONS
        created = time.monotonic()
        await self.preload(prefix, [encode(group)])
        deadline = created + cfg.drain_timeout_s * 2
        scanned = 0
        while time.monotonic() < deadline:
            scanned = int(proc.stats().get("scans.members", 0)) - scanned0
            if scanned >= held:
                break
            await asyncio.sleep(0.1)
        elapsed = time.monotonic() - created
        _stop_spy(spy)
        stop.set()
        live_result = await live
        stats = proc.stats()
        proc.stop()
        self._backfilled = (prefix, data_dir)
        return {
            "members": held,
            "scanned": scanned,
            "seconds": round(elapsed, 2),
            "members_per_s": round(scanned / elapsed, 1) if elapsed else None,
            "complete": scanned >= held,
            "load_members_per_s": round(held / load_s, 1) if drain.done else None,
            "rss_mb_before_load": round(rss_before / 2**20, 1),
            "rss_mb_after_load": round(rss_after / 2**20, 1),
            "rss_mb_per_100k_members": round((rss_after - rss_before) / 2**20 * 1e5 / held, 1),
            "rocksdb_mb_after_load": rocksdb,
            "transitions": stats.get("transitions"),
            "live": live_result.summary(),
        }

    # -- restore -------------------------------------------------------------------------------
    async def run_restore(self) -> dict[str, Any]:
        """The backfill worker's data directory, lost: a worker started on an empty one
        restores every member-path partition from its changelogs. The rate is the records
        read over the time the restores took (``restored.records`` and ``restore.ms`` of
        ``/stats/``); the wall time runs from the process start until the member path is ready.
        """
        assert self._backfilled is not None
        prefix, data_dir = self._backfilled
        shutil.rmtree(data_dir)
        t0 = time.monotonic()
        proc = self.start_worker("worker-restore", prefix, data_dir)
        proc.wait_ready(markers=(MEMBERS_READY,))
        wall = time.monotonic() - t0
        stats = proc.stats()
        peak = procstats.peak_rss_bytes(proc.pid)
        proc.stop()
        records = int(stats.get("restored.records", 0))
        ms = int(stats.get("restore.ms", 0))
        summary = {
            "records": records,
            "seconds": round(ms / 1000, 2),
            "records_per_s": round(records / (ms / 1000), 1) if ms else None,
            "wall_seconds": round(wall, 2),
            "peak_rss_mb": round(peak / 2**20, 1),
        }
        self.log(f"restore: {summary}")
        return summary

    # -- the whole run -------------------------------------------------------------------------
    async def run(self) -> dict[str, Any]:
        cfg = self.cfg
        self.generate()
        pipes = await self.prepare_pipes()
        if not cfg.skip_worker:
            for groups in cfg.groups:
                await self.setup_worker(groups)
        for rep in range(cfg.reps):
            await self.run_pipe("raw", pipes["raw"], rep)
            await self.run_pipe("faust", pipes["faust"], rep)
            await self.run_pipe("quix", pipes["quix"], rep)
            if not cfg.skip_worker:
                for groups in cfg.groups:
                    await self.run_worker(groups, rep)
        self.summarize()
        if not cfg.skip_worker and not cfg.throughput_only:
            ref = cfg.reference_eps or (
                self.results["smartgroups_eps"].get("100")
                or next(iter(self.results["smartgroups_eps"].values()))
            )
            self.results["latency"] = await self.run_latency(ref * cfg.latency_share)
            self.results["backfill"] = await self.run_backfill(ref * cfg.backfill_live_share)
            self.results["restore"] = await self.run_restore()
            self.summarize()
        return self.results

    def summarize(self) -> None:
        runs = self.results["runs"]

        def pick(system: str, key: str = "eps") -> list[float]:
            return [r[key] for r in runs if r["system"] == system]

        res = self.results
        res["pipe_raw_eps"] = _median(pick("pipe_raw"))
        res["pipe_faust_eps"] = _median(pick("pipe_faust"))
        res["pipe_quix_eps"] = _median(pick("pipe_quix"))
        res["smartgroups_eps"] = {
            str(g): _median(pick(f"smartgroups_{g}"))
            for g in self.cfg.groups
            if pick(f"smartgroups_{g}")
        }
        res["smartgroups_output_records_per_s"] = {
            str(g): _median([r.get("output_records_per_s") for r in runs
                             if r["system"] == f"smartgroups_{g}" and "output_records_per_s" in r])
            for g in self.cfg.groups
        }  # fmt: skip
        res["eps_range"] = {
            r: [min(pick(r)), max(pick(r))] for r in {x["system"] for x in runs} if pick(r)
        }
        res["cpu_us_per_event"] = {
            r: _median(pick(r, "cpu_us_per_event")) for r in sorted({x["system"] for x in runs})
        }
        res["peak_rss_mb"] = {
            r: max(pick(r, "peak_rss_mb")) for r in sorted({x["system"] for x in runs})
        }
        faust = res["pipe_faust_eps"]
        if faust:
            res["ratio_to_faust"] = {
                g: round(v / faust, 3) for g, v in res["smartgroups_eps"].items() if v
            }
        if "latency" in res:
            lat = res["latency"]
            res["latency_ms"] = {"p50": lat["p50"], "p99": lat["p99"], "max": lat["max"]}
        if "backfill" in res:
            bf = res["backfill"]
            res["backfill_members_per_s"] = bf["members_per_s"]
            res["backfill_live_latency_ms"] = {k: bf["live"][k] for k in ("p50", "p99", "max")}
            res["rss_mb_per_100k_members"] = bf["rss_mb_per_100k_members"]
        if "restore" in res:
            res["restore_records_per_s"] = res["restore"]["records_per_s"]
        res["targets"] = targets(res)


def _rocksdb_mb(stats: dict[str, Any]) -> dict[str, float]:
    """The worker's RocksDB memory (``rocksdb.{table}.{kind}`` of ``/stats/``), MiB by kind."""
    totals: dict[str, float] = {}
    for key, value in stats.items():
        if key.startswith("rocksdb."):
            kind = key.rsplit(".", 1)[1]
            totals[kind] = totals.get(kind, 0.0) + value / 2**20
    return {kind: round(mb, 1) for kind, mb in sorted(totals.items())}


BACKFILL_CONDITIONS = {
    "all": [
        {
            "field": "profile.email",
            "op": "email_domain",
            "value": ["corp0.com", "corp1.com", "gmail.com"],
        },
        {
            "any": [
                {"field": "profile.last_active_at", "op": "within_last", "value": {"days": 30}},
                {"field": "profile.tags", "op": "has_any", "value": ["tag-vip", "tag-early"]},
                {"field": "profile.role", "op": "neq", "value": "member"},
            ]
        },
    ]
}
"""The backfilled group: profile-only triggers (the load phase carries profiles only)."""


def targets(res: dict[str, Any]) -> dict[str, Any]:
    """Each throughput, latency and backfill target of issue 15 with its value and verdict.

    Throughput targets are ratios to the pipes measured in the same run (raw aiokafka, the
    quix-streams stateful pipe), so a slow phase of the shared machine hits both sides.
    """
    out: dict[str, Any] = {}
    raw = res.get("pipe_raw_eps")
    quix = res.get("pipe_quix_eps")
    eps = res.get("smartgroups_eps", {})

    def ratio(name: str, groups: str, base: float | None, floor: float) -> None:
        if base and eps.get(groups):
            value = round(eps[groups] / base, 3)
            out[name] = {"value": value, "target": floor, "ok": value >= floor}

    ratio("g10_vs_raw_ge_0.3", "10", raw, 0.3)
    ratio("g10_vs_quix_ge_1.0", "10", quix, 1.0)
    ratio("g100_vs_raw_ge_0.2", "100", raw, 0.2)
    ratio("g1000_vs_raw_ge_0.03", "1000", raw, 0.03)
    lat = res.get("latency_ms", {})
    if lat.get("p50") is not None:
        out["latency_p50_le_10ms"] = {"value": lat["p50"], "target": 10, "ok": lat["p50"] <= 10}
    if lat.get("p99") is not None:
        out["latency_p99_le_50ms"] = {"value": lat["p99"], "target": 50, "ok": lat["p99"] <= 50}
    if res.get("backfill_members_per_s") is not None:
        value = res["backfill_members_per_s"]
        out["backfill_ge_50k_per_s"] = {"value": value, "target": 50_000, "ok": value >= 50_000}
    live = res.get("backfill_live_latency_ms", {})
    if live.get("p99") is not None:
        out["backfill_live_p99_le_100ms"] = {
            "value": live["p99"],
            "target": 100,
            "ok": live["p99"] <= 100,
        }
    if res.get("restore_records_per_s") is not None:
        value = res["restore_records_per_s"]
        out["restore_ge_100k_per_s"] = {"value": value, "target": 100_000, "ok": value >= 100_000}
    rss = res.get("rss_mb_per_100k_members")
    if rss is not None:
        out["rss_per_100k_members_le_64mb"] = {"value": rss, "target": 64, "ok": rss <= 64}
    return out


async def _committed(
    bootstrap: str, group: kafka_io.Groups, ends: dict[TopicPartition, int]
) -> int:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return await kafka_io.committed(admin, group, ends)
    finally:
        await admin.close()


def _stop_spy(spy: subprocess.Popen[bytes] | None) -> None:
    """Stop a py-spy recording (:meth:`Bench._spy`): it writes its file and exits."""
    if spy is not None:
        spy.send_signal(signal.SIGINT)
        spy.wait(timeout=60)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, Config]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=sorted(PROFILES), default="quick")
    parser.add_argument("--out", type=Path, default=Path("bench/results/latest.json"))
    parser.add_argument("--chart", type=Path, default=Path("bench/results/throughput.png"))
    parser.add_argument("--members", type=int)
    parser.add_argument("--changes", type=int)
    parser.add_argument("--groups", type=lambda s: [int(x) for x in s.split(",")])
    parser.add_argument("--reps", type=int)
    parser.add_argument("--partitions", type=int)
    parser.add_argument("--latency-seconds", type=float)
    parser.add_argument("--backfill-members", type=int)
    parser.add_argument("--skip-worker", action="store_true", help="pipes only")
    parser.add_argument(
        "--member-path",
        choices=["agent", "batch"],
        default="batch",
        help="the workers' member path (SMARTGROUPS_MEMBER_PATH)",
    )
    parser.add_argument(
        "--reference-eps",
        type=float,
        help="the G = 100 rate that the latency and backfill loads are shares of, instead of the "
        "measured one (to compare two versions under the same loads)",
    )
    parser.add_argument(
        "--throughput-only", action="store_true", help="no latency and backfill phases"
    )
    parser.add_argument(
        "--py-spy",
        metavar="DIR",
        help="record every worker drain, and the backfill, with py-spy into DIR (collapsed "
        "stacks; python -m bench.flame FILE --budget)",
    )
    args = parser.parse_args(argv)
    values = dict(PROFILES[args.profile])
    for key in values:
        given = getattr(args, key, None)
        if given is not None:
            values[key] = given
    cfg = Config(
        **values,
        skip_worker=args.skip_worker,
        reference_eps=args.reference_eps,
        member_path=args.member_path,
        throughput_only=args.throughput_only,
        py_spy=args.py_spy,
    )
    return args, cfg


def main(argv: list[str] | None = None) -> int:
    args, cfg = parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="smartgroups-bench-"))
    print(f"logs and state in {root}", flush=True)
    started = time.time()
    with bench_broker() as (bootstrap, broker):
        bench: Bench | None = None
        try:
            with Procs(root) as procs:
                bench = Bench(cfg, bootstrap, procs, root)
                results = asyncio.run(bench.run())
        finally:  # every process stopped: the run's topics go (a run leaves gigabytes)
            if bench is not None:
                run = f"sgb-{bench.run_id}"
                deleted = asyncio.run(kafka_io.delete_topics_with(bootstrap, run))
                print(f"deleted the run's {deleted} topics", flush=True)
    results["environment"] = environment(
        broker, cfg, PIPE_COMMIT_INTERVAL_S, WORKER_COMMIT_INTERVAL_S
    )
    results["profile"] = args.profile
    results["run_id"] = bench.run_id
    results["wall_seconds"] = round(time.time() - started, 1)
    write_results(results, args.out, args.chart)
    print(json.dumps({k: v for k, v in results.items() if k not in ("runs",)}, indent=2))
    for data_dir in root.glob("data-*"):
        shutil.rmtree(data_dir, ignore_errors=True)
    print(f"process logs kept in {root}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
