"""The result file: environment of the run, JSON output, and the chart (when matplotlib exists).

``environment()`` records what a reader needs to compare two result files: cores and CPU model,
Python and package versions, the broker (private or external, version, heap), partitions and
the client settings the pipes and the worker share, and the git commit of the tree.
"""

from __future__ import annotations

import os
import platform
import subprocess
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import Any

import orjson

PACKAGES = (
    "faust-streaming",
    "mode-streaming",
    "aiokafka",
    "orjson",
    "pydantic",
    "rocksdict",
    "quixstreams",
)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _git() -> dict[str, Any]:
    def run(*args: str) -> str:
        done = subprocess.run(["git", *args], capture_output=True, text=True, check=False)
        return done.stdout.strip()

    return {"commit": run("rev-parse", "--short", "HEAD"), "dirty": bool(run("status", "-s"))}


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def environment(
    broker: dict[str, Any], cfg: Any, pipe_commit_interval_s: float, worker_commit_interval_s: float
) -> dict[str, Any]:
    """Machine, versions, broker and the settings every measured system shares."""
    return {
        "cores": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
        "packages": {name: _version(name) for name in PACKAGES},
        "broker": {k: v for k, v in broker.items() if k != "pid"},
        "config": asdict(cfg),
        "settings": {
            "partitions": cfg.partitions,
            "processing_guarantee": "at_least_once",
            "worker_commit_interval_s": worker_commit_interval_s,
            "pipe_commit_interval_s": pipe_commit_interval_s,
            "raw_pipe_commit_interval_s": 0.1,
            "producer": {"acks": "all", "linger_ms": 5, "max_batch_size": 131072},
            "event_loop": "asyncio (no uvloop)",
            "pinning": "none (broker, worker and load generator share both cores)",
        },
        "git": _git(),
    }


def write_results(results: dict[str, Any], out: Path, chart: Path) -> None:
    """Write ``out`` (JSON) and, when matplotlib is installed, ``chart`` (PNG)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    try:
        from bench.chart import draw
    except ImportError:  # matplotlib is optional
        print("matplotlib not installed: no chart (pip install matplotlib)")
        return
    draw(results, chart)
