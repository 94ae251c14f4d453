"""The znode tree and the transactions that change it (DataTree.processTxn).

Pure and deterministic: a transaction (header + record) goes in, the tree changes and
the watch triggers come out.  The same code applies live writes and replays the log,
so recovery cannot drift from what clients saw.  Multi needs all-or-nothing application,
so the tree can record an undo log and roll back.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from .jute import Reader, Writer
from .paths import split
from .proto import (
    ACL,
    CONTAINER_EPHEMERAL_OWNER,
    MAX_TTL,
    OPEN_ACL_UNSAFE,
    READ_ACL_UNSAFE,
    TTL_OWNER_MASK,
    CheckVersionTxn,
    CloseSessionTxn,
    CreateContainerTxn,
    CreateSessionTxn,
    CreateTTLTxn,
    CreateTxn,
    DeleteTxn,
    Err,
    ErrorTxn,
    Event,
    MultiTxn,
    Op,
    SetACLTxn,
    SetDataTxn,
    Stat,
    StatPersisted,
    Txn,
    TxnHeader,
    ZkError,
)

STAT = struct.Struct("!qqqqiiiqiiq")
_OWNER_LIMIT = 0x00FFFFFFFFFFFFFF

SYSTEM_PATHS = frozenset(("/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"))


class Node:
    """One znode.  ``cversion`` is upstream's stored value: the number of child creations."""

    __slots__ = (
        "acl",
        "aversion",
        "children",
        "ctime",
        "cversion",
        "czxid",
        "data",
        "mtime",
        "mzxid",
        "owner",
        "pzxid",
        "version",
    )

    def __init__(
        self, data: bytes | None, acl: list[ACL], zxid: int = 0, time: int = 0, owner: int = 0
    ) -> None:
        self.data = data
        self.acl = acl
        self.czxid = self.mzxid = self.pzxid = zxid
        self.ctime = self.mtime = time
        self.version = self.cversion = self.aversion = 0
        self.owner = owner
        self.children: dict[str, None] = {}

    def client_owner(self) -> int:
        """ephemeralOwner as clients see it: 0 for containers and TTL nodes."""
        o = self.owner
        return 0 if o == CONTAINER_EPHEMERAL_OWNER or (o < 0) else o

    def stat_tuple(self) -> tuple[int, ...]:
        n = len(self.children)
        return (
            self.czxid,
            self.mzxid,
            self.ctime,
            self.mtime,
            self.version,
            self.cversion * 2 - n,
            self.aversion,
            self.client_owner(),
            len(self.data) if self.data else 0,
            n,
            self.pzxid,
        )

    def stat(self) -> Stat:
        return Stat(*self.stat_tuple())

    def stat_bytes(self) -> bytes:
        return STAT.pack(*self.stat_tuple())

    @property
    def is_container(self) -> bool:
        return self.owner == CONTAINER_EPHEMERAL_OWNER

    @property
    def ttl(self) -> int | None:
        o = self.owner
        if o < 0 and o != CONTAINER_EPHEMERAL_OWNER and (o & TTL_OWNER_MASK) == TTL_OWNER_MASK:
            return o & MAX_TTL
        return None

    @property
    def is_session_ephemeral(self) -> bool:
        return self.owner > 0


def ttl_owner(ttl: int) -> int:
    """ephemeralOwner for a TTL node: 0xFF in the top byte, the ttl below (EphemeralType.TTL)."""
    return TTL_OWNER_MASK | (ttl & MAX_TTL)


# (path, event, ACL of the node the event is about): watchers without READ on it are not told
# (upstream's fix for CVE-2024-23944, in Debian's 3.8.0 build).
Trigger = tuple[str, Event, list[ACL]]


@dataclass(slots=True)
class Result:
    """Outcome of one applied txn: created path / node for replies, error code, multi sub-results."""

    type: int
    path: str = ""
    node: Node | None = None
    err: int = 0
    subs: list[Result] = field(default_factory=list)


