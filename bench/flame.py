"""Read py-spy's collapsed stacks (``--format raw``): where a process spent its samples.

``python -m bench.flame FILE [--top 30] [--focus NAME]``

Prints the functions with the most samples *including* their callees (a frame counted once
per stack) and *by themselves* (the stack's last frame), as shares of all samples. ``--focus``
keeps only the stacks through a frame whose text contains NAME (e.g. ``_batch``).
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path


def _frame(text: str) -> str:
    """``func (path/to/module.py:123)`` -> ``func (module.py)``: one name per function."""
    name, _, where = text.partition(" (")
    file = where.rsplit(":", 1)[0].rsplit("/", 1)[-1].rstrip(")")
    return f"{name} ({file})"


def load(path: Path, focus: str | None) -> tuple[Counter[str], Counter[str], int]:
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [_frame(f) for f in stack.split(";") if f]
        if focus and not any(focus in f for f in frames):
            continue
        n = int(count)
        total += n
        for frame in set(frames):
            inclusive[frame] += n
        if frames:
            own[frames[-1]] += n
    return inclusive, own, total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", type=Path)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--focus")
    args = parser.parse_args(argv)
    inclusive, own, total = load(args.file, args.focus)
    if not total:
        print("no samples")
        return 1
    print(f"{total} samples" + (f" through {args.focus!r}" if args.focus else ""))
    for title, counter in (("inclusive", inclusive), ("self", own)):
        print(f"\n-- {title}")
        for frame, n in counter.most_common(args.top):
            print(f"{100 * n / total:6.1f} %  {frame}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
