"""Bad input on the client port: the abused connection gets Apache 3.8.0's answer, nothing else breaks.

Every case runs against both servers (``zk_server`` is parametrised over zk_py and Apache), so the expected
values below are what a real 3.8.0 server was observed to do; zk_py must do the same.  Each case also keeps a
healthy kazoo session (the *bystander*) open across the abuse: it must see no disconnect at all, must still
read and write afterwards, and the server must still answer ``ruok``.

Raw sockets are used for everything kazoo would refuse to send.  Every socket operation has a timeout and
every socket is closed in a ``finally``.  "Stays open" is checked by waiting a short, bounded time for a
reply or EOF; nothing here asserts how fast anything happens.
"""

from __future__ import annotations

import concurrent.futures
import random
import socket
import struct
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import ConnectionLoss

from tests.support.servers import ZkServer
from zk_py import proto

# For the tests that start their own specially configured servers (same marks as conftest's zk_server).
KINDS = ["zk_py", pytest.param("apache", marks=pytest.mark.apache)]

# ----------------------------------------------------------------------------------------------------------
# wire helpers

MAXBUFFER = 0xFFFFF  # jute.maxbuffer default: the largest frame a server accepts
IO_TIMEOUT = 5.0  # any single socket operation
QUIET_WAIT = 1.0  # how long "no reply, still open" is watched for
ALL_4LW: tuple[str, ...] = ("conf", "cons", "crst", "dump", "envi", "ruok", "srst", "srvr", "stat")
ALL_4LW += ("wchs", "wchc", "wchp", "dirs", "mntr", "isro", "hash", "gtmk", "stmk")


def frame(payload: bytes) -> bytes:
    return struct.pack("!i", len(payload)) + payload


def ustr(s: str | bytes) -> bytes:
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("!i", len(b)) + b


def connect_payload(
    *,
    session_id: int = 0,
    passwd: bytes = bytes(16),
    last_zxid: int = 0,
    timeout: int = 10000,
    ro: bool = True,
) -> bytes:
    """A ConnectRequest as kazoo sends it (45 bytes with the readOnly byte, 44 without)."""
    body = proto.ConnectRequest(0, last_zxid, timeout, session_id, passwd).to_bytes()
    return body + (b"\x00" if ro else b"")


def request(xid: int, op: int, body: bytes = b"") -> bytes:
    return frame(struct.pack("!ii", xid, op) + body)


def create_body(path: str | bytes, data: bytes = b"", flags: int = 0) -> bytes:
    acl = struct.pack("!i", 1) + struct.pack("!i", 31) + ustr("world") + ustr("anyone")
    return ustr(path) + struct.pack("!i", len(data)) + data + acl + struct.pack("!i", flags)


@dataclass
class Outcome:
    """What came back on a raw connection: complete frames, whether the server closed, leftover bytes."""

    frames: list[bytes] = field(default_factory=list)
    closed: bool = False
    rest: bytes = b""

    def replies(self) -> list[tuple[int, int]]:
        """(xid, err) of every reply frame."""
        out = []
        for f in self.frames:
            hdr = proto.ReplyHeader.from_bytes(f[:16])
            out.append((hdr.xid, hdr.err))
        return out

    def summary(self) -> str:
        """Compact form for table comparisons, e.g. ``"[(7, -5)] open"`` or ``"[] closed"``."""
        return f"{self.replies()} {'closed' if self.closed else 'open'}"


