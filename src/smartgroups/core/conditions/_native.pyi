"""Type stub of the native evaluator (``_native.c``); see ``native.py``."""

from collections.abc import Callable
from datetime import datetime

class Program:
    def __init__(self, nodes: tuple[tuple[object, ...], ...], /) -> None: ...
    def __call__(self, member: object, now: datetime, /) -> bool: ...

def configure(
    fold: Callable[[str], str],
    parse_instant: Callable[[str], datetime | None],
    memo: dict[str, datetime | None],
    /,
) -> None: ...
