"""The request processor of a zk_py server: PrepRequestProcessor + FinalRequestProcessor.

Sans-I/O.  The server feeds it decoded frames with the clock already read; it answers by
appending to three lists the server drains after every call:

* ``out``: ``(client, frame bytes)`` in the order they must reach the wire (notifications
  before the reply that caused them), or ``(client, None)`` to close that connection;
* ``log``: ``(zxid, record bytes)`` transactions to append to the txn log;
* each ``out`` entry is tagged by the server with the zxid that must be durable first.

Writes are validated and applied to the tree at once, so later requests see them; the
server holds every output until the log is fsynced past the tree's zxid at the time the
output was produced, so no client ever observes a change that a crash could lose.
"""

from __future__ import annotations

import logging
import struct
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import acl as aclmod
from .datatree import DataTree, Node, Result, Trigger, encode_record, sub_txn
from .jute import NULL_STRING, JuteError, Reader, Writer
from .prep import MULTI_OPS, decode_write, multi_create_op, prep_write
from .proto import (
    ACL,
    CONTAINER_EPHEMERAL_OWNER,
    XID_NOTIFICATION,
    XID_PING,
    AddWatchRequest,
    AuthPacket,
    CloseSessionTxn,
    ConnectRequest,
    ConnectResponse,
    CreateSessionTxn,
    DeleteTxn,
    Err,
    ErrorTxn,
    Event,
    Id,
    KeeperState,
    MultiHeader,
    MultiTxn,
    Op,
    Perm,
    SetWatches,
    SetWatches2,
    TxnHeader,
    WatchesRequest,
    WhoAmIResponse,
    ZkError,
)
from .sessions import SessionTracker, initial_session_id, session_password
from .watches import WatchManager

log = logging.getLogger("zk_py.engine")

_REPLY = struct.Struct("!iiqi")  # frame length, xid, zxid, err
_INT = struct.Struct("!i")
_NOTIFY_HDR = struct.Struct("!iiqiii")  # len, xid -1, zxid -1, err 0, type, state

WRITE_OPS = frozenset(
    {
        Op.CREATE,
        Op.CREATE2,
        Op.CREATE_CONTAINER,
        Op.CREATE_TTL,
        Op.DELETE,
        Op.SET_DATA,
        Op.SET_ACL,
        Op.CHECK,
        Op.MULTI,
        Op.RECONFIG,
        Op.CLOSE_SESSION,
        Op.DELETE_CONTAINER,
        Op.CREATE_SESSION,
    }
)

OP_NAMES = {
    Op.CREATE: "CREA",
    Op.CREATE2: "CREA",
    Op.CREATE_CONTAINER: "CREA",
    Op.CREATE_TTL: "CREA",
    Op.DELETE: "DELE",
    Op.EXISTS: "EXIS",
    Op.GET_DATA: "GETD",
    Op.SET_DATA: "SETD",
    Op.GET_ACL: "GETA",
    Op.SET_ACL: "SETA",
    Op.GET_CHILDREN: "GETC",
    Op.GET_CHILDREN2: "GETC",
    Op.SYNC: "SYNC",
    Op.PING: "PING",
    Op.CHECK: "CHEC",
    Op.MULTI: "MULT",
    Op.MULTI_READ: "MLTR",
    Op.RECONFIG: "RECO",
    Op.AUTH: "AUTH",
    Op.SET_WATCHES: "SETW",
    Op.SET_WATCHES2: "STW2",
    Op.ADD_WATCH: "ADDW",
    Op.REMOVE_WATCHES: "REMW",
    Op.CHECK_WATCHES: "CHKW",
    Op.GET_EPHEMERALS: "GETE",
    Op.GET_ALL_CHILDREN_NUMBER: "GETACN",
    Op.WHO_AM_I: "WHOA",
    Op.CLOSE_SESSION: "CLOS",
    Op.SASL: "SASL",
}


@dataclass(eq=False, slots=True)
class Client:
    """One client connection as the engine sees it (also the watcher identity)."""

    remote_ip: str
    remote: str = ""
    session_id: int = 0
    timeout: int = 0
    readonly_byte: bool = True
    can_be_read_only: bool = False  # the client accepts a read-only server (its ConnectRequest flag)
    auth: list[Id] = field(default_factory=list)
    established: int = 0
    recved: int = 0
    sent: int = 0
    last_op: str = "NA"
    last_cxid: int = -1
    last_zxid: int = -1
    last_resp: int = 0
    last_latency: int = 0
    min_latency: int = 0
    max_latency: int = 0
    total_latency: int = 0
    count_latency: int = 0
    closed: bool = False
    conn: Any = None  # the server's connection object
    # Learner role: requests forwarded to the leader and not yet answered, then the reads behind them
    # (answered in order, so a session never sees a state older than its own writes).
    waiting: deque[tuple[int, int, Any]] = field(default_factory=deque)

    def __hash__(self) -> int:
        return id(self)

    def record_latency(self, ms: int) -> None:
        self.last_latency = ms
        if self.count_latency == 0 or ms < self.min_latency:
            self.min_latency = ms
        self.max_latency = max(self.max_latency, ms)
        self.total_latency += ms
        self.count_latency += 1

    def reset_stats(self) -> None:
        self.recved = self.sent = 0
        self.last_latency = self.min_latency = self.max_latency = 0
        self.total_latency = self.count_latency = 0
        self.last_op, self.last_cxid, self.last_zxid, self.last_resp = "NA", -1, -1, 0