class Raw:
    """One raw client socket speaking just enough of the protocol to misbehave on purpose."""

    def __init__(self, server: ZkServer, timeout: float = IO_TIMEOUT) -> None:
        self.sock = socket.create_connection((server.host, server.port), timeout=timeout)
        self.timeout = timeout

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Raw:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, data: bytes) -> bool:
        """Send; False if the server had already closed (it may drop us before reading everything)."""
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            return False
        return True

    def _recv_exact(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise EOFError(f"server closed after {len(buf)} of {n} bytes")
            buf += chunk
        return buf

    def read_frame(self) -> bytes:
        (n,) = struct.unpack("!i", self._recv_exact(4))
        return self._recv_exact(n)

    def handshake(self, payload: bytes | None = None) -> proto.ConnectResponse:
        """Send a ConnectRequest (default: a new session as kazoo asks for one); returns the response."""
        self.sock.sendall(frame(payload if payload is not None else connect_payload()))
        resp: proto.ConnectResponse = proto.ConnectResponse.from_bytes(self.read_frame())
        return resp

    def call(self, xid: int, op: int, body: bytes = b"") -> tuple[proto.ReplyHeader, bytes]:
        """One well-formed request; returns its reply header and body."""
        self.sock.sendall(request(xid, op, body))
        f = self.read_frame()
        return proto.ReplyHeader.from_bytes(f[:16]), f[16:]

    def read_raw(self, wait: float, enough: Callable[[bytes], bool] = lambda _: False) -> tuple[bytes, bool]:
        """Read until the server closes, ``enough(data)`` holds, or ``wait`` seconds pass; (data, closed)."""
        data = b""
        deadline = time.monotonic() + wait
        try:
            while not enough(data):
                left = deadline - time.monotonic()
                if left <= 0:
                    return data, False
                self.sock.settimeout(left)
                try:
                    chunk = self.sock.recv(65536)
                except TimeoutError:
                    return data, False
                except ConnectionResetError:
                    return data, True
                if not chunk:
                    return data, True
                data += chunk
            return data, False
        finally:
            self.sock.settimeout(self.timeout)

    def outcome(self, wait: float = QUIET_WAIT, frames: int | None = None) -> Outcome:
        """Frames received until the server closes, ``frames`` replies are complete, or ``wait`` passes."""
        enough = (lambda d: len(split_frames(d)[0]) >= frames) if frames is not None else (lambda _: False)
        data, closed = self.read_raw(wait, enough)
        got, rest = split_frames(data)
        return Outcome(got, closed, rest)


def split_frames(data: bytes) -> tuple[list[bytes], bytes]:
    """Complete length-prefixed frames at the start of ``data`` and the bytes after them."""
    out = []
    while len(data) >= 4:
        (n,) = struct.unpack("!i", data[:4])
        if n < 0 or len(data) < 4 + n:
            break
        out.append(data[4 : 4 + n])
        data = data[4 + n :]
    return out, data


def abuse(server: ZkServer, payload: bytes, *, handshake: bool, wait: float = QUIET_WAIT) -> Outcome:
    """Open a connection, optionally handshake, send ``payload`` and report what came back."""
    with Raw(server) as raw:
        if handshake:
            raw.handshake()
        raw.send(payload)
        return raw.outcome(wait)


def four_letter_raw(server: ZkServer, data: bytes, wait: float = 3.0) -> tuple[bytes, bool]:
    """Send raw bytes on a new connection; returns (everything received, whether the server closed)."""
    with Raw(server) as raw:
        raw.send(data)
        return raw.read_raw(wait)


def ruok_eventually(server: ZkServer, within: float = 15.0) -> str:
    """``ruok``, retried for a bounded time while the server is still releasing closed connections."""
    deadline = time.monotonic() + within
    answer = ""
    while True:
        try:
            answer = server.four_letter("ruok", timeout=IO_TIMEOUT)
        except OSError as e:
            answer = repr(e)
        if answer == "imok" or time.monotonic() > deadline:
            return answer
        time.sleep(0.1)


# ----------------------------------------------------------------------------------------------------------
# the bystander session and server helpers


class Bystander:
    """A kazoo session opened before the abuse; it must see no state change and keep reading and writing."""

    def __init__(self, server: ZkServer) -> None:
        self.server = server
        self.zk = KazooClient(hosts=server.hosts, timeout=10.0)
        self.zk.start(timeout=30)
        self.session_id = self.zk.client_id[0]
        self.states: list[KazooState] = []
        self.zk.add_listener(self.states.append)
        self.path = f"/bystander-{uuid.uuid4().hex}"
        self.rounds = 0
        try:
            self.zk.create(self.path, b"before")
        except BaseException:
            self.close()
            raise

    def check(self) -> None:
        self.rounds += 1
        value = f"after-{self.rounds}".encode()
        self.zk.set(self.path, value)
        assert self.zk.get(self.path)[0] == value
        self.zk.create(f"{self.path}/child-{self.rounds}", b"x")
        assert f"child-{self.rounds}" in self.zk.get_children(self.path)
        assert self.states == [], f"the bystander's connection was disturbed: {self.states}"
        assert self.zk.client_id[0] == self.session_id
        assert ruok_eventually(self.server) == "imok"

    def close(self) -> None:
        try:
            self.zk.stop()
        finally:
            self.zk.close()


@pytest.fixture
def bystander(zk_server: ZkServer) -> Iterator[Bystander]:
    b = Bystander(zk_server)
    try:
        yield b
    finally:
        b.close()


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[[str, dict[str, str]], ZkServer]]:
    """Start extra servers with their own zoo.cfg overrides; all are stopped at teardown."""
    started: list[ZkServer] = []

    def start(kind: str, extra_cfg: dict[str, str]) -> ZkServer:
        srv = ZkServer(kind, tmp_path / f"{kind}-{len(started)}", extra_cfg=extra_cfg)
        started.append(srv)
        srv.start()
        return srv

    try:
        yield start
    finally:
        for srv in started:
            srv.stop()


def kazoo_client(server: ZkServer) -> KazooClient:
    zk = KazooClient(hosts=server.hosts, timeout=10.0)
    zk.start(timeout=30)
    return zk


def stop_client(zk: KazooClient) -> None:
    try:
        zk.stop()
    finally:
        zk.close()


def unique(prefix: str) -> str:
    return f"/{prefix}-{uuid.uuid4().hex[:12]}"


# ----------------------------------------------------------------------------------------------------------
# frame lengths


@pytest.mark.parametrize("handshake", [False, True], ids=["first-frame", "after-handshake"])
@pytest.mark.parametrize("length", [-1, -5, -(2**31), MAXBUFFER + 1, 2 * 1024 * 1024, 2**31 - 1])
def test_frame_length_out_of_range_closes_without_reply(
    zk_server: ZkServer, bystander: Bystander, length: int, handshake: bool
) -> None:
    """Apache: ``len < 0 || len > jute.maxbuffer`` -> "Len error", connection closed, nothing written."""
    out = abuse(zk_server, struct.pack("!i", length) + b"\x00" * 64, handshake=handshake)
    assert out.closed and out.frames == [] and out.rest == b""
    bystander.check()


