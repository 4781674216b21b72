"""Read py-spy's collapsed stacks (``--format raw``): where a process spent its samples.

``python -m bench.flame FILE [--top 30] [--focus NAME] [--budget] [--us-per-input US]``

Prints the functions with the most samples *including* their callees (a frame counted once
per stack) and *by themselves* (the stack's last frame), as shares of all samples. ``--focus``
keeps only the stacks through a frame whose text contains NAME (e.g. ``_batch``).

``--budget`` prints instead the share of each **part of the path** (:data:`PARTS`): every
sample goes to the part of its innermost frame that belongs to one (a sample in ``orjson``
called by the service's output code is output cost; one in aiokafka's batch builder called
from there is the producer's). With ``--us-per-input`` (the run's CPU µs per input, from the
benchmark's report) each share is also given in µs per input: what each part costs, where the
targets' budgets are set against the raw pipe's whole path.
"""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Iterator
from pathlib import Path


def _frame(text: str) -> str:
    """``func (path/to/module.py:123)`` -> ``func (module.py)``: one name per function."""
    name, _, where = text.partition(" (")
    file = where.rsplit(":", 1)[0].rsplit("/", 1)[-1].rstrip(")")
    return f"{name} ({file})"


def stacks(path: Path, focus: str | None) -> Iterator[tuple[list[str], int]]:
    """Each stack of the file (its frames as py-spy wrote them, outermost first) with its
    sample count; only those through a frame whose name contains ``focus``, when given."""
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [f for f in stack.split(";") if f]
        if focus and not any(focus in _frame(f) for f in frames):
            continue
        yield frames, int(count)


def load(path: Path, focus: str | None) -> tuple[Counter[str], Counter[str], int]:
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for raw, n in stacks(path, focus):
        frames = [_frame(f) for f in raw]
        total += n
        for frame in set(frames):
            inclusive[frame] += n
        if frames:
            own[frames[-1]] += n
    return inclusive, own, total


_PRODUCER = "producer (batching, aiokafka)"
_NETWORK = "consumer and network (aiokafka)"
_OTHER = "event loop, mode, other"
PARTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    # (part, frame markers: a frame belongs to the first part one of whose markers it contains)
    (
        "outputs: shapes and encoding",
        ("core/outputs.py", "MemberService._send", "service/segments.py"),
    ),
    ("member record: model, load, store", ("core/record.py", "record_codec.py")),
    ("query index", ("service/index.py",)),
    ("due index", ("MemberService._reschedule", "due_key")),
    ("core: decisions", ("smartgroups/core/",)),
    ("input decoding (wire, pydantic)", ("smartgroups/wire/", "pydantic/")),
    ("state store (overlay, RocksDB)", ("worker/batch_table.py", "worker/rocks.py")),
    ("changelog records", ("MemberLoop._send_changelog",)),
    (_PRODUCER, ("batch_producer.py", "aiokafka/producer/", "BatchPublisher")),
    (_NETWORK, ("aiokafka/",)),
    ("definitions side (faust agent)", ("DefinitionsService", "service/definitions.py", "faust/")),
    ("member service glue", ("service/members.py", "service/scans.py", "Record.from_message")),
    ("member loop", ("member_loop.py",)),
)
"""The parts of the path :func:`budget` splits a profile into; a frame with none of their
markers is the event loop's, mode's or another library's (:data:`_OTHER`)."""


def _part(frame: str) -> str:
    for part, markers in PARTS:
        if any(marker in frame for marker in markers):
            return part
    return _OTHER


def budget(path: Path, focus: str | None) -> tuple[Counter[str], int]:
    """Samples per part of the path (:data:`PARTS`): each to the part of its innermost frame
    that has one (frames are read with their full paths: ``core/outputs.py`` tells outputs
    apart from decisions)."""
    parts: Counter[str] = Counter()
    total = 0
    for frames, n in stacks(path, focus):
        total += n
        innermost = (_part(frame) for frame in reversed(frames))
        part = next((found for found in innermost if found != _OTHER), _OTHER)
        if part == _NETWORK and any("aiokafka/producer/" in frame for frame in frames):
            part = _PRODUCER  # the connection's request encoding and writes, for the producer
        parts[part] += n
    return parts, total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", type=Path)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--focus")
    parser.add_argument("--budget", action="store_true", help="shares by part of the path")
    parser.add_argument("--us-per-input", type=float, help="CPU µs per input, for --budget")
    args = parser.parse_args(argv)
    if args.budget:
        parts, total = budget(args.file, args.focus)
        if not total:
            print("no samples")
            return 1
        print(f"{total} samples" + (f" through {args.focus!r}" if args.focus else ""))
        for part, n in parts.most_common():
            share = n / total
            cost = f"  {share * args.us_per_input:6.1f} µs" if args.us_per_input else ""
            print(f"{100 * share:6.1f} %{cost}  {part}")
        return 0
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
