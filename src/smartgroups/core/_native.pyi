"""Type stub of the native extension (``_native.c``); see ``extension.py``."""

from collections.abc import Callable, Container, Iterable, Mapping
from datetime import datetime

LAYOUT: dict[str, int]

class Program:
    def __init__(self, nodes: tuple[tuple[object, ...], ...], /) -> None: ...
    def __call__(self, member: object, now: datetime, /) -> bool: ...

def configure(
    fold: Callable[[str], str],
    parse_instant: Callable[[str], datetime | None],
    memo: dict[str, datetime | None],
    /,
) -> None: ...
def cascade(
    nodes: Mapping[str, tuple[object, ...]],
    dependents: Mapping[str, Iterable[str]],
    start: Iterable[str],
    decide: Callable[[str, frozenset[str]], bool],
    current: frozenset[str],
    member: object = ...,
    now: datetime = ...,
    eligible: bool = ...,
    exempt: Container[str] = ...,
    timed: list[str] = ...,
    /,
) -> list[tuple[str, bool]]: ...
def partition(key: bytes, partitions: int, /) -> int: ...