def test_frame_of_exactly_maxbuffer_is_accepted(zk_server: ZkServer, bystander: Bystander) -> None:
    """Apache accepts a frame of exactly jute.maxbuffer bytes (a ~1 MiB create); one byte more closes."""
    path = unique("maxframe")
    fixed = len(struct.pack("!ii", 1, 1)) + len(create_body(path))
    data = b"m" * (MAXBUFFER - fixed)
    payload = struct.pack("!ii", 1, proto.Op.CREATE) + create_body(path, data)
    assert len(payload) == MAXBUFFER
    with Raw(zk_server, timeout=30) as raw:
        raw.handshake()
        raw.send(frame(payload))
        out = raw.outcome(wait=30, frames=1)
    assert out.replies()[:1] == [(1, 0)]
    assert proto.PathResponse.from_bytes(out.frames[0][16:]).path == path
    stat = bystander.zk.exists(path)
    assert stat is not None and stat.dataLength == len(data)

    path2 = path[:-1] + ("x" if path[-1] != "x" else "y")  # same length, not yet created
    payload = struct.pack("!ii", 1, proto.Op.CREATE) + create_body(path2, data + b"m")
    assert len(payload) == MAXBUFFER + 1
    out = abuse(zk_server, frame(payload), handshake=True)
    assert out.summary() == "[] closed"
    assert bystander.zk.exists(path2) is None
    bystander.check()


def test_kazoo_two_mib_create_is_connection_loss_half_mib_succeeds(
    zk_server: ZkServer, bystander: Bystander
) -> None:
    """The oversized frame drops only the sender's connection; its session survives and it reconnects."""
    zk = kazoo_client(zk_server)
    try:
        sid = zk.client_id[0]
        big = unique("two-mib")
        with pytest.raises(ConnectionLoss):
            zk.create(big, b"x" * (2 * 1024 * 1024))
        half = unique("half-mib")
        zk.retry(zk.create, half, b"y" * (512 * 1024))
        assert zk.client_id[0] == sid  # reconnected to the same session
        assert bystander.zk.exists(big) is None
        assert bystander.zk.get(half)[0] == b"y" * (512 * 1024)
    finally:
        stop_client(zk)
    bystander.check()


# ----------------------------------------------------------------------------------------------------------
# truncated frames and broken handshakes


@pytest.mark.parametrize(
    "handshake,payload",
    [
        (False, b"\x00\x00"),  # half a length prefix
        (False, struct.pack("!i", 45) + connect_payload()[:20]),  # half a ConnectRequest
        (True, b"\x00\x00\x00"),
        (True, struct.pack("!i", 100) + b"\x00" * 10),  # half a request
        (True, request(1, proto.Op.EXISTS, ustr("/") + b"\x00")[:-3]),
    ],
    ids=["len-prefix", "connect", "len-prefix-after-hs", "request-body", "exists-cut"],
)
def test_truncated_frame_gets_no_reply_then_disconnect_is_harmless(
    zk_server: ZkServer, bystander: Bystander, handshake: bool, payload: bytes
) -> None:
    """Apache waits for the rest of the frame (no reply, stays open); the client vanishing is harmless."""
    out = abuse(zk_server, payload, handshake=handshake)
    assert out.summary() == "[] open"
    bystander.check()


@pytest.mark.parametrize(
    "payload",
    [
        b"\xab" * 45,  # garbage: passwd length 0xabababab is not a length
        connect_payload()[:20],
        b"\x00\x00\x00",
        b"",
        struct.pack("!iqiqi", 0, 0, 10000, 0, 2**31 - 1) + b"\x00" * 17,  # passwd longer than the frame
        struct.pack("!iqiqi", 0, 0, 10000, 0, -2) + b"\x00" * 17,  # negative, non-null passwd length
    ],
    ids=["garbage", "short-20", "short-3", "empty", "passwd-huge", "passwd-negative"],
)
def test_unparseable_connect_request_closes_without_reply(
    zk_server: ZkServer, bystander: Bystander, payload: bytes
) -> None:
    out = abuse(zk_server, frame(payload), handshake=False)
    assert out.summary() == "[] closed"
    bystander.check()


def test_connect_request_variants_that_are_accepted(zk_server: ZkServer, bystander: Bystander) -> None:
    """No readOnly byte -> 36-byte reply without it; trailing junk ignored; a negative timeOut is clamped."""
    with Raw(zk_server) as raw:
        raw.send(frame(connect_payload(ro=False)))
        assert len(raw.read_frame()) == 36
    with Raw(zk_server) as raw:
        raw.send(frame(connect_payload() + b"junkjunk"))
        reply = raw.read_frame()
        assert len(reply) == 37 and proto.ConnectResponse.from_bytes(reply).sessionId != 0
    with Raw(zk_server) as raw:
        resp = raw.handshake(connect_payload(timeout=-5))
        assert resp.timeOut == 4000  # minSessionTimeout = 2 * tickTime
        hdr, _ = raw.call(1, proto.Op.EXISTS, ustr("/") + b"\x00")
        assert (hdr.xid, hdr.err) == (1, 0)
    bystander.check()


