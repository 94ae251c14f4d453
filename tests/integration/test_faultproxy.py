"""The fault-injecting TCP proxy: forwards faithfully, cuts and refuses when blocked, recovers on unblock."""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
import time
from collections.abc import Iterator

import pytest

from tests.support.faultproxy import FaultProxy

WAIT = 10.0


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.server.connections += 1  # type: ignore[attr-defined]
        with contextlib.suppress(ConnectionResetError, BrokenPipeError):  # the proxy cuts with a reset
            while data := self.request.recv(65536):
                self.request.sendall(data)


@pytest.fixture
def echo() -> Iterator[socketserver.ThreadingTCPServer]:
    """An echo server on loopback that counts the connections it was given."""
    socketserver.ThreadingTCPServer.daemon_threads = True
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    server.connections = 0  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=WAIT)


@pytest.fixture
def proxy(echo: socketserver.ThreadingTCPServer) -> Iterator[FaultProxy]:
    with FaultProxy(echo.server_address[:2]) as p:
        yield p


def connect(p: FaultProxy) -> socket.socket:
    sock = socket.create_connection(p.address, timeout=WAIT)
    sock.settimeout(WAIT)
    return sock


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            break
        buf += chunk
    return buf


def is_cut(sock: socket.socket) -> bool:
    """The connection is dead: sending and reading back fails (reset) or ends (EOF)."""
    try:
        sock.sendall(b"ping")
        return sock.recv(16) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True


def refused(p: FaultProxy) -> bool:
    """A new connection fails: reset during the connect (the accept and reset can beat connect()'s return on
    loopback) or on first use."""
    try:
        sock = connect(p)
    except ConnectionResetError:
        return True
    with sock:
        return is_cut(sock)


def test_forwards_both_ways_including_half_close(proxy: FaultProxy) -> None:
    payload = bytes(range(256)) * 4096  # 1 MiB: more than any buffer on the way
    with connect(proxy) as sock:
        sender = threading.Thread(target=sock.sendall, args=(payload,))
        sender.start()
        assert recv_exactly(sock, len(payload)) == payload
        sender.join(timeout=WAIT)
        sock.sendall(b"last words")
        sock.shutdown(socket.SHUT_WR)
        assert recv_exactly(sock, 100) == b"last words"  # then EOF, passed on from the echo server


def test_block_cuts_open_connections_and_refuses_new_ones(
    proxy: FaultProxy, echo: socketserver.ThreadingTCPServer
) -> None:
    with connect(proxy) as sock:
        sock.sendall(b"hello")
        assert recv_exactly(sock, 5) == b"hello"
        assert proxy.connections == 1
        proxy.block()
        assert is_cut(sock)
    assert proxy.connections == 0
    forwarded = echo.connections  # type: ignore[attr-defined]
    for _ in range(3):
        assert refused(proxy)
    assert echo.connections == forwarded  # type: ignore[attr-defined]
    assert proxy.accepted == 4


def test_unblock_restores_forwarding(proxy: FaultProxy) -> None:
    proxy.block()
    assert refused(proxy)
    proxy.unblock()
    with connect(proxy) as sock:
        sock.sendall(b"again")
        assert recv_exactly(sock, 5) == b"again"


def test_unreachable_target_resets_the_client() -> None:
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        dead = placeholder.getsockname()  # bound, never listening: connections are refused
        with FaultProxy(dead) as p:
            assert refused(p)


def test_target_that_starts_listening_soon_still_gets_the_connection() -> None:
    """A refusal is retried for ``refused_grace``: a listener about to bind is not turned into a reset."""
    with socket.socket() as late:
        late.bind(("127.0.0.1", 0))
        with FaultProxy(late.getsockname(), refused_grace=WAIT) as p, connect(p) as sock:
            sock.sendall(b"early")
            time.sleep(0.2)  # several refused connects by the proxy meanwhile
            late.listen()
            late.settimeout(WAIT)
            conn, _ = late.accept()
            with conn:
                assert recv_exactly(conn, 5) == b"early"
                conn.sendall(b"reply")
                assert recv_exactly(sock, 5) == b"reply"


def test_first_bytes_rewriter_replaces_the_opening(echo: socketserver.ThreadingTCPServer) -> None:
    def rewrite(seen: bytes) -> bytes | None:
        return b"HELLO" + seen[5:] if len(seen) >= 5 else None

    with FaultProxy(echo.server_address[:2], rewrite_first=rewrite) as p, connect(p) as sock:
        sock.sendall(b"hel")
        sock.sendall(b"lo world")
        assert recv_exactly(sock, 11) == b"HELLO world"
        sock.sendall(b"hello")
        assert recv_exactly(sock, 5) == b"hello"  # only the opening is rewritten


def test_close_releases_port_connections_and_thread(echo: socketserver.ThreadingTCPServer) -> None:
    p = FaultProxy(echo.server_address[:2], name="proxy-under-test")
    with connect(p) as sock:
        sock.sendall(b"x")
        assert recv_exactly(sock, 1) == b"x"
        p.close()
        assert is_cut(sock)
    p.close()  # idempotent
    with pytest.raises(ConnectionRefusedError), contextlib.closing(socket.socket()) as s:
        s.settimeout(WAIT)
        s.connect(p.address)
    assert "proxy-under-test" not in {t.name for t in threading.enumerate()}