@dataclass(slots=True)
class EngineConfig:
    tick_time: int = 2000
    min_timeout: int = 4000
    max_timeout: int = 40000
    server_id: int = 1
    super_digest: str | None = None
    extended_types: bool = False
    reconfig_enabled: bool = False
    standalone: bool = True


def reply(xid: int, zxid: int, err: int, body: bytes = b"") -> bytes:
    return _REPLY.pack(16 + len(body), xid, zxid, err) + body


def notification(event: int, path: str) -> bytes:
    p = path.encode("utf-8")
    return (
        _NOTIFY_HDR.pack(28 + len(p), XID_NOTIFICATION, -1, 0, event, KeeperState.SYNC_CONNECTED)
        + _INT.pack(len(p))
        + p
    )


def _children_body(names: Any) -> bytes:
    w = Writer()
    w.int(len(names))
    for n in names:
        w.ustring(n)
    return bytes(w.buf)


def _ustr(s: str) -> bytes:
    b = s.encode("utf-8")
    return _INT.pack(len(b)) + b


def _buf(b: bytes | None) -> bytes:
    if b is None:
        return b"\xff\xff\xff\xff"
    return _INT.pack(len(b)) + b


class Engine:
    """Deterministic ZooKeeper request processing over a :class:`DataTree`."""

    def __init__(self, cfg: EngineConfig, tree: DataTree | None = None, mono_ms: int = 0) -> None:
        self.cfg = cfg
        self.tree = tree or DataTree()
        self.watches = WatchManager()
        self.tracker = SessionTracker(cfg.tick_time)
        self.out: list[tuple[Client, bytes | None]] = []
        self.log: list[tuple[int, bytes]] = []
        self.wall = 0
        self.mono = mono_ms
        self.next_session_id = initial_session_id(cfg.server_id, mono_ms)
        self.by_session: dict[int, Client] = {}
        self.packets_received = 0
        self.packets_sent = 0
        self.auth_failed = 0
        # Ensemble roles.  "leader" works as standalone (its replies wait for the commit instead of
        # the fsync) and also runs requests forwarded by learners; "learner" forwards every write,
        # session creation and sync, and applies what the leader commits.
        self.role = "standalone"
        self.forward: list[bytes | None] = []  # learner: REQUEST data, None for a sync
        self.touched: dict[int, int] = {}  # learner: sessions kept alive since the last ping
        self.pending_connects: dict[int, Client] = {}
        self.syncs: deque[Client] = deque()
        for sid, timeout in self.tree.sessions.items():
            self.tracker.add(sid, timeout, mono_ms)
        self._reads: dict[int, Callable[[Client, int, Reader], None]] = {
            Op.EXISTS: self._exists,
            Op.GET_DATA: self._get_data,
            Op.GET_CHILDREN: self._get_children,
            Op.GET_CHILDREN2: self._get_children2,
            Op.GET_ACL: self._get_acl,
            Op.SYNC: self._sync,
            Op.GET_EPHEMERALS: self._get_ephemerals,
            Op.GET_ALL_CHILDREN_NUMBER: self._get_all_children_number,
            Op.ADD_WATCH: self._add_watch,
            Op.REMOVE_WATCHES: self._remove_watches,
            Op.CHECK_WATCHES: self._check_watches,
            Op.WHO_AM_I: self._who_am_i,
            Op.MULTI_READ: self._multi_read,
        }

    # ---------------------------------------------------------------- output

    def _send(self, c: Client, frame: bytes) -> None:
        self.out.append((c, frame))
        self.packets_sent += 1
        c.sent += 1

    def _reply(self, c: Client, xid: int, zxid: int, err: int, body: bytes = b"") -> None:
        self._send(c, _REPLY.pack(16 + len(body), xid, zxid, err) + body)
        c.last_zxid = zxid
        c.last_resp = self.wall

    def _fire(self, triggers: list[Trigger]) -> None:
        for path, event, acl in triggers:
            fired = self.watches.trigger(path, event)
            if fired:
                frame = notification(event, path)
                for w in fired:
                    if isinstance(w, Client) and not w.closed and aclmod.has_perm(acl, Perm.READ, w.auth):
                        self._send(w, frame)

    def _log_txn(self, hdr: TxnHeader, txn: Any) -> None:
        self.log.append((hdr.zxid, encode_record(hdr, txn)))

    # ---------------------------------------------------------------- connect

    def connect(self, c: Client, req: ConnectRequest, with_readonly: bool) -> None:
        """Handle a ConnectRequest; the reply (or close) goes to ``out``."""
        self.packets_received += 1
        c.recved += 1
        c.readonly_byte = with_readonly
        if req.lastZxidSeen > self.tree.last_zxid:
            log.warning(
                "refusing session 0x%x from %s: client has seen zxid 0x%x, this server is at 0x%x",
                req.sessionId & (2**64 - 1),
                c.remote,
                req.lastZxidSeen,
                self.tree.last_zxid,
            )
            self.out.append((c, None))
            return
        timeout = max(self.cfg.min_timeout, min(self.cfg.max_timeout, req.timeOut))
        c.timeout = timeout
        if self.role == "readonly":
            self._connect_read_only(c, req, timeout)
            return
        if req.sessionId == 0:
            sid = self.next_session_id
            self.next_session_id += 1
            if sid == CONTAINER_EPHEMERAL_OWNER:
                sid = self.next_session_id
                self.next_session_id += 1
            if self.role == "learner":
                self.pending_connects[sid] = c
                self.forward.append(encode_forward(sid, 0, Op.CREATE_SESSION, [], _INT.pack(timeout)))
                return
            self._create_session(sid, timeout)
            self._attach(c, sid, timeout)
            return
        sid = req.sessionId
        old = self.by_session.get(sid)
        if old is not None and old is not c:
            # Upstream closes the session's current connection before it checks the password.
            self.drop(old)
            self.out.append((old, None))
        alive = sid in self.tree.sessions if self.role == "learner" else self.tracker.alive(sid)
        if (req.passwd or b"") != session_password(sid) or not alive:
            log.info("session 0x%x from %s: expired or invalid password", sid & (2**64 - 1), c.remote)
            self._send(c, self._connect_response(c, 0, 0, b"\0" * 16))
            self.out.append((c, None))
            return
        self.tracker.set_timeout(sid, timeout, self.mono)
        if self.role == "learner":
            self.touched[sid] = timeout
        self._attach(c, sid, timeout)

    def _connect_read_only(self, c: Client, req: ConnectRequest, timeout: int) -> None:
        """A server without quorum in read-only mode: only clients that accept it, with local sessions."""
        if not c.can_be_read_only:
            log.info("refusing session from %s: the client does not accept a read-only server", c.remote)
            self.out.append((c, None))
            return
        sid = req.sessionId
        if sid == 0:
            sid = self.next_session_id
            self.next_session_id += 1
        elif (req.passwd or b"") != session_password(sid):
            self._send(c, self._connect_response(c, 0, 0, b"\0" * 16))
            self.out.append((c, None))
            return
        old = self.by_session.get(sid)
        if old is not None and old is not c:
            self.drop(old)
            self.out.append((old, None))
        if not self.tracker.touch(sid, self.mono):
            self.tracker.add(sid, timeout, self.mono)
        self._attach(c, sid, timeout)

    def _create_session(self, sid: int, timeout: int) -> None:
        """The createSession txn (local connect, or one a learner forwarded)."""
        hdr = TxnHeader(sid, 0, self.tree.last_zxid + 1, self.wall, Op.CREATE_SESSION)
        txn = CreateSessionTxn(timeout)
        self.tree.apply(hdr, txn, [])
        self._log_txn(hdr, txn)
        self.tracker.add(sid, timeout, self.mono)

    def _attach(self, c: Client, sid: int, timeout: int) -> None:
        c.session_id = sid
        c.established = self.wall
        self.by_session[sid] = c
        self._send(c, self._connect_response(c, timeout, sid, session_password(sid)))

    def _connect_response(self, c: Client, timeout: int, sid: int, passwd: bytes) -> bytes:
        body = ConnectResponse(0, timeout, sid, passwd).to_bytes()
        if c.readonly_byte:
            body += b"\x01" if self.role == "readonly" and sid else b"\x00"
        return _INT.pack(len(body)) + body

    def drop(self, c: Client) -> None:
        """The connection is gone: its watches go with it; the session lives on until expiry."""
        if c.closed:
            return
        c.closed = True
        self.watches.remove_watcher(c)
        if c.session_id and self.by_session.get(c.session_id) is c:
            del self.by_session[c.session_id]

    # ---------------------------------------------------------------- sessions

    def expire_sessions(self) -> list[int]:
        """Close every session whose deadline passed (a closeSession txn each)."""
        expired = self.tracker.expired(self.mono)
        for sid in expired:
            log.info("expiring session 0x%x", sid & (2**64 - 1))
            if self.role == "readonly":  # a local session: nothing to log
                self.tracker.remove(sid)
            else:
                self._close_session(sid, 0)
            c = self.by_session.get(sid)
            if c is not None:
                self.drop(c)
                self.out.append((c, None))
        return expired

    def _close_session(self, sid: int, cxid: int) -> int:
        zxid = self.tree.last_zxid + 1
        hdr = TxnHeader(sid, cxid, zxid, self.wall, Op.CLOSE_SESSION)
        txn = CloseSessionTxn(list(self.tree.ephemerals.get(sid, {})))
        triggers: list[Trigger] = []
        self.tree.apply(hdr, txn, triggers)
        self._log_txn(hdr, txn)
        self.tracker.remove(sid)
        self._fire(triggers)
        return zxid

    # ---------------------------------------------------------------- requests

    def request(self, c: Client, frame: bytes | memoryview) -> None:
        """One request frame (without its length prefix) from an established session."""
        if c.closed:  # closed by us (auth failure, expiry, moved session): ignore what was in flight
            return
        self.packets_received += 1
        c.recved += 1
        r = Reader(frame)
        try:
            xid, op = r.unpack(_XID_OP)
        except JuteError:
            log.info("%s: request shorter than its header; closing", c.remote)
            self.drop(c)
            self.out.append((c, None))
            return
        self.tracker.touch(c.session_id, self.mono)
        if self.role == "learner":
            self.touched[c.session_id] = c.timeout
        if op == Op.PING:  # upstream dispatches on the opcode; a ping is always answered as xid -2
            c.last_op = "PING"
            self._reply(c, XID_PING, self.tree.last_zxid, 0)
            return
        c.last_op = OP_NAMES.get(op, "UNKN")
        c.last_cxid = xid
        if op == Op.AUTH:
            self._auth(c, xid, r)
            return
        if self.role == "readonly" and op in WRITE_OPS:
            if op == Op.CLOSE_SESSION:  # a local session: nothing to log
                self.tracker.remove(c.session_id)
                self._reply(c, xid, self.tree.last_zxid, 0)
                self.drop(c)
                self.out.append((c, None))
            else:
                self._reply(c, xid, self.tree.last_zxid, Err.NOT_READ_ONLY)
            return
        if self.role == "learner":
            if op in WRITE_OPS or op == Op.SYNC:
                self._forward(c, xid, op, frame)
                return
            if c.waiting:
                c.waiting.append((xid, -1, bytes(frame)))
                return
        self._dispatch(c, xid, op, r)

    def _dispatch(self, c: Client, xid: int, op: int, r: Reader) -> None:
        try:
            if op in WRITE_OPS:
                self._write(c, xid, op, r)
                return
            handler = self._reads.get(op)
            if handler is not None:
                handler(c, xid, r)
            elif op in (Op.SET_WATCHES, Op.SET_WATCHES2):
                self._set_watches(c, xid, op, r)
            elif op == Op.SASL:  # no SASL configured: upstream answers OK with a null token
                self._reply(c, xid, 0, 0, b"\xff\xff\xff\xff")
            else:
                # UnimplementedRequestProcessor answers, then the connection is closed.
                self._reply(c, xid, -1, Err.UNIMPLEMENTED)
                self.drop(c)
                self.out.append((c, None))
        except ZkError as e:
            self._reply(c, xid, self.tree.last_zxid, e.code)
        except JuteError as e:
            log.info("%s: malformed %s request: %s", c.remote, c.last_op, e)
            self._reply(c, xid, self.tree.last_zxid, Err.MARSHALLING_ERROR)

    # ---- ensemble: the learner side

    def _forward(self, c: Client, xid: int, op: int, frame: bytes | memoryview) -> None:
        """Send a write (or sync) to the leader; its reply comes when the commit is applied here."""
        if op == Op.SYNC:
            try:
                path = _path(Reader(frame, 8))
            except JuteError:
                self._reply(c, xid, self.tree.last_zxid, Err.MARSHALLING_ERROR)
                return
            c.waiting.append((xid, op, path))
            self.syncs.append(c)
            self.forward.append(None)
            return
        c.waiting.append((xid, op, None))
        self.forward.append(encode_forward(c.session_id, xid, op, c.auth, bytes(frame[8:])))

    def sync_done(self) -> None:
        """The leader answered the oldest forwarded sync: everything committed before it is applied."""
        while self.syncs:
            c = self.syncs.popleft()
            if c.closed or not c.waiting or c.waiting[0][1] != Op.SYNC:
                continue
            xid, _, path = c.waiting.popleft()
            self._reply(c, xid, self.tree.last_zxid, 0, _ustr(path))
            self._drain(c)
            return

    def _drain(self, c: Client) -> None:
        """Run the reads that were held behind a forwarded request, up to the next forwarded one."""
        while c.waiting and c.waiting[0][1] == -1 and not c.closed:
            xid, _, frame = c.waiting.popleft()
            r = Reader(frame)
            r.unpack(_XID_OP)
            self._dispatch(c, xid, _XID_OP.unpack_from(frame)[1], r)

    def apply_committed(self, hdr: TxnHeader, txn: Any) -> None:
        """Learner: apply one txn the leader committed; answer the local client that asked for it."""
        triggers: list[Trigger] = []
        res = self.tree.apply(hdr, txn, triggers)
        self._fire(triggers)
        sid = hdr.clientId
        if hdr.type == Op.CREATE_SESSION:
            c = self.pending_connects.pop(sid, None)
            if c is not None and not c.closed:
                self._attach(c, sid, c.timeout)
            return
        c = self.by_session.get(sid)
        if c is None:
            return
        head = c.waiting[0] if c.waiting else None
        mine = head is not None and head[0] == hdr.cxid and head[1] not in (-1, Op.SYNC)
        if hdr.type == Op.CLOSE_SESSION:
            if mine and head is not None and head[1] == Op.CLOSE_SESSION:
                self._reply(c, hdr.cxid, hdr.zxid, 0)
            self.drop(c)
            self.out.append((c, None))
            return
        if not mine:
            return
        c.waiting.popleft()
        if hdr.type == Op.ERROR:
            self._reply(c, hdr.cxid, hdr.zxid, txn.err)
        elif hdr.type == Op.MULTI:
            self._reply(c, hdr.cxid, hdr.zxid, 0, _multi_body(res))
        else:
            self._reply(c, hdr.cxid, hdr.zxid, 0, _write_body(hdr.type, res))
        self._drain(c)

    def drain_touches(self) -> list[tuple[int, int]]:
        out = list(self.touched.items())
        self.touched = {}
        return out

    # ---- ensemble: the leader side

    def forwarded(self, data: bytes) -> None:
        """Leader: a request a learner forwarded; exactly one txn results (an error txn if refused)."""
        try:
            sid, cxid, op, auth, payload = decode_forward(data)
        except (JuteError, struct.error) as e:
            log.warning("malformed forwarded request (%s); ignored", e)
            return
        if op == Op.CREATE_SESSION:
            timeout = _INT.unpack_from(payload)[0] if len(payload) >= 4 else self.cfg.min_timeout
            self._create_session(sid, timeout)
            return
        if not self.tracker.alive(sid):
            zxid = self.tree.last_zxid + 1
            hdr = TxnHeader(sid, cxid, zxid, self.wall, Op.ERROR)
            etxn = ErrorTxn(Err.SESSION_EXPIRED)
            self.tree.apply(hdr, etxn, [])
            self._log_txn(hdr, etxn)
            return
        proxy = Client(remote_ip="", remote="/forwarded", session_id=sid, auth=auth)
        self.request(proxy, _XID_OP.pack(cxid, op) + payload)

    def touch_sessions(self, sessions: tuple[tuple[int, int], ...]) -> None:
        """Leader: a learner's clients kept these sessions alive."""
        for sid, timeout in sessions:
            if not self.tracker.touch(sid, self.mono) and sid in self.tree.sessions:
                self.tracker.add(sid, timeout, self.mono)

    # ---- reads

    def _node_for_read(self, c: Client, path: str, perm: int = Perm.READ) -> Node:
        node = self.tree.nodes.get(path or "/")  # upstream stores the root under "" too
        if node is None:
            raise ZkError(Err.NO_NODE, path)
        if perm:
            aclmod.check_acl(node.acl, perm, c.auth)
        return node

    def _exists(self, c: Client, xid: int, r: Reader) -> None:
        path = _path(r)
        watch = r.bool()
        if "\0" in path:
            raise ZkError(Err.BAD_ARGUMENTS, "null character in path")
        node = self.tree.nodes.get(path or "/")
        if watch:
            self.watches.add_data(path, c)
        if node is None:
            self._reply(c, xid, self.tree.last_zxid, Err.NO_NODE)
        else:
            self._reply(c, xid, self.tree.last_zxid, 0, node.stat_bytes())

    def _get_data(self, c: Client, xid: int, r: Reader) -> None:
        path = _path(r)
        watch = r.bool()
        node = self._node_for_read(c, path)
        if watch:
            self.watches.add_data(path, c)
        self._reply(c, xid, self.tree.last_zxid, 0, _buf(node.data) + node.stat_bytes())

    def _get_children(self, c: Client, xid: int, r: Reader) -> None:
        path = _path(r)
        watch = r.bool()
        node = self._node_for_read(c, path)
        if watch:
            self.watches.add_child(path, c)
        self._reply(c, xid, self.tree.last_zxid, 0, _children_body(node.children))

    def _get_children2(self, c: Client, xid: int, r: Reader) -> None:
        path = _path(r)
        watch = r.bool()
        node = self._node_for_read(c, path)
        if watch:
            self.watches.add_child(path, c)
        self._reply(c, xid, self.tree.last_zxid, 0, _children_body(node.children) + node.stat_bytes())

    def _get_acl(self, c: Client, xid: int, r: Reader) -> None:
        path = _path(r)
        node = self._node_for_read(c, path, Perm.READ | Perm.ADMIN)
        acl = node.acl if aclmod.has_perm(node.acl, Perm.ADMIN, c.auth) else aclmod.redact_digests(node.acl)
        w = Writer()
        w.vector(acl, ACL._enc)
        self._reply(c, xid, self.tree.last_zxid, 0, bytes(w.buf) + node.stat_bytes())

    def _sync(self, c: Client, xid: int, r: Reader) -> None:
        path = _path(r)
        self._reply(c, xid, self.tree.last_zxid, 0, _ustr(path))

    def _get_ephemerals(self, c: Client, xid: int, r: Reader) -> None:
        prefix = r.ustring().strip()
        mine = list(self.tree.ephemerals.get(c.session_id, {}))
        if prefix and prefix != "/":
            mine = [p for p in mine if p.startswith(prefix)]
        self._reply(c, xid, self.tree.last_zxid, 0, _children_body(mine))

    def _get_all_children_number(self, c: Client, xid: int, r: Reader) -> None:
        path = _path(r)
        self._node_for_read(c, path)
        self._reply(c, xid, self.tree.last_zxid, 0, _INT.pack(self.tree.all_children_number(path)))

    def _add_watch(self, c: Client, xid: int, r: Reader) -> None:
        req = AddWatchRequest.read(r)
        if req.path is NULL_STRING:
            raise JuteError("null path")
        if req.mode not in (0, 1):
            raise ZkError(Err.BAD_ARGUMENTS, f"addWatch mode {req.mode}")
        self.watches.add_persistent(req.path, c, recursive=req.mode == 1)
        self._reply(c, xid, self.tree.last_zxid, 0, _INT.pack(0))

    def _remove_watches(self, c: Client, xid: int, r: Reader) -> None:
        req = WatchesRequest.read(r)
        if req.path is NULL_STRING:
            raise JuteError("null path")
        _check_watcher_type(req.type)
        if not self.watches.remove(req.path, c, req.type):
            raise ZkError(Err.NO_WATCHER, req.path)
        self._reply(c, xid, self.tree.last_zxid, 0)

    def _check_watches(self, c: Client, xid: int, r: Reader) -> None:
        req = WatchesRequest.read(r)
        if req.path is NULL_STRING:
            raise JuteError("null path")
        _check_watcher_type(req.type)
        if not self.watches.remove(req.path, c, req.type, dry_run=True):
            raise ZkError(Err.NO_WATCHER, req.path)
        self._reply(c, xid, self.tree.last_zxid, 0)

    def _who_am_i(self, c: Client, xid: int, r: Reader) -> None:
        self._reply(c, xid, self.tree.last_zxid, 0, WhoAmIResponse(aclmod.client_infos(c.auth)).to_bytes())

    def _multi_read(self, c: Client, xid: int, r: Reader) -> None:
        w = Writer()
        while True:
            mh = MultiHeader.read(r)
            if mh.done:
                break
            path = _path(r)
            r.bool()  # the watch flag: 3.8 drops it when it turns the op into a read request
            try:
                if mh.type == Op.GET_CHILDREN:
                    body = _children_body(self._node_for_read(c, path).children)
                elif mh.type == Op.GET_DATA:
                    node = self._node_for_read(c, path)
                    body = _buf(node.data) + node.stat_bytes()
                else:
                    raise ZkError(Err.BAD_ARGUMENTS, f"op {mh.type} in multiRead")
                MultiHeader(mh.type, False, 0).write(w)
                w.buf += body
            except ZkError as e:
                MultiHeader(-1, False, e.code).write(w)
                w.int(e.code)
        MultiHeader(-1, True, -1).write(w)
        self._reply(c, xid, self.tree.last_zxid, 0, bytes(w.buf))

    def _set_watches(self, c: Client, xid: int, op: int, r: Reader) -> None:
        if op == Op.SET_WATCHES:
            sw: Any = SetWatches.read(r)
            persistent: list[str] = []
            recursive: list[str] = []
        else:
            sw = SetWatches2.read(r)
            persistent, recursive = sw.persistentWatches, sw.persistentRecursiveWatches
        rel = sw.relativeZxid
        nodes = self.tree.nodes
        for path in sw.dataWatches:
            node = nodes.get(path)
            if node is None:
                self._send(c, notification(Event.NODE_DELETED, path))
            elif node.mzxid > rel:
                self._send(c, notification(Event.NODE_DATA_CHANGED, path))
            else:
                self.watches.add_data(path, c)
        for path in sw.existWatches:
            if path in nodes:
                self._send(c, notification(Event.NODE_CREATED, path))
            else:
                self.watches.add_data(path, c)
        for path in sw.childWatches:
            node = nodes.get(path)
            if node is None:
                self._send(c, notification(Event.NODE_DELETED, path))
            elif node.pzxid > rel:
                self._send(c, notification(Event.NODE_CHILDREN_CHANGED, path))
            else:
                self.watches.add_child(path, c)
        for path in persistent:
            self.watches.add_persistent(path, c, recursive=False)
        for path in recursive:
            self.watches.add_persistent(path, c, recursive=True)
        self._reply(c, xid, self.tree.last_zxid, 0)

    def _auth(self, c: Client, xid: int, r: Reader) -> None:
        try:
            pkt = AuthPacket.read(r)
        except JuteError as e:  # upstream drops the connection without a reply
            log.info("%s: malformed auth packet (%s); closing", c.remote, e)
            self.drop(c)
            self.out.append((c, None))
            return
        try:
            ids = aclmod.authenticate(pkt.scheme, pkt.auth, c.remote_ip, self.cfg.super_digest)
        except ZkError:
            self.auth_failed += 1
            log.info("%s: authentication failed (scheme %r)", c.remote, pkt.scheme)
            self._send(c, reply(xid, 0, Err.AUTH_FAILED))
            self.drop(c)
            self.out.append((c, None))
            return
        for i in ids:
            if i not in c.auth:
                c.auth.append(i)
        self._send(c, reply(xid, 0, 0))

    # ---- writes

    def _write(self, c: Client, xid: int, op: int, r: Reader) -> None:
        if op == Op.CLOSE_SESSION:
            zxid = self._close_session(c.session_id, xid)
            self._reply(c, xid, zxid, 0)
            self.drop(c)
            self.out.append((c, None))
            return
        zxid = self.tree.last_zxid + 1
        hdr = TxnHeader(c.session_id, xid, zxid, self.wall, op)
        triggers: list[Trigger] = []
        if op == Op.MULTI:
            self._multi(c, hdr, r, triggers)
            return
        try:
            if op == Op.DELETE_CONTAINER:  # the container reaper's op; upstream refuses it from clients
                raise ZkError(Err.BAD_ARGUMENTS, "deleteContainer is internal")
            if op == Op.CREATE_SESSION:  # only valid as the connect handshake
                raise JuteError("createSession after the handshake")
            rec = decode_write(op, r)
            txn = self._prep(c, op, rec)
        except JuteError:
            hdr.type = Op.ERROR
            txn = ErrorTxn(Err.MARSHALLING_ERROR)
        except ZkError as e:
            hdr.type = Op.ERROR
            txn = ErrorTxn(e.code)
        res = self.tree.apply(hdr, txn, triggers)
        self._log_txn(hdr, txn)
        self._fire(triggers)
        if hdr.type == Op.ERROR:
            self._reply(c, xid, zxid, txn.err)
            return
        self._reply(c, xid, zxid, 0, _write_body(op, res))

    def _prep(self, c: Client, op: int, rec: Any) -> Any:
        cfg = self.cfg
        return prep_write(
            self.tree,
            c.auth,
            op,
            rec,
            extended_types=cfg.extended_types,
            reconfig_enabled=cfg.reconfig_enabled,
        )

    def _multi(self, c: Client, hdr: TxnHeader, r: Reader, triggers: list[Trigger]) -> None:
        ops: list[tuple[int, Any]] = []
        try:
            while True:
                mh = MultiHeader.read(r)
                if mh.done:
                    break
                if mh.type not in MULTI_OPS:
                    raise JuteError(f"invalid op {mh.type} in multi")
                rec = decode_write(mh.type, r)
                ops.append((multi_create_op(mh.type, rec), rec))
        except JuteError as e:
            log.info("%s: malformed multi: %s", c.remote, e)
            hdr.type = Op.ERROR
            err_txn = ErrorTxn(Err.MARSHALLING_ERROR)
            self.tree.apply(hdr, err_txn, [])
            self._log_txn(hdr, err_txn)
            self._reply(c, hdr.cxid, hdr.zxid, Err.MARSHALLING_ERROR)
            return
        tree = self.tree
        tree.begin_undo()
        results: list[Result] = []
        subs = []
        failed_at = -1
        failure = Err.OK
        local: list[Trigger] = []
        for i, (op, rec) in enumerate(ops):
            try:
                txn = self._prep(c, op, rec)
                sub_hdr = TxnHeader(hdr.clientId, hdr.cxid, hdr.zxid, hdr.time, op)
                results.append(tree._apply_one(op, txn, sub_hdr, local))
                subs.append(sub_txn(op, txn))
            except ZkError as e:
                failed_at, failure = i, e.code
                break
        if failed_at >= 0:
            tree.rollback()
            errs = (
                [0] * failed_at
                + [int(failure)]
                + [int(Err.RUNTIME_INCONSISTENCY)] * (len(ops) - failed_at - 1)
            )
            txn_m = MultiTxn([sub_txn(Op.ERROR, ErrorTxn(code)) for code in errs])
            tree.last_zxid = max(tree.last_zxid, hdr.zxid)
            self._log_txn(hdr, txn_m)
            failed = Result(Op.MULTI, subs=[Result(Op.ERROR, err=code) for code in errs])
            self._reply(c, hdr.cxid, hdr.zxid, 0, _multi_body(failed))
            return
        tree.end_undo()
        tree.last_zxid = max(tree.last_zxid, hdr.zxid)
        self._log_txn(hdr, MultiTxn(subs))
        triggers.extend(local)
        self._fire(triggers)
        self._reply(c, hdr.cxid, hdr.zxid, 0, _multi_body(Result(Op.MULTI, subs=results)))

    # ---------------------------------------------------------------- reapers

    def reap_containers_and_ttls(self) -> int:
        """Delete empty containers that once had children and expired TTL nodes (ContainerManager)."""
        candidates: list[str] = []
        for path in list(self.tree.containers):
            node = self.tree.nodes.get(path)
            if node is not None and not node.children and node.cversion > 0:
                candidates.append(path)
        for path in list(self.tree.ttls):
            node = self.tree.nodes.get(path)
            ttl = node.ttl if node is not None else None
            if node is not None and ttl is not None and not node.children and self.wall - node.mtime > ttl:
                candidates.append(path)
        for path in candidates:
            zxid = self.tree.last_zxid + 1
            hdr = TxnHeader(0, 0, zxid, self.wall, Op.DELETE_CONTAINER)
            txn = DeleteTxn(path)
            triggers: list[Trigger] = []
            self.tree.apply(hdr, txn, triggers)
            self._log_txn(hdr, txn)
            self._fire(triggers)
        return len(candidates)