def test_random_bytes_on_hundreds_of_short_connections(zk_server: ZkServer, bystander: Bystander) -> None:
    """Seeded fuzz: raw noise, random frames before and after the handshake, random opcodes with noise bodies.

    Whatever the server does with a connection, a complete request frame after the handshake must get either
    a reply carrying its xid or a close - never a reply to something else, never a hang.
    """
    rng = random.Random(0x2B5EED)
    # createSession (-10) is internal: Apache answers a client-sent one with a bare ConnectResponse, a quirk
    # that zk_py need not copy, so it is left out of the xid check below.
    ops = [int(op) for op in proto.Op if op != proto.Op.CREATE_SESSION] + [23, 77, 1000, -3]
    problems: list[str] = []

    def noise_body() -> bytes:
        kind = rng.randrange(4)
        if kind == 0:
            return rng.randbytes(rng.randrange(0, 48))
        if kind == 1:  # a plausible path, then noise
            return ustr("/fuzz-" + rng.choice("abc") * rng.randrange(1, 4)) + rng.randbytes(
                rng.randrange(0, 24)
            )
        if kind == 2:  # absurd string / vector length
            return struct.pack("!i", rng.choice([-7, -2, 2**31 - 1, 0x7FFF0000])) + rng.randbytes(8)
        return b""

    for i in range(300):
        mode = i % 4
        try:
            with Raw(zk_server, timeout=IO_TIMEOUT) as raw:
                if mode == 0:  # noise as the very first bytes (the 4lw / length sniffing path)
                    raw.send(rng.randbytes(rng.randrange(1, 64)))
                elif mode == 1:  # a well-framed random ConnectRequest
                    raw.send(frame(rng.randbytes(rng.randrange(0, 60))))
                elif mode == 2:  # handshake, then one complete random request: reply with our xid, or close
                    raw.handshake()
                    xid = rng.randrange(1, 2**31)
                    op = rng.choice(ops)
                    raw.send(request(xid, op, noise_body()))
                    out = raw.outcome(wait=3.0, frames=1)
                    if not out.frames and not out.closed:
                        problems.append(f"#{i}: op {op}: neither reply nor close")
                    want = proto.XID_PING if op == proto.Op.PING else xid  # pings are answered with xid -2
                    for f in out.frames[:1]:
                        if len(f) < 16 or proto.ReplyHeader.from_bytes(f[:16]).xid != want:
                            problems.append(f"#{i}: op {op}: reply {f[:16].hex()} is not for xid {want}")
                else:  # handshake, then raw noise
                    raw.handshake()
                    raw.send(rng.randbytes(rng.randrange(1, 64)))
        except (OSError, EOFError) as e:
            # the server may drop a noisy connection at any point (maxClientCnxns lag included)
            if mode == 2 and not isinstance(e, (ConnectionResetError, BrokenPipeError, EOFError)):
                problems.append(f"#{i}: {e!r}")
    assert problems == [], "\n".join(problems)
    bystander.check()


# ----------------------------------------------------------------------------------------------------------
# requests that do not parse


HEADER_ONLY_OPS = [1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 14, 15, 19, 21, 22, 101, 103, 104, 105, 106]


def test_request_header_without_body_is_marshalling_error(zk_server: ZkServer, bystander: Bystander) -> None:
    """Apache: every opcode that needs a body answers MarshallingError (-5); the connection stays usable."""
    seen: dict[int, str] = {}
    for op in HEADER_ONLY_OPS:
        with Raw(zk_server) as raw:
            raw.handshake()
            # pipelined: the bad request, then a good one that must still be answered, in order
            raw.send(request(7, op) + request(8, proto.Op.EXISTS, ustr("/") + b"\x00"))
            seen[op] = raw.outcome(wait=IO_TIMEOUT, frames=2).summary()
    assert seen == {op: "[(7, -5), (8, 0)] open" for op in HEADER_ONLY_OPS}
    bystander.check()


def _bad_bodies(path: str) -> dict[str, tuple[int, bytes]]:
    nul = b"\x00"
    return {
        "getData-garbage": (proto.Op.GET_DATA, b"\xff\xff\xff\x00"),
        "getData-huge-string": (proto.Op.GET_DATA, struct.pack("!i", 2**31 - 1) + b"/x" + nul),
        "getData-negative-string": (proto.Op.GET_DATA, struct.pack("!i", -7) + nul),
        "getData-null-path": (proto.Op.GET_DATA, struct.pack("!i", -1) + nul),
        "exists-string-past-end": (proto.Op.EXISTS, struct.pack("!i", 50) + b"/abc"),
        "create-huge-acl-count": (
            proto.Op.CREATE,
            ustr(path) + struct.pack("!i", 0) + struct.pack("!i", 2**31 - 1) + struct.pack("!i", 0),
        ),
        "create-huge-data-length": (proto.Op.CREATE, ustr(path) + struct.pack("!i", 0x7FFFFFF0) + b"abc"),
        "setData-missing-version": (proto.Op.SET_DATA, ustr(path) + struct.pack("!i", 1) + b"d"),
        "multi-garbage": (proto.Op.MULTI, struct.pack("!i?i", proto.Op.CREATE, False, -1) + b"\xff" * 5),
        "getChildren-huge-string": (proto.Op.GET_CHILDREN, struct.pack("!i", 0x10000000) + b"/"),
    }


def test_unparseable_body_is_marshalling_error(zk_server: ZkServer, bystander: Bystander) -> None:
    """Apache answers -5 with the request's xid and keeps the connection usable; nothing is created."""
    path = unique("bad-body")
    seen: dict[str, str] = {}
    for name, (op, body) in _bad_bodies(path).items():
        with Raw(zk_server) as raw:
            raw.handshake()
            raw.send(request(11, op, body) + request(12, proto.Op.EXISTS, ustr("/") + b"\x00"))
            seen[name] = raw.outcome(wait=IO_TIMEOUT, frames=2).summary()
    assert seen == {name: "[(11, -5), (12, 0)] open" for name in _bad_bodies(path)}
    assert bystander.zk.exists(path) is None
    bystander.check()


