"""``throughput.png``: smartgroups throughput against group count, beside the two pipes.

``python -m bench.chart [bench/results/latest.json] [bench/results/throughput.png]`` redraws it
from a result file. Needs matplotlib (imported here only).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import orjson


def draw(results: dict[str, Any], path: Path) -> None:
    """Bars for G = 10/100/1,000 (min-max whiskers), lines for the raw, faust and quix pipes."""
    eps = results.get("smartgroups_eps") or {}
    ranges = results.get("eps_range") or {}
    groups = sorted(eps, key=int)
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    xs = range(len(groups))
    values = [eps[g] or 0 for g in groups]
    low = [
        values[i] - ranges.get(f"smartgroups_{g}", [values[i]] * 2)[0] for i, g in enumerate(groups)
    ]
    high = [
        ranges.get(f"smartgroups_{g}", [values[i]] * 2)[1] - values[i] for i, g in enumerate(groups)
    ]
    ax.bar(xs, values, color="#3b7dd8", yerr=[low, high], capsize=4, label="smartgroups worker")
    for x, v in zip(xs, values, strict=True):
        ax.annotate(
            f"{v:,.0f}",
            (x, v),
            ha="center",
            va="bottom",
            fontsize=8,
            xytext=(0, 3),
            textcoords="offset points",
        )
    faust = results.get("pipe_faust_eps")
    if faust:
        ax.axhline(faust, color="#e07b00", linestyle="-", label=f"faust pipe {faust:,.0f}/s")
        ax.axhline(0.5 * faust, color="#e07b00", linestyle=":", label="0.5x faust (target at 100)")
        ax.axhline(
            0.3 * faust, color="#e07b00", linestyle="--", label="0.3x faust (target at 1,000)"
        )
    quix = results.get("pipe_quix_eps")
    if quix:
        ax.axhline(
            quix, color="#2a9d5b", linestyle="-", label=f"quix-streams stateful pipe {quix:,.0f}/s"
        )
    raw = results.get("pipe_raw_eps")
    title = "Drain throughput, input events/s (median of reps)"
    if raw:
        title += (
            f"\nraw aiokafka pipe: {raw:,.0f}/s (off scale)" if faust and raw > 4 * faust else ""
        )
        if not faust or raw <= 4 * faust:
            ax.axhline(raw, color="#444444", label=f"raw aiokafka pipe {raw:,.0f}/s")
    env = results.get("environment", {})
    ax.set_xticks(list(xs), [f"{int(g):,} groups" for g in groups])
    ax.set_ylabel("input events / s")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="upper right")
    fig.text(
        0.01,
        0.01,
        f"{env.get('cores')} cores, {env.get('cpu_model', '')[:40]}, "
        f"partitions {env.get('settings', {}).get('partitions')}",
        fontsize=6,
        color="gray",
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def main(argv: list[str]) -> int:
    source = Path(argv[0]) if argv else Path("bench/results/latest.json")
    target = Path(argv[1]) if len(argv) > 1 else source.with_name("throughput.png")
    draw(orjson.loads(source.read_bytes()), target)
    print(target)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