class DataTree:
    """All znodes plus the indexes upstream keeps (ephemerals per session, containers, TTLs, sessions)."""

    def __init__(self) -> None:
        root = Node(b"", [])
        root.acl = list(_OPEN)
        zk = Node(b"", list(_OPEN))
        quota = Node(b"", list(_OPEN))
        config = Node(b"", list(READ_ACL_UNSAFE))
        config.aversion = -1
        root.children = {"zookeeper": None}
        zk.children = {"quota": None, "config": None}
        self.nodes: dict[str, Node] = {
            "/": root,
            "/zookeeper": zk,
            "/zookeeper/quota": quota,
            "/zookeeper/config": config,
        }
        self.ephemerals: dict[int, dict[str, None]] = {}
        self.containers: dict[str, None] = {}
        self.ttls: dict[str, None] = {}
        self.sessions: dict[int, int] = {}
        self.last_zxid = 0
        self._undo: list[Callable[[], object]] | None = None

    # ---- queries ----

    def get(self, path: str) -> Node | None:
        return self.nodes.get(path)

    def node_count(self) -> int:
        """As upstream reports it: the root is stored under both "" and "/"."""
        return len(self.nodes) + 1

    def approximate_data_size(self) -> int:
        return sum(len(p) + (len(n.data) if n.data else 0) for p, n in self.nodes.items())

    def ephemeral_count(self) -> int:
        return sum(len(v) for v in self.ephemerals.values())

    def all_children_number(self, path: str) -> int:
        if path == "/":
            return len(self.nodes) - 1
        prefix = path + "/"
        return sum(1 for p in self.nodes if p.startswith(prefix))

    def walk(self, path: str = "/") -> Iterator[tuple[str, Node]]:
        """Pre-order walk, parents before children."""
        stack = [path]
        while stack:
            p = stack.pop()
            node = self.nodes[p]
            yield p, node
            base = "" if p == "/" else p
            stack.extend(f"{base}/{c}" for c in reversed(node.children))

    # ---- undo (multi) ----
    # Each change records the inverse of exactly what it did (never a copy of a children map), so a
    # multi costs the same whatever the size of the directories it touches.

    def begin_undo(self) -> None:
        self._undo = []

    def rollback(self) -> None:
        assert self._undo is not None
        for undo in reversed(self._undo):
            undo()
        self._undo = None

    def end_undo(self) -> None:
        self._undo = None

    def _undo_create(self, path: str, parent: Node, name: str, cversion: int, pzxid: int) -> None:
        node = self.nodes.pop(path)
        self._unindex(path, node)
        parent.children.pop(name, None)
        parent.cversion, parent.pzxid = cversion, pzxid

    def _undo_delete(self, path: str, node: Node, parent: Node, name: str, pzxid: int) -> None:
        self.nodes[path] = node
        self._index(path, node)
        parent.children[name] = None
        parent.pzxid = pzxid

    @staticmethod
    def _undo_acl(node: Node, acl: list[ACL], aversion: int) -> None:
        node.acl, node.aversion = acl, aversion

    @staticmethod
    def _undo_set(node: Node, data: bytes | None, version: int, mzxid: int, mtime: int) -> None:
        node.data, node.version, node.mzxid, node.mtime = data, version, mzxid, mtime

    # ---- indexes ----

    def _index(self, path: str, node: Node) -> None:
        o = node.owner
        if o == 0:
            return
        if o > 0:
            self.ephemerals.setdefault(o, {})[path] = None
        elif o == CONTAINER_EPHEMERAL_OWNER:
            self.containers[path] = None
        elif node.ttl is not None:
            self.ttls[path] = None

    def _unindex(self, path: str, node: Node) -> None:
        o = node.owner
        if o == 0:
            return
        if o > 0:
            eph = self.ephemerals.get(o)
            if eph is not None:
                eph.pop(path, None)
                if not eph:
                    del self.ephemerals[o]
        elif o == CONTAINER_EPHEMERAL_OWNER:
            self.containers.pop(path, None)
        else:
            self.ttls.pop(path, None)

    # ---- primitive changes ----

    def create_node(
        self,
        path: str,
        data: bytes | None,
        acl: list[ACL],
        owner: int,
        parent_cversion: int,
        zxid: int,
        time: int,
        triggers: list[Trigger],
    ) -> Node:
        parent_path, name = split(path)
        parent = self.nodes.get(parent_path)
        if parent is None:
            raise ZkError(Err.NO_NODE, parent_path)
        if path in self.nodes:
            raise ZkError(Err.NODE_EXISTS, path)
        if self._undo is not None:
            self._undo.append(partial(self._undo_create, path, parent, name, parent.cversion, parent.pzxid))
        parent.children[name] = None
        if parent_cversion == -1:
            parent_cversion = parent.cversion + 1
        if parent_cversion > parent.cversion:
            parent.cversion = parent_cversion
            parent.pzxid = zxid
        node = Node(data, _intern_acl(acl), zxid, time, owner)
        self.nodes[path] = node
        self._index(path, node)
        triggers.append((path, Event.NODE_CREATED, node.acl))
        triggers.append((parent_path, Event.NODE_CHILDREN_CHANGED, parent.acl))
        return node

    def delete_node(self, path: str, zxid: int, triggers: list[Trigger]) -> None:
        node = self.nodes.get(path)
        if node is None:
            raise ZkError(Err.NO_NODE, path)
        parent_path, name = split(path)
        parent = self.nodes.get(parent_path)
        if parent is None:
            raise ZkError(Err.NO_NODE, parent_path)
        if self._undo is not None:
            self._undo.append(partial(self._undo_delete, path, node, parent, name, parent.pzxid))
        del self.nodes[path]
        self._unindex(path, node)
        parent.children.pop(name, None)
        if zxid > parent.pzxid:
            parent.pzxid = zxid
        triggers.append((path, Event.NODE_DELETED, node.acl))
        triggers.append((parent_path, Event.NODE_CHILDREN_CHANGED, parent.acl))

    def set_data(
        self, path: str, data: bytes | None, version: int, zxid: int, time: int, triggers: list[Trigger]
    ) -> Node:
        node = self.nodes.get(path)
        if node is None:
            raise ZkError(Err.NO_NODE, path)
        if self._undo is not None:
            self._undo.append(partial(self._undo_set, node, node.data, node.version, node.mzxid, node.mtime))
        node.data = data
        node.version = version
        node.mzxid = zxid
        node.mtime = time
        triggers.append((path, Event.NODE_DATA_CHANGED, node.acl))
        return node

    def set_acl(self, path: str, acl: list[ACL], version: int) -> Node:
        node = self.nodes.get(path)
        if node is None:
            raise ZkError(Err.NO_NODE, path)
        if self._undo is not None:
            self._undo.append(partial(self._undo_acl, node, node.acl, node.aversion))
        node.acl = _intern_acl(acl)
        node.aversion = version
        return node

    def kill_session(self, session_id: int, zxid: int, triggers: list[Trigger]) -> list[str]:
        paths = list(self.ephemerals.get(session_id, {}))
        for p in paths:
            self.delete_node(p, zxid, triggers)
        self.sessions.pop(session_id, None)
        return paths

    # ---- transactions ----

    def apply(self, hdr: TxnHeader, txn: Any, triggers: list[Trigger]) -> Result:
        """Apply one logged transaction; raises nothing for replays of error txns."""
        t = hdr.type
        zxid = hdr.zxid
        if zxid > self.last_zxid:
            self.last_zxid = zxid
        return self._apply_one(t, txn, hdr, triggers)

    def _apply_one(self, t: int, txn: Any, hdr: TxnHeader, triggers: list[Trigger]) -> Result:
        zxid, time = hdr.zxid, hdr.time
        if t in (Op.CREATE, Op.CREATE2):
            owner = hdr.clientId if txn.ephemeral else 0
            node = self.create_node(
                txn.path, txn.data, txn.acl, owner, txn.parentCVersion, zxid, time, triggers
            )
            return Result(t, txn.path, node)
        if t == Op.CREATE_CONTAINER:
            node = self.create_node(
                txn.path,
                txn.data,
                txn.acl,
                CONTAINER_EPHEMERAL_OWNER,
                txn.parentCVersion,
                zxid,
                time,
                triggers,
            )
            return Result(t, txn.path, node)
        if t == Op.CREATE_TTL:
            node = self.create_node(
                txn.path, txn.data, txn.acl, ttl_owner(txn.ttl), txn.parentCVersion, zxid, time, triggers
            )
            return Result(t, txn.path, node)
        if t in (Op.DELETE, Op.DELETE_CONTAINER):
            self.delete_node(txn.path, zxid, triggers)
            return Result(t, txn.path)
        if t == Op.SET_DATA:
            node = self.set_data(txn.path, txn.data, txn.version, zxid, time, triggers)
            return Result(t, txn.path, node)
        if t == Op.SET_ACL:
            node = self.set_acl(txn.path, txn.acl, txn.version)
            return Result(t, txn.path, node)
        if t == Op.CHECK:
            return Result(t, txn.path, self.nodes.get(txn.path))
        if t == Op.CREATE_SESSION:
            self.sessions[hdr.clientId] = txn.timeOut
            return Result(t)
        if t == Op.CLOSE_SESSION:
            self.kill_session(hdr.clientId, zxid, triggers)
            return Result(t)
        if t == Op.ERROR:
            return Result(t, err=txn.err)
        if t == Op.MULTI:
            subs = []
            for sub in txn.txns:
                rec = decode_txn(sub.type, sub.data)
                subs.append(self._apply_one(sub.type, rec, hdr, triggers))
            return Result(t, subs=subs)
        raise ZkError(Err.UNIMPLEMENTED, f"txn type {t}")

    # ---- snapshot payload (upstream FileSnap layout: sessions, ACL cache, nodes, "/") ----

    def serialize(self) -> bytes:
        w = Writer()
        w.int(len(self.sessions))
        for sid, to in self.sessions.items():
            w.long(sid)
            w.int(to)
        refs: dict[tuple[tuple[int, str, str], ...], int] = {}
        node_refs: list[tuple[str, Node, int]] = []
        for path, node in self.walk():
            key = _acl_key(node.acl)
            ref = refs.get(key)
            if ref is None:
                ref = refs[key] = len(refs) + 1
            node_refs.append((path, node, ref))
        w.int(len(refs))
        for key, ref in refs.items():
            w.long(ref)
            w.int(len(key))
            for perms, scheme, ident in key:
                w.int(perms)
                w.ustring(scheme)
                w.ustring(ident)
        for path, node, ref in node_refs:
            w.ustring("" if path == "/" else path)
            w.buffer(node.data)
            w.long(ref)
            w.buf += _STAT_PERSISTED.pack(
                node.czxid,
                node.mzxid,
                node.ctime,
                node.mtime,
                node.version,
                node.cversion,
                node.aversion,
                node.owner,
                node.pzxid,
            )
        w.ustring("/")
        return w.getvalue()

    @classmethod
    def deserialize(cls, payload: bytes, zxid: int) -> DataTree:
        r = Reader(payload)
        tree = cls()
        tree.nodes = {}
        for _ in range(r.int()):
            sid = r.long()
            tree.sessions[sid] = r.int()
        acls: dict[int, list[ACL]] = {}
        for _ in range(r.int()):
            ref = r.long()
            acls[ref] = _intern_acl(r.vector(ACL.read))
        while True:
            path = r.ustring()
            if path == "/":
                break
            data = r.buffer()
            ref = r.long()
            sp = StatPersisted.read(r)
            node = Node(data, acls.get(ref, list(_OPEN)) if ref != -1 else list(_OPEN))
            node.czxid, node.mzxid, node.ctime, node.mtime = sp.czxid, sp.mzxid, sp.ctime, sp.mtime
            node.version, node.cversion, node.aversion = sp.version, sp.cversion, sp.aversion
            node.owner, node.pzxid = sp.ephemeralOwner, sp.pzxid
            if path == "":
                path = "/"
            else:
                parent_path, name = split(path)
                parent = tree.nodes.get(parent_path)
                if parent is None:
                    raise ValueError(f"snapshot: {path} precedes its parent")
                parent.children[name] = None
            tree.nodes[path] = node
            tree._index(path, node)
        tree.last_zxid = zxid
        return tree