def test_negative_acl_count_reads_as_empty_list_and_trailing_bytes_are_ignored(
    zk_server: ZkServer, bystander: Bystander
) -> None:
    """A negative vector count reads as an empty vector (-> InvalidACL); bytes after a record are ignored."""
    path = unique("neg-acl")
    with Raw(zk_server) as raw:
        raw.handshake()
        body = ustr(path) + struct.pack("!i", 0) + struct.pack("!i", -5) + struct.pack("!i", 0)
        hdr, _ = raw.call(1, proto.Op.CREATE, body)
        assert (hdr.xid, hdr.err) == (1, proto.Err.INVALID_ACL)
        hdr, reply = raw.call(2, proto.Op.EXISTS, ustr("/") + b"\x00" + b"trailing-junk")
        assert (hdr.xid, hdr.err) == (2, 0)
        assert proto.StatResponse.from_bytes(reply).stat.numChildren >= 2
        hdr, _ = raw.call(3, proto.Op.CREATE, create_body(path) + b"more-junk")
        assert (hdr.xid, hdr.err) == (3, 0)
    assert bystander.zk.exists(path) is not None
    bystander.check()


@pytest.mark.parametrize("op", [0, 10, 23, 99, 108, 1000, -50])
def test_unknown_opcode_is_unimplemented_then_closed(
    zk_server: ZkServer, bystander: Bystander, op: int
) -> None:
    """Apache (UnimplementedRequestProcessor): ReplyHeader{xid, zxid -1, err -6}, then it closes."""
    with Raw(zk_server) as raw:
        raw.handshake()
        raw.send(request(5, op, b"abcd"))
        out = raw.outcome()
    assert out.summary() == "[(5, -6)] closed"
    assert proto.ReplyHeader.from_bytes(out.frames[0][:16]).zxid == -1
    bystander.check()


@pytest.mark.parametrize(
    "body",
    [b"", b"\xff\xff\xff\xf0\x01", struct.pack("!ii", 0, 2**31 - 1), struct.pack("!i", 0) + ustr("digest")],
    ids=["empty", "garbage", "huge-scheme", "no-auth-field"],
)
def test_malformed_auth_packet_closes_without_reply(
    zk_server: ZkServer, bystander: Bystander, body: bytes
) -> None:
    """Apache closes, without a reply, on an AuthPacket that does not parse (not a MarshallingError)."""
    with Raw(zk_server) as raw:
        raw.handshake()
        hdr, _ = raw.call(1, proto.Op.EXISTS, ustr("/") + b"\x00")
        assert (hdr.xid, hdr.err) == (1, 0)
        raw.send(request(proto.XID_AUTH, proto.Op.AUTH, body))
        out = raw.outcome(wait=IO_TIMEOUT)
    assert out.summary() == "[] closed"
    bystander.check()


def test_dispatch_is_by_opcode_not_by_special_xid(zk_server: ZkServer, bystander: Bystander) -> None:
    """Apache decides what a request is by its opcode; a special xid only comes back in the reply header.

    (A ping reply always carries xid -2, whatever xid the ping had.)
    """
    root = ustr("/") + b"\x00"
    zk_node = ustr("/zookeeper") + b"\x00"
    auth = struct.pack("!i", 0) + ustr("digest") + ustr("user:pw")
    cases = {
        "ping with xid 5": request(5, proto.Op.PING),
        "exists with xid -2": request(proto.XID_PING, proto.Op.EXISTS, root),
        "getData with xid -4": request(proto.XID_AUTH, proto.Op.GET_DATA, root),
        "getChildren with xid -8": request(proto.XID_SET_WATCHES, proto.Op.GET_CHILDREN, zk_node),
        "auth with xid 9": request(9, proto.Op.AUTH, auth),
    }
    seen: dict[str, tuple[str, list[int]]] = {}
    for name, payload in cases.items():
        with Raw(zk_server) as raw:
            raw.handshake()
            raw.send(payload + request(100, proto.Op.EXISTS, root))
            out = raw.outcome(wait=IO_TIMEOUT, frames=2)
            seen[name] = (out.summary(), [len(f) - 16 for f in out.frames])
    stat, data_and_stat = 68, 4 + 68  # Stat; GetDataResponse of "/" (empty data)
    assert seen == {
        "ping with xid 5": ("[(-2, 0), (100, 0)] open", [0, stat]),
        "exists with xid -2": ("[(-2, 0), (100, 0)] open", [stat, stat]),
        "getData with xid -4": ("[(-4, 0), (100, 0)] open", [data_and_stat, stat]),
        "getChildren with xid -8": (
            "[(-8, 0), (100, 0)] open",
            [4 + 4 + len("config") + 4 + len("quota"), stat],
        ),
        "auth with xid 9": ("[(9, 0), (100, 0)] open", [0, stat]),
    }
    bystander.check()


