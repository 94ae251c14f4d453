"""A loopback TCP forwarder that a test can cut and restore, to partition processes from each other.

Each ``FaultProxy`` runs its own asyncio loop on one daemon thread.  ``block()`` resets every connection it
carries and from then on accepts new ones only to reset them at once: peers see a failure immediately
(rather than a silent stall they would need their own timeouts to notice).  ``unblock()`` restores
forwarding for new connections.  Everything is bounded: connects to the target, the optional first-bytes
rewrite, and every control call.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, Self, TypeVar

T = TypeVar("T")

# Given every byte the connecting side has sent so far, return the bytes to forward instead, or None while
# more are needed.  For protocols where the connecting side speaks first (ZooKeeper's election handshake).
FirstBytesRewriter = Callable[[bytes], bytes | None]

CONTROL_TIMEOUT = 10.0
CHUNK = 65536
REWRITE_LIMIT = 4096
REFUSED_RETRY = 0.05  # seconds between connects to a refusing target during refused_grace


class _Pair:
    """The two transports of one forwarded connection."""

    __slots__ = ("downstream", "upstream")

    def __init__(self, downstream: asyncio.StreamWriter) -> None:
        self.downstream = downstream
        self.upstream: asyncio.StreamWriter | None = None

    def writers(self) -> list[asyncio.StreamWriter]:
        return [w for w in (self.downstream, self.upstream) if w is not None]

    def reset(self) -> None:
        for writer in self.writers():
            _reset(writer)

    def close(self) -> None:
        """The clean end (both sides sent EOF): close after flushing, without a reset."""
        for writer in self.writers():
            writer.close()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST (SO_LINGER 0), so the peer's next read or write fails instead of seeing a clean EOF."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class FaultProxy:
    """Forward ``listen_host:<port>`` to ``target``; ``address`` is where it listens (OS-picked port)."""

    def __init__(
        self,
        target: tuple[str, int],
        listen_host: str = "127.0.0.1",
        *,
        rewrite_first: FirstBytesRewriter | None = None,
        connect_timeout: float = 2.0,
        refused_grace: float = 0.5,
        name: str = "",
    ) -> None:
        self.target = target
        self.rewrite_first = rewrite_first
        self.connect_timeout = connect_timeout
        # A proxy cannot refuse a connection it already accepted; it can only reset it, which clients often
        # treat worse than a refusal (a ZooKeeper follower dialing a leader that has not bound its port yet
        # retries a refusal but returns to election on a reset).  So a refusing target gets this long to
        # start listening before the client is reset.
        self.refused_grace = refused_grace
        self.name = name or f"proxy->{target[0]}:{target[1]}"
        self.blocked = False
        self.blackholed = False  # connections stay up but every byte is dropped (a silent partition)
        self.accepted = 0  # connections accepted so far (blocked or not), for tests
        self._pairs: set[_Pair] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=self.name, daemon=True)
        self._thread.start()
        try:
            self._server = self._call(asyncio.start_server(self._handle, listen_host, 0, backlog=64))
        except BaseException:
            self._stop_loop()
            raise
        host, port = self._server.sockets[0].getsockname()[:2]
        self.address: tuple[str, int] = (host, port)

    def __repr__(self) -> str:
        state = "blocked" if self.blocked else "open"
        return f"FaultProxy({self.name}, {self.address[0]}:{self.address[1]}, {state})"

    @property
    def connections(self) -> int:
        """Connections currently forwarded."""
        return self._call(self._count())

    # ------------------------------------------------------------------ controls (any thread)

    def block(self) -> None:
        """Reset every forwarded connection; new ones are accepted and reset at once until ``unblock()``."""
        self._call(self._set_blocked(True))

    def unblock(self) -> None:
        self.blackholed = False
        self._call(self._set_blocked(False))

    def blackhole(self) -> None:
        """Keep every connection open but drop all bytes, both ways: peers notice only by their timeouts.

        The streams are corrupt afterwards; end with ``block()`` (which resets them) before ``unblock()``.
        """
        self.blackholed = True

    def close(self) -> None:
        """Stop listening, reset all connections and end the loop thread. Safe to call twice."""
        if self._loop.is_closed():
            return
        if self._thread.is_alive():
            with contextlib.suppress(Exception):
                self._call(self._shutdown())
        self._stop_loop()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ loop side

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=CONTROL_TIMEOUT)

    def _stop_loop(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=CONTROL_TIMEOUT)
        if not self._thread.is_alive():
            self._loop.close()

    async def _count(self) -> int:
        return len(self._pairs)

    async def _set_blocked(self, blocked: bool) -> None:
        self.blocked = blocked
        if blocked:
            for pair in self._pairs:
                pair.reset()
            self._pairs.clear()

    async def _shutdown(self) -> None:
        self._server.close()
        await self._set_blocked(True)
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=CONTROL_TIMEOUT)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        if self.blocked:
            _reset(writer)
            return
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        pair = _Pair(writer)
        self._pairs.add(pair)
        clean = False
        try:
            clean = await self._forward(reader, pair)
        except (OSError, TimeoutError, asyncio.CancelledError):  # cancelled: close() is ending the loop
            pass
        finally:
            self._pairs.discard(pair)
            self._tasks.discard(task)
            if clean:
                pair.close()
            else:
                pair.reset()

    async def _forward(self, reader: asyncio.StreamReader, pair: _Pair) -> bool:
        """Connect and copy both ways; True when both sides ended cleanly (EOF)."""
        up_reader, pair.upstream = await self._connect_upstream()
        first = b""
        if self.rewrite_first is not None:
            first = await asyncio.wait_for(self._rewrite(reader), timeout=self.connect_timeout)
        if self.blocked:  # blocked while we were connecting
            return False
        pair.upstream.write(first)
        pumps = [
            asyncio.ensure_future(_pump(reader, pair.upstream, self)),
            asyncio.ensure_future(_pump(up_reader, pair.downstream, self)),
        ]
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_EXCEPTION)
        finally:
            for pump in pumps:
                pump.cancel()
            results = await asyncio.gather(*pumps, return_exceptions=True)
        return all(r is None for r in results)

    async def _connect_upstream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self.refused_grace
        while True:
            try:
                return await asyncio.wait_for(
                    asyncio.open_connection(*self.target), timeout=self.connect_timeout
                )
            except ConnectionRefusedError:
                if self.blocked or loop.time() + REFUSED_RETRY >= give_up:
                    raise
                await asyncio.sleep(REFUSED_RETRY)

    async def _rewrite(self, reader: asyncio.StreamReader) -> bytes:
        assert self.rewrite_first is not None
        seen = b""
        while len(seen) < REWRITE_LIMIT:
            chunk = await reader.read(REWRITE_LIMIT - len(seen))
            if not chunk:
                return seen
            seen += chunk
            replaced = self.rewrite_first(seen)
            if replaced is not None:
                return replaced
        return seen


async def _pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter, proxy: FaultProxy) -> None:
    """Copy until EOF, then pass the half-close on; errors end the whole connection (via the caller)."""
    while chunk := await src.read(CHUNK):
        if proxy.blackholed:
            continue
        dst.write(chunk)
        await dst.drain()
    if dst.can_write_eof():
        dst.write_eof()
