"""A tiny HTTP client for the query API tests, and the model the answers are checked against."""

from __future__ import annotations

import time
import unicodedata
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from typing import Any

import orjson

Answer = tuple[int, dict[str, str], Any]
"""(HTTP status, headers, decoded JSON body)."""


def call(
    port: int,
    path: str,
    *,
    method: str = "GET",
    body: Any = None,
    token: str | None = None,
    raw_body: bytes | None = None,
) -> Answer:
    data = raw_body if raw_body is not None else (None if body is None else orjson.dumps(body))
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), orjson.loads(response.read())
    except urllib.error.HTTPError as error:
        text = error.read()
        try:
            doc = orjson.loads(text)
        except orjson.JSONDecodeError:
            doc = text.decode(errors="replace")
        return error.code, dict(error.headers), doc


def until(
    fetch: Callable[[], Answer], ok: Callable[[Answer], bool], timeout: float = 60.0
) -> Answer:
    """Poll ``fetch`` until ``ok`` holds on its answer (503s and partial states are waited out)."""
    deadline = time.monotonic() + timeout
    answer = fetch()
    while not ok(answer):
        if time.monotonic() > deadline:
            raise AssertionError(f"never got the expected answer; last: {answer}")
        time.sleep(0.3)
        answer = fetch()
    return answer


# -- the model -----------------------------------------------------------------------------------


def fold(text: str) -> str:
    return unicodedata.normalize("NFC", unicodedata.normalize("NFD", text).casefold())


def display(member: dict[str, Any]) -> str:
    names = [member[k] for k in ("first_name", "last_name") if isinstance(member.get(k), str)]
    name = " ".join(names).strip()
    if not name and isinstance(member.get("email"), str):
        name = member["email"].strip()
    return fold(name or member["member_id"])


def ordered(members: Iterable[dict[str, Any]]) -> list[str]:
    """Member ids in the contract's listing order."""
    return [
        m["member_id"]
        for m in sorted(members, key=lambda m: (display(m).encode(), m["member_id"].encode()))
    ]


def matches(
    member: dict[str, Any],
    q: str | None = None,
    status: str | None = None,
    role: str | None = None,
) -> bool:
    if status is not None:
        wanted = {fold(s.strip()) for s in status.split(",") if s.strip()}
        value = member.get("status")
        if not (isinstance(value, str) and fold(value) in wanted):
            return False
    if role is not None:
        wanted = {fold(s.strip()) for s in role.split(",") if s.strip()}
        value = member.get("role")
        if not (isinstance(value, str) and fold(value) in wanted):
            return False
    if q:
        texts = [member.get(k) for k in ("first_name", "last_name", "email")]
        folded = [fold(t) for t in texts if isinstance(t, str)] + [display(member)]
        if not any(fold(q) in t for t in folded):
            return False
    return True