@pytest.mark.parametrize(
    "payload",
    [
        request(1, proto.Op.GET_DATA, ustr("/") + b"\x00"),
        request(proto.XID_PING, proto.Op.PING),
        request(1, proto.Op.CLOSE_SESSION),
        request(-4, proto.Op.AUTH, struct.pack("!i", 0) + ustr("digest") + ustr("a:b")),
    ],
    ids=["getData", "ping", "closeSession", "auth"],
)
def test_request_before_handshake_closes_without_reply(
    zk_server: ZkServer, bystander: Bystander, payload: bytes
) -> None:
    """The first frame is always read as a ConnectRequest; these are too short to be one."""
    assert abuse(zk_server, payload, handshake=False).summary() == "[] closed"
    bystander.check()


# ----------------------------------------------------------------------------------------------------------
# invalid paths (PrepRequestProcessor order: parent lookup before the syntax check for create)


def _path_cases(p: str) -> dict[str, tuple[int, bytes]]:
    """Name -> (op, body); ``p`` is an existing persistent node."""
    dv = struct.pack("!i", -1)
    set_body: Callable[[str], bytes] = lambda path: ustr(path) + struct.pack("!i", 1) + b"d" + dv  # noqa: E731
    return {
        "create relative": (1, create_body(p[1:] + "-rel")),
        "create empty": (1, create_body("")),
        "create trailing slash": (1, create_body(p + "/")),
        "create //x": (1, create_body("//x")),
        "create empty segment": (1, create_body(p + "//x")),
        "create dot": (1, create_body(p + "/.")),
        "create dotdot": (1, create_body(p + "/..")),
        "create dot segment": (1, create_body(p + "/./x")),
        "create relative/child": (1, create_body(p[1:] + "/x")),
        "create missing/trailing": (1, create_body(p + "/missing/")),
        "create nul": (1, create_body(p + "/a\x00b")),
        "create /": (1, create_body("/")),
        "create /zookeeper/": (1, create_body("/zookeeper/")),
        "create sequential trailing slash": (1, create_body(p + "/", flags=2)),
        "delete /zookeeper": (2, ustr("/zookeeper") + dv),
        "delete /zookeeper/quota": (2, ustr("/zookeeper/quota") + dv),
        "delete /zookeeper/config": (2, ustr("/zookeeper/config") + dv),
        "delete /": (2, ustr("/") + dv),
        "delete relative": (2, ustr(p[1:]) + dv),
        "delete trailing slash": (2, ustr(p + "/") + dv),
        "delete //x": (2, ustr("/" + p) + dv),
        "setData relative": (5, set_body(p[1:])),
        "setData trailing slash": (5, set_body(p + "/")),
        "setData //x": (5, set_body("/" + p)),
        "setData dot": (5, set_body(p + "/.")),
        "getData relative": (4, ustr(p[1:]) + b"\x00"),
        "getData trailing slash": (4, ustr(p + "/") + b"\x00"),
        "exists relative": (3, ustr(p[1:]) + b"\x00"),
        "getChildren empty segment": (8, ustr(p + "//x") + b"\x00"),
    }


# Observed on Apache 3.8.0 (err of the reply; the connection stays open in every case).
PATH_EXPECTED = {
    "create relative": -8,
    "create empty": -8,
    "create trailing slash": -8,
    "create //x": -8,
    "create empty segment": -101,  # parent "<p>/" does not exist
    "create dot": -8,
    "create dotdot": -8,
    "create dot segment": -101,
    "create relative/child": -101,
    "create missing/trailing": -101,
    "create nul": -8,
    "create /": -110,
    "create /zookeeper/": -8,
    "create sequential trailing slash": 0,  # "<p>/" + "0000000000" is a valid name
    "delete /zookeeper": -8,
    "delete /zookeeper/quota": -8,
    "delete /zookeeper/config": -8,
    "delete /": -8,
    "delete relative": -8,
    "delete trailing slash": -101,
    "delete //x": -101,
    "setData relative": -8,
    "setData trailing slash": -8,
    "setData //x": -8,
    "setData dot": -8,
    "getData relative": -101,  # reads do not validate paths server-side
    "getData trailing slash": -101,
    "exists relative": -101,
    "getChildren empty segment": -101,
}


def test_invalid_paths(zk_server: ZkServer, bystander: Bystander) -> None:
    p = unique("paths")
    bystander.zk.create(p, b"")
    seen: dict[str, int] = {}
    with Raw(zk_server) as raw:
        raw.handshake()
        for xid, (name, (op, body)) in enumerate(_path_cases(p).items(), start=1):
            hdr, _ = raw.call(xid, op, body)
            assert hdr.xid == xid
            seen[name] = hdr.err
    assert seen == PATH_EXPECTED
    assert sorted(bystander.zk.get_children(p)) == ["0000000000"]
    assert sorted(bystander.zk.get_children("/zookeeper")) == ["config", "quota"]
    bystander.check()


# ----------------------------------------------------------------------------------------------------------
# auth and session revalidation


def test_auth_with_unknown_scheme_fails_then_closes(zk_server: ZkServer, bystander: Bystander) -> None:
    """Apache: ReplyHeader{-4, 0, -115 AuthFailed} and the connection is closed."""
    body = struct.pack("!i", 0) + ustr("no-such-scheme") + ustr("user:pw")
    with Raw(zk_server) as raw:
        raw.handshake()
        raw.send(request(proto.XID_AUTH, proto.Op.AUTH, body))
        out = raw.outcome()
    assert out.summary() == "[(-4, -115)] closed"
    bystander.check()