_XID_OP = struct.Struct("!ii")


def _path(r: Reader) -> str:
    """A request path; the jute null string is a marshalling error, as upstream's NPE makes it."""
    path = r.ustring()
    if path is NULL_STRING:
        raise JuteError("null path")
    return path


def _check_watcher_type(t: int) -> None:
    """3.8's WatcherType.fromInt knows 1..3; anything else fails as a marshalling error there."""
    if t not in (1, 2, 3):
        raise ZkError(Err.MARSHALLING_ERROR, f"watcher type {t}")


def _multi_body(res: Result) -> bytes:
    """A multi's reply from its applied sub-results (error codes for a failed one)."""
    w = Writer()
    for sub in res.subs:
        if sub.type == Op.ERROR:
            MultiHeader(-1, False, sub.err).write(w)
            w.int(sub.err)
        else:
            op = Op.CREATE2 if sub.type in (Op.CREATE_CONTAINER, Op.CREATE_TTL) else sub.type
            MultiHeader(op, False, 0).write(w)
            w.buf += _write_body(sub.type, sub)
    MultiHeader(-1, True, -1).write(w)
    return bytes(w.buf)


def encode_forward(session_id: int, cxid: int, op: int, auth: list[Id], payload: bytes) -> bytes:
    """A learner's REQUEST packet data: who asked, with which credentials, and the request body."""
    w = Writer()
    w.buf += _FWD.pack(session_id, cxid, op)
    w.vector(auth, Id._enc)
    return bytes(w.buf) + payload


def decode_forward(data: bytes) -> tuple[int, int, int, list[Id], bytes]:
    sid, cxid, op = _FWD.unpack_from(data, 0)
    r = Reader(data, _FWD.size)
    auth = r.vector(Id._dec)
    return sid, cxid, op, auth, bytes(data[r.pos :])


_FWD = struct.Struct("!qii")


def _write_body(op: int, res: Result) -> bytes:
    if op == Op.CREATE:
        return _ustr(res.path)
    if op in (Op.CREATE2, Op.CREATE_CONTAINER, Op.CREATE_TTL):
        assert res.node is not None
        return _ustr(res.path) + res.node.stat_bytes()
    if op in (Op.SET_DATA, Op.SET_ACL):
        assert res.node is not None
        return res.node.stat_bytes()
    return b""
