"""A small blocking ZooKeeper wire-protocol client for tests that must see exactly what a server sends.

kazoo turns error codes into exceptions, hides reply zxids, multi result headers and the order in which
notifications and replies arrive.  Comparing zk_py with Apache byte-for-byte needs all of that, so this
client speaks the protocol directly: one socket, one request at a time, every socket operation bounded by
``io_timeout``.  Notifications read while waiting for a reply are queued in ``notifications`` in arrival
order, each tagged with how many replies had been read before it.
"""

from __future__ import annotations

import base64
import hashlib
import socket
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from zk_py import proto
from zk_py.jute import Reader, Record
from zk_py.proto import Op

R = TypeVar("R", bound=Record)

_LEN = struct.Struct("!i")
DEFAULT_IO_TIMEOUT = 10.0
MULTI_END = proto.MultiHeader(-1, True, -1)

# Reply body record per opcode (None: the reply has no body).
RESPONSES: dict[int, type[Record] | None] = {
    Op.CREATE: proto.PathResponse,
    Op.CREATE2: proto.Create2Response,
    Op.CREATE_CONTAINER: proto.Create2Response,
    Op.CREATE_TTL: proto.Create2Response,
    Op.DELETE: None,
    Op.EXISTS: proto.StatResponse,
    Op.GET_DATA: proto.GetDataResponse,
    Op.SET_DATA: proto.StatResponse,
    Op.GET_ACL: proto.GetACLResponse,
    Op.SET_ACL: proto.StatResponse,
    Op.GET_CHILDREN: proto.ChildrenResponse,
    Op.GET_CHILDREN2: proto.GetChildren2Response,
    Op.SYNC: proto.PathResponse,
    Op.PING: None,
    Op.CHECK: None,
    Op.GET_EPHEMERALS: proto.ChildrenResponse,
    Op.GET_ALL_CHILDREN_NUMBER: proto.GetAllChildrenNumberResponse,
    Op.ADD_WATCH: None,
    Op.REMOVE_WATCHES: None,
    Op.CHECK_WATCHES: None,
    Op.WHO_AM_I: proto.WhoAmIResponse,
    Op.SET_WATCHES: None,
    Op.SET_WATCHES2: None,
    Op.CLOSE_SESSION: None,
    Op.AUTH: None,
    Op.ERROR: proto.ErrorResponse,
}


class RawZkError(Exception):
    """The server broke the protocol as this client understands it (closed, timed out, wrong xid)."""


class ConnectionClosed(RawZkError):
    """The server closed the connection."""


def digest_id(user: str, password: str) -> str:
    """The ``digest`` ACL id for user:password, as DigestAuthenticationProvider.generateDigest makes it."""
    sha = hashlib.sha1(f"{user}:{password}".encode()).digest()
    return f"{user}:{base64.b64encode(sha).decode('ascii')}"


@dataclass(frozen=True, slots=True)
class Reply:
    """One reply frame: header fields plus the undecoded body (empty when err != 0)."""

    xid: int
    zxid: int
    err: int
    body: bytes

    def decode(self, cls: type[R]) -> R:
        """The body as ``cls``; raises JuteError if it does not decode."""
        rec: R = cls.from_bytes(self.body)
        return rec


@dataclass(frozen=True, slots=True)
class Notification:
    """A watch event (xid -1) and its position: the number of replies read before it on this connection."""

    type: int
    state: int
    path: str
    zxid: int
    after_replies: int


@dataclass(frozen=True, slots=True)
class MultiResult:
    """One entry of a multi / multiRead reply."""

    type: int
    err: int
    record: Record | None


def encode_multi(ops: Sequence[tuple[int, Record]]) -> bytes:
    """MultiOperationRecord body: header + record per op, then the ``done`` header."""
    out = bytearray()
    for op, rec in ops:
        out += proto.MultiHeader(op, False, -1).to_bytes()
        out += rec.to_bytes()
    out += MULTI_END.to_bytes()
    return bytes(out)