def _expired_reply(out: Outcome) -> None:
    """Apache's refusal: ConnectResponse{timeOut 0, sessionId 0, 16 zero bytes, readOnly 0}, then close."""
    assert out.closed and len(out.frames) == 1 and out.rest == b""
    assert out.frames[0] == proto.ConnectResponse(0, 0, 0, bytes(16)).to_bytes() + b"\x00"


def test_reconnect_with_wrong_password(zk_server: ZkServer, bystander: Bystander) -> None:
    """The refusal is the expired-session reply.  The victim session itself survives.

    Apache 3.8.0 drops the victim's current connection *before* checking the password (kazoo then reconnects
    with the right one), so only the session - not the connection - is asserted to survive here.
    """
    victim = kazoo_client(zk_server)
    try:
        sid, pw = victim.client_id
        wrong = bytes(b ^ 0xFF for b in pw)
        out = abuse(zk_server, frame(connect_payload(session_id=sid, passwd=wrong)), handshake=False)
        _expired_reply(out)
        path = unique("victim")
        victim.retry(victim.create, path, b"v")
        assert victim.client_id[0] == sid and victim.state == KazooState.CONNECTED
        assert bystander.zk.get(path)[0] == b"v"
    finally:
        stop_client(victim)
    bystander.check()


@pytest.mark.parametrize("session_id", [0x123456789, -1, 2**63 - 1])
def test_reconnect_to_unknown_session(zk_server: ZkServer, bystander: Bystander, session_id: int) -> None:
    out = abuse(
        zk_server, frame(connect_payload(session_id=session_id, passwd=b"\x01" * 16)), handshake=False
    )
    _expired_reply(out)
    bystander.check()


def test_last_zxid_seen_ahead_of_server_closes_without_reply(
    zk_server: ZkServer, bystander: Bystander
) -> None:
    """A client that has seen a newer state is closed with no ConnectResponse (it tries another server)."""
    out = abuse(zk_server, frame(connect_payload(last_zxid=1 << 40)), handshake=False)
    assert out.summary() == "[] closed"
    bystander.check()


# ----------------------------------------------------------------------------------------------------------
# four-letter words


def test_every_four_letter_word_answers_on_a_new_connection(
    zk_server: ZkServer, bystander: Bystander
) -> None:
    """Whitelist ``*``: each command writes text and closes.  ``stmk`` re-sets the current mask (gtmk)."""
    answers: dict[str, tuple[bytes, bool]] = {}
    for cmd in ALL_4LW:
        if cmd == "stmk":
            mask = int(zk_server.four_letter("gtmk"))
            answers[cmd] = four_letter_raw(zk_server, b"stmk" + struct.pack("!q", mask))
        else:
            answers[cmd] = four_letter_raw(zk_server, cmd.encode())
    # hash lists recorded tree digests: legitimately empty on a young server
    empty_or_open = [
        cmd for cmd, (text, closed) in answers.items() if not closed or not (text or cmd == "hash")
    ]
    assert empty_or_open == []
    assert answers["ruok"][0] == b"imok"
    assert answers["isro"][0] == b"rw"
    assert answers["crst"][0] == b"Connection stats reset.\n"
    assert answers["srst"][0] == b"Server stats reset.\n"
    assert answers["stmk"][0] == answers["gtmk"][0]
    assert answers["srvr"][0].startswith(b"Zookeeper version: 3.8.0")
    assert answers["envi"][0].startswith(b"Environment:\nzookeeper.version=3.8.0")
    assert b"zk_server_state\tstandalone" in answers["mntr"][0]
    bystander.check()


@pytest.mark.parametrize("kind", KINDS)
def test_whitelist_refuses_other_words(
    kind: str, start_server: Callable[[str, dict[str, str]], ZkServer]
) -> None:
    """Apache: ``<cmd> is not executed because it is not in the whitelist.``; ``srvr`` is always allowed."""
    srv = start_server(kind, {"4lw.commands.whitelist": "ruok"})
    by = Bystander(srv)
    try:
        answers = {cmd: four_letter_raw(srv, cmd.encode()) for cmd in ALL_4LW if cmd not in ("ruok", "srvr")}
        expected = {
            cmd: (f"{cmd} is not executed because it is not in the whitelist.\n".encode(), True)
            for cmd in answers
        }
        assert answers == expected
        assert four_letter_raw(srv, b"ruok") == (b"imok", True)
        text, closed = four_letter_raw(srv, b"srvr")
        assert closed and text.startswith(b"Zookeeper version: 3.8.0") and b"Mode: standalone" in text
        by.check()
    finally:
        by.close()


@pytest.mark.parametrize(
    "payload", [b"ruok", frame(b"ruok"), b"srvr" * 3], ids=["bare", "framed", "repeated"]
)
def test_four_letter_word_after_handshake_is_not_a_command(
    zk_server: ZkServer, bystander: Bystander, payload: bytes
) -> None:
    """After the handshake the bytes are a frame length ("ruok" = 0x72756f6b > maxbuffer) or a frame too
    short for a RequestHeader: Apache closes without writing anything."""
    out = abuse(zk_server, payload, handshake=True)
    assert out.summary() == "[] closed" and out.rest == b""
    bystander.check()