_STAT_PERSISTED = struct.Struct("!qqqqiiiqq")
_OPEN = OPEN_ACL_UNSAFE
_ACL_CACHE: dict[tuple[tuple[int, str, str], ...], list[ACL]] = {}


def _acl_key(acl: list[ACL]) -> tuple[tuple[int, str, str], ...]:
    return tuple((a.perms, a.id.scheme, a.id.id) for a in acl)


def _intern_acl(acl: list[ACL]) -> list[ACL]:
    """Share one list per distinct ACL, as upstream's reference-counted ACL cache does."""
    key = _acl_key(acl)
    cached = _ACL_CACHE.get(key)
    if cached is None:
        if len(_ACL_CACHE) < 100_000:
            _ACL_CACHE[key] = list(acl)
        return list(acl)
    return cached


TXN_RECORDS: dict[int, Any] = {
    Op.CREATE: CreateTxn,
    Op.CREATE2: CreateTxn,
    Op.CREATE_CONTAINER: CreateContainerTxn,
    Op.CREATE_TTL: CreateTTLTxn,
    Op.DELETE: DeleteTxn,
    Op.DELETE_CONTAINER: DeleteTxn,
    Op.SET_DATA: SetDataTxn,
    Op.SET_ACL: SetACLTxn,
    Op.CHECK: CheckVersionTxn,
    Op.CREATE_SESSION: CreateSessionTxn,
    Op.CLOSE_SESSION: CloseSessionTxn,
    Op.ERROR: ErrorTxn,
    Op.MULTI: MultiTxn,
}


def decode_txn(t: int, data: bytes | None) -> Any:
    cls = TXN_RECORDS.get(t)
    if cls is None:
        raise ValueError(f"unknown txn type {t}")
    if not data and t == Op.CLOSE_SESSION:
        return CloseSessionTxn([])
    return cls.from_bytes(data or b"")


def encode_record(hdr: TxnHeader, txn: Any) -> bytes:
    """Log record bytes: TxnHeader then the txn body (FileTxnLog's serialised Txn)."""
    w = Writer()
    hdr.write(w)
    if txn is not None:
        txn.write(w)
    return w.getvalue()


def decode_record(data: bytes) -> tuple[TxnHeader, Any]:
    r = Reader(data)
    hdr = TxnHeader.read(r)
    rest = bytes(r.buf[r.pos :])
    return hdr, decode_txn(hdr.type, rest)


def sub_txn(t: int, rec: Any) -> Txn:
    return Txn(t, rec.to_bytes())
