"""A small controllable TCP proxy for network faults between a worker and the broker.

Why not toxiproxy: its server is a Go program with no Debian or PyPI package; building it needs a
Go toolchain and the Go module proxy, and running it as a container needs Docker; the build
machines have neither (``../shared/notes/reliability.md`` §7). The kernel has no ``netem``
either. So the faults are made in user space, here, with the toxics the scenarios need:

* :meth:`Proxy.blackhole`: bytes in both directions are read and dropped, new connections are
  accepted and go nowhere (a network partition as the client sees it: silence, no error).
  :meth:`Proxy.heal` ends it and aborts every connection that lost bytes (their Kafka framing
  is broken), so clients reconnect as they would after a real partition.
* :meth:`Proxy.reset`: abort every open connection with a TCP RST (``SO_LINGER`` 0).
* :meth:`Proxy.latency`: each chunk is delivered ``delay`` seconds (plus up to ``jitter``)
  after it was read, in order, per direction.

The proxy runs its own event loop in a daemon thread, so tests drive it from plain sync code.
Kafka clients reconnect to the broker's *advertised* address after the first metadata
response, so the broker must advertise the proxy (``devbroker``'s ``proxied`` listener).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")
CHUNK = 65536


@dataclass(eq=False)
class _Conn:
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter | None = None
    dirty: bool = False
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


def _rst(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class Proxy:
    """Forward ``127.0.0.1:port`` to ``127.0.0.1:upstream`` with switchable faults."""

    def __init__(self, port: int, upstream: int) -> None:
        self.port = port
        self.upstream = upstream
        self.blackholed = False
        self.delay = 0.0
        self.jitter = 0.0
        self.resets = 0
        self.rng = random.Random(7)
        self._conns: set[_Conn] = set()
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    # -- control (any thread) ------------------------------------------------------------------
    def start(self) -> Proxy:
        self._thread.start()
        self._call(self._listen())
        return self

    def stop(self) -> None:
        self._call(self._close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def blackhole(self) -> None:
        self._loop.call_soon_threadsafe(setattr, self, "blackholed", True)

    def heal(self) -> None:
        """End a blackhole; abort the connections that lost bytes to it."""
        self._call(self._heal())

    def reset(self) -> int:
        """Abort every open connection with a TCP RST; return how many."""
        return self._call(self._reset(lambda conn: True))

    def latency(self, delay: float, jitter: float = 0.0) -> None:
        def apply() -> None:
            self.delay, self.jitter = delay, jitter

        self._loop.call_soon_threadsafe(apply)

    def open_connections(self) -> int:
        return len(self._conns)

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(30)

    # -- the proxy (its own loop) --------------------------------------------------------------
    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        await self._reset(lambda conn: True)

    async def _heal(self) -> None:
        self.blackholed = False
        await self._reset(lambda conn: conn.dirty)

    async def _reset(self, which: Callable[[_Conn], bool]) -> int:
        chosen = [conn for conn in self._conns if which(conn)]
        for conn in chosen:
            self._drop(conn, rst=True)
        self.resets += len(chosen)
        return len(chosen)

    def _drop(self, conn: _Conn, *, rst: bool = False) -> None:
        self._conns.discard(conn)
        for writer in (conn.client, conn.upstream):
            if writer is not None:
                _rst(writer) if rst else writer.close()
        for task in conn.tasks:
            if task is not asyncio.current_task():
                task.cancel()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = _Conn(writer)
        self._conns.add(conn)
        if self.blackholed:  # a connect during a partition: accepted, then silence
            conn.dirty = True
            while await reader.read(CHUNK):
                pass
            self._drop(conn)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream)
        except OSError:  # the broker is down: the client sees its connection closed
            self._drop(conn, rst=True)
            return
        conn.upstream = up_writer
        conn.tasks = [
            asyncio.ensure_future(self._pump(conn, reader, up_writer)),
            asyncio.ensure_future(self._pump(conn, up_reader, writer)),
        ]

    async def _pump(
        self, conn: _Conn, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                data = await reader.read(CHUNK)
                if not data:
                    break
                if self.blackholed:
                    conn.dirty = True
                    continue
                if self.delay or self.jitter:
                    due = loop.time() + self.delay + self.rng.uniform(0, self.jitter)
                    await asyncio.sleep(max(0.0, due - loop.time()))
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            return
        if conn in self._conns:
            self._drop(conn)