def test_partial_split_and_unknown_words(zk_server: ZkServer, bystander: Bystander) -> None:
    seen: dict[str, tuple[bytes, bool]] = {}
    seen["ruo (waits for a 4th byte)"] = four_letter_raw(zk_server, b"ruo", wait=QUIET_WAIT)
    seen["r"] = four_letter_raw(zk_server, b"r", wait=QUIET_WAIT)
    seen["ruok\\n"] = four_letter_raw(zk_server, b"ruok\n")
    seen["ruokruok"] = four_letter_raw(zk_server, b"ruokruok")
    seen["RUOK"] = four_letter_raw(zk_server, b"RUOK")
    seen["xxxx"] = four_letter_raw(zk_server, b"xxxx")
    seen["zabs"] = four_letter_raw(zk_server, b"zabs")  # an AdminServer-only name
    with Raw(zk_server) as raw:  # one word split over two TCP segments
        raw.send(b"ru")
        time.sleep(0.2)
        raw.send(b"ok")
        seen["ru|ok"] = raw.read_raw(3.0)
    assert seen == {
        "ruo (waits for a 4th byte)": (b"", False),
        "r": (b"", False),
        "ruok\\n": (b"imok", True),
        "ruokruok": (b"imok", True),
        "RUOK": (b"", True),
        "xxxx": (b"", True),
        "zabs": (b"", True),
        "ru|ok": (b"imok", True),
    }
    bystander.check()


def test_many_four_letter_words_in_parallel(zk_server: ZkServer, bystander: Bystander) -> None:
    """200 words from 40 threads (kept under Apache's default maxClientCnxns=60 per IP): all answered."""
    words = [("ruok", "srvr", "mntr", "stat", "cons")[i % 5] for i in range(200)]

    def ask(cmd: str) -> tuple[str, str]:
        return cmd, zk_server.four_letter(cmd, timeout=30.0)

    with concurrent.futures.ThreadPoolExecutor(max_workers=40) as pool:
        results = list(pool.map(ask, words))
    bad = [(cmd, text[:60]) for cmd, text in results if not text or (cmd == "ruok" and text != "imok")]
    assert bad == []
    bystander.check()


@pytest.mark.parametrize("kind", KINDS)
def test_two_hundred_simultaneous_connections_unlimited(
    kind: str, start_server: Callable[[str, dict[str, str]], ZkServer]
) -> None:
    """maxClientCnxns=0 (unlimited): 200 sockets open at once, each sends ruok, all answer imok."""
    srv = start_server(kind, {"maxClientCnxns": "0"})
    by = Bystander(srv)
    socks: list[Raw] = []
    try:
        for _ in range(200):
            socks.append(Raw(srv, timeout=30.0))
        for r in socks:
            r.send(b"ruok")
        answers = [r.read_raw(30.0) for r in socks]
        assert answers.count((b"imok", True)) == 200, answers[:5]
        by.check()
    finally:
        for r in socks:
            r.close()
        by.close()


def test_half_open_silent_connections_do_not_block_service(zk_server: ZkServer, bystander: Bystander) -> None:
    """50 sockets that never send a byte (slow loris): new sessions, requests and 4lw still work."""
    idle: list[Raw] = []
    try:
        for _ in range(50):
            idle.append(Raw(zk_server))
        bystander.check()
        with Raw(zk_server) as raw:
            raw.handshake()
            hdr, _ = raw.call(1, proto.Op.EXISTS, ustr("/") + b"\x00")
            assert (hdr.xid, hdr.err) == (1, 0)
        zk = kazoo_client(zk_server)
        try:
            path = unique("during-loris")
            zk.create(path, b"ok")
            assert bystander.zk.get(path)[0] == b"ok"
        finally:
            stop_client(zk)
        assert zk_server.four_letter("srvr").startswith("Zookeeper version:")
    finally:
        for r in idle:
            r.close()
    bystander.check()


# ----------------------------------------------------------------------------------------------------------
# per-IP connection limit


def _closed_without_reply(srv: ZkServer, payload: bytes) -> bool:
    """The server closes a connection over the limit at once; under load that can even happen while
    our connect() or send() is still in progress, which counts as the same outcome."""
    try:
        with Raw(srv) as conn:
            conn.send(payload)
            return conn.outcome().summary() == "[] closed"
    except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
        return True


@pytest.mark.parametrize("kind", KINDS)
def test_max_client_cnxns_refuses_the_sixth(
    kind: str, start_server: Callable[[str, dict[str, str]], ZkServer]
) -> None:
    """maxClientCnxns=5: the bystander plus four raw sessions work; a sixth connection is closed at once."""
    srv = start_server(kind, {"maxClientCnxns": "5"})
    by = Bystander(srv)  # connection 1
    raws: list[Raw] = []
    try:
        for i in range(4):  # connections 2..5
            r = Raw(srv)
            raws.append(r)
            r.handshake()
            hdr, _ = r.call(i + 1, proto.Op.EXISTS, ustr("/") + b"\x00")
            assert (hdr.xid, hdr.err) == (i + 1, 0)
        assert _closed_without_reply(srv, frame(connect_payload()))
        assert _closed_without_reply(srv, b"ruok")  # 4lw connections count too
        for i, r in enumerate(raws):  # the first five are untouched
            hdr, _ = r.call(100 + i, proto.Op.EXISTS, ustr("/") + b"\x00")
            assert (hdr.xid, hdr.err) == (100 + i, 0)
        path = unique("cnxns")
        by.zk.create(path, b"5")
        assert by.states == []
    finally:
        for r in raws:
            r.close()
    try:
        by.check()  # ruok_eventually: room again once the server has released the closed sockets
    finally:
        by.close()