_MULTI_RESULT_RECORDS: dict[int, type[Record] | None] = {
    **RESPONSES,
    Op.GET_CHILDREN: proto.ChildrenResponse,  # multiRead
    Op.GET_DATA: proto.GetDataResponse,  # multiRead
}


def decode_multi(body: bytes) -> list[MultiResult]:
    """MultiResponse body: (header, result record) until the ``done`` header."""
    r = Reader(body)
    results: list[MultiResult] = []
    while True:
        hdr: proto.MultiHeader = proto.MultiHeader.read(r)
        if hdr.done:
            break
        cls = _MULTI_RESULT_RECORDS.get(hdr.type)
        results.append(MultiResult(hdr.type, hdr.err, cls.read(r) if cls is not None else None))
    if r.remaining():
        raise RawZkError(f"{r.remaining()} trailing bytes after the multi response")
    return results


class RawZk:
    """One connection to a ZooKeeper server; call :meth:`connect` first (or use it as a context manager)."""

    def __init__(self, host: str, port: int, *, io_timeout: float = DEFAULT_IO_TIMEOUT) -> None:
        self.host = host
        self.port = port
        self.io_timeout = io_timeout
        self.sock: socket.socket | None = None
        self.session_id = 0
        self.passwd = bytes(16)
        self.timeout_ms = 0
        self.read_only: bool | None = None
        self.last_zxid = 0
        self.replies_read = 0
        self.notifications: list[Notification] = []
        self._xid = 0

    # ------------------------------------------------------------------ connection

    def open_socket(self) -> socket.socket:
        """Just the TCP connection (for tests that send their own bytes)."""
        sock = socket.create_connection((self.host, self.port), timeout=self.io_timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = sock
        return sock

    def connect(
        self,
        *,
        timeout_ms: int = 30000,
        session_id: int = 0,
        passwd: bytes = bytes(16),
        last_zxid: int = 0,
        read_only_byte: bool = True,
    ) -> proto.ConnectResponse:
        """Open the socket and do the ConnectRequest handshake; returns the server's ConnectResponse."""
        if self.sock is None:
            self.open_socket()
        req = proto.ConnectRequest(0, last_zxid, timeout_ms, session_id, passwd).to_bytes()
        self.send_frame(req + (b"\x00" if read_only_byte else b""))
        r = Reader(self.read_frame())
        resp: proto.ConnectResponse = proto.ConnectResponse.read(r)
        self.read_only = r.bool() if r.remaining() else None
        self.session_id = resp.sessionId
        self.passwd = resp.passwd or bytes(16)
        self.timeout_ms = resp.timeOut
        return resp

    def close(self) -> None:
        """Drop the socket (without closeSession: the session lives on until it expires)."""
        if self.sock is not None:
            try:
                self.sock.close()
            finally:
                self.sock = None

    def __enter__(self) -> RawZk:
        if self.sock is None:
            self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ framing

    def send_frame(self, payload: bytes) -> None:
        if self.sock is None:
            raise RawZkError("not connected")
        try:
            self.sock.sendall(_LEN.pack(len(payload)) + payload)
        except OSError as e:
            raise ConnectionClosed(f"send failed: {e!r}") from e

    def _recv_exact(self, n: int) -> bytes:
        if self.sock is None:
            raise RawZkError("not connected")
        chunks = bytearray()
        while len(chunks) < n:
            try:
                chunk = self.sock.recv(n - len(chunks))
            except TimeoutError as e:
                raise RawZkError(f"no data from the server within {self.io_timeout}s") from e
            except OSError as e:
                raise ConnectionClosed(f"recv failed: {e!r}") from e
            if not chunk:
                raise ConnectionClosed(f"server closed the connection ({len(chunks)}/{n} bytes read)")
            chunks += chunk
        return bytes(chunks)

    def read_frame(self) -> bytes:
        (n,) = _LEN.unpack(self._recv_exact(4))
        if n < 0 or n > 0x7FFFFFF:
            raise RawZkError(f"bad frame length {n}")
        return self._recv_exact(n)

    # ------------------------------------------------------------------ requests

    def next_xid(self) -> int:
        self._xid = self._xid + 1 if self._xid < 0x7FFFFFFF else 1
        return self._xid

    def send(self, op: int, body: Record | bytes | None = None, *, xid: int | None = None) -> int:
        """Send one request; returns its xid (a fresh one unless given)."""
        if xid is None:
            xid = self.next_xid()
        payload = proto.RequestHeader(xid, op).to_bytes()
        if isinstance(body, Record):
            payload += body.to_bytes()
        elif body is not None:
            payload += body
        self.send_frame(payload)
        return xid

    def read_reply(self, xid: int) -> Reply:
        """Read frames until the reply for ``xid``; notifications met on the way are queued."""
        while True:
            r = Reader(self.read_frame())
            hdr: proto.ReplyHeader = proto.ReplyHeader.read(r)
            body = bytes(r.buf[r.pos :])
            if hdr.xid == proto.XID_NOTIFICATION:
                ev: proto.WatcherEvent = proto.WatcherEvent.from_bytes(body)
                self.notifications.append(
                    Notification(ev.type, ev.state, ev.path, hdr.zxid, self.replies_read)
                )
                continue
            self.replies_read += 1
            if hdr.xid != xid:
                raise RawZkError(f"expected the reply to xid {xid}, got xid {hdr.xid} (err {hdr.err})")
            if hdr.zxid > 0:
                self.last_zxid = max(self.last_zxid, hdr.zxid)
            return Reply(hdr.xid, hdr.zxid, hdr.err, body)

    def call(self, op: int, body: Record | bytes | None = None) -> Reply:
        """Send a request and wait for its reply."""
        return self.read_reply(self.send(op, body))

    def take_notifications(self) -> list[Notification]:
        """The queued notifications (oldest first); the queue is emptied."""
        out, self.notifications = self.notifications, []
        return out

    def read_until_eof(self, timeout: float | None = None) -> bool:
        """Queue notifications until the server closes; False if it stays open for ``timeout`` seconds."""
        if self.sock is None:
            return True
        self.sock.settimeout(self.io_timeout if timeout is None else timeout)
        try:
            while True:
                r = Reader(self.read_frame())
                hdr: proto.ReplyHeader = proto.ReplyHeader.read(r)
                if hdr.xid != proto.XID_NOTIFICATION:
                    raise RawZkError(f"unexpected frame with xid {hdr.xid} while waiting for EOF")
                ev: proto.WatcherEvent = proto.WatcherEvent.read(r)
                self.notifications.append(
                    Notification(ev.type, ev.state, ev.path, hdr.zxid, self.replies_read)
                )
        except ConnectionClosed:
            return True
        except RawZkError:
            return False
        finally:
            if self.sock is not None:
                self.sock.settimeout(self.io_timeout)

    # ------------------------------------------------------------------ special requests

    def ping(self) -> Reply:
        return self.read_reply(self.send(Op.PING, xid=proto.XID_PING))

    def auth(self, scheme: str, credential: bytes) -> Reply:
        """AuthPacket (xid -4); a rejected credential also makes the server close the connection."""
        return self.read_reply(
            self.send(Op.AUTH, proto.AuthPacket(0, scheme, credential), xid=proto.XID_AUTH)
        )

    def set_watches(self, body: proto.SetWatches | proto.SetWatches2) -> Reply:
        op = Op.SET_WATCHES2 if isinstance(body, proto.SetWatches2) else Op.SET_WATCHES
        return self.read_reply(self.send(op, body, xid=proto.XID_SET_WATCHES))

    def close_session(self) -> Reply:
        """closeSession; the server answers and then closes the socket (see :meth:`read_until_eof`)."""
        return self.call(Op.CLOSE_SESSION)

    def multi(
        self, ops: Sequence[tuple[int, Record]], *, read: bool = False
    ) -> tuple[Reply, list[MultiResult] | None]:
        """multi (or multiRead): the reply and, when it has a body, its decoded results."""
        rep = self.call(Op.MULTI_READ if read else Op.MULTI, encode_multi(ops))
        return rep, (decode_multi(rep.body) if rep.err == 0 else None)
