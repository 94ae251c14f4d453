"""The engine + data tree against a simple model, over random operation sequences.

Also checks that replaying the transaction log, and a snapshot round trip, rebuild exactly
the tree the clients saw: recovery must not drift from live behaviour.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from zk_py.datatree import DataTree, decode_record
from zk_py.proto import (
    OPEN_ACL_UNSAFE,
    CreateRequest,
    DeleteRequest,
    Err,
    Op,
    PathWatchRequest,
    SetDataRequest,
)

from .enginekit import Kit

PATHS = ["/a", "/b", "/a/x", "/a/y", "/b/z", "/a/x/q"]


@dataclass
class MNode:
    data: bytes
    version: int = 0
    creates: int = 0  # child creations (upstream's stored cversion)
    children: set[str] = field(default_factory=set)
    czxid: int = 0
    mzxid: int = 0
    pzxid: int = 0


class Model:
    """What ZooKeeper promises, written as plainly as possible."""

    def __init__(self) -> None:
        self.nodes = {"/": MNode(b""), "/zookeeper": MNode(b"")}
        self.nodes["/"].children = {"zookeeper"}
        self.zxid = 1  # the session's createSession txn

    @staticmethod
    def parent(p: str) -> str:
        return p.rsplit("/", 1)[0] or "/"

    def create(self, path: str, data: bytes, seq: bool) -> tuple[int, str]:
        self.zxid += 1
        parent = self.nodes.get(self.parent(path))
        if parent is None:
            return Err.NO_NODE, ""
        if seq:
            path = f"{path}{parent.creates:010d}"
        if path in self.nodes:
            return Err.NODE_EXISTS, ""
        self.nodes[path] = MNode(data, czxid=self.zxid, mzxid=self.zxid, pzxid=self.zxid)
        parent.children.add(path.rsplit("/", 1)[1])
        parent.creates += 1
        parent.pzxid = self.zxid
        return 0, path

    def delete(self, path: str, version: int) -> int:
        self.zxid += 1
        node = self.nodes.get(path)
        if node is None:
            return Err.NO_NODE
        if version != -1 and version != node.version:
            return Err.BAD_VERSION
        if node.children:
            return Err.NOT_EMPTY
        del self.nodes[path]
        parent = self.nodes[self.parent(path)]
        parent.children.discard(path.rsplit("/", 1)[1])
        parent.pzxid = self.zxid
        return 0

    def set(self, path: str, data: bytes, version: int) -> int:
        self.zxid += 1
        node = self.nodes.get(path)
        if node is None:
            return Err.NO_NODE
        if version != -1 and version != node.version:
            return Err.BAD_VERSION
        node.data, node.version, node.mzxid = data, node.version + 1, self.zxid
        return 0


ops = st.lists(
    st.one_of(
        st.tuples(st.just("create"), st.sampled_from(PATHS), st.binary(max_size=8), st.booleans()),
        st.tuples(st.just("delete"), st.sampled_from(PATHS), st.sampled_from([-1, 0, 1])),
        st.tuples(st.just("set"), st.sampled_from(PATHS), st.binary(max_size=8), st.sampled_from([-1, 0, 1])),
    ),
    max_size=60,
)


def tree_view(tree: DataTree) -> dict[str, tuple[object, ...]]:
    return {p: (n.data, n.stat_tuple(), tuple(sorted(n.children))) for p, n in tree.nodes.items()}


@settings(max_examples=150, deadline=None)
@given(ops)
def test_engine_matches_model(seq: list[tuple[object, ...]]) -> None:
    kit = Kit()
    c = kit.session()
    model = Model()
    for i, op in enumerate(seq, 1):
        if op[0] == "create":
            _, path, data, seq_flag = op
            err, zxid, body, _ = kit.call(
                c, i, Op.CREATE, CreateRequest(path, data, OPEN_ACL_UNSAFE, 2 if seq_flag else 0)
            )
            want_err, want_path = model.create(path, data, bool(seq_flag))
            assert err == want_err, op
            if not err:
                assert body.ustring() == want_path
        elif op[0] == "delete":
            _, path, version = op
            err, zxid, _, _ = kit.call(c, i, Op.DELETE, DeleteRequest(path, version))
            assert err == model.delete(path, version), op
        else:
            _, path, data, version = op
            err, zxid, _, _ = kit.call(c, i, Op.SET_DATA, SetDataRequest(path, data, version))
            assert err == model.set(path, data, version), op
        assert zxid == model.zxid, "every write, failed or not, takes one zxid"
    tree = kit.engine.tree
    for path, m in model.nodes.items():
        node = tree.get(path)
        assert node is not None, path
        if path in ("/", "/zookeeper"):
            continue
        st_ = node.stat()
        assert node.data == m.data
        assert (st_.version, st_.czxid, st_.mzxid, st_.pzxid) == (m.version, m.czxid, m.mzxid, m.pzxid)
        assert st_.numChildren == len(m.children)
        assert st_.cversion == 2 * m.creates - len(m.children)
        assert set(node.children) == m.children
    assert {p for p in tree.nodes if not p.startswith("/zookeeper")} == {
        p for p in model.nodes if p != "/zookeeper"
    }

    # Recovery paths rebuild the same tree: replaying the log, and a snapshot round trip.
    replayed = DataTree()
    for _, rec in kit.records:
        hdr, txn = decode_record(rec)
        replayed.apply(hdr, txn, [])
    assert tree_view(replayed) == tree_view(tree)
    assert replayed.last_zxid == tree.last_zxid
    restored = DataTree.deserialize(tree.serialize(), tree.last_zxid)
    assert tree_view(restored) == tree_view(tree)
    assert restored.sessions == tree.sessions


def test_fresh_tree_matches_apache() -> None:
    """Stats of the system nodes as a fresh Apache 3.8.0 reports them (reference §7.3)."""
    kit = Kit()
    c = kit.session()
    err, _, body, _ = kit.call(c, 1, Op.EXISTS, PathWatchRequest("/", False))
    assert err == 0
    from zk_py.proto import Stat

    assert Stat.read(body) == Stat(0, 0, 0, 0, 0, -1, 0, 0, 0, 1, 0)
    assert kit.engine.tree.node_count() == 5
    assert kit.engine.tree.approximate_data_size() == 44
    err, _, body, _ = kit.call(c, 2, Op.GET_DATA, PathWatchRequest("/zookeeper/config", False))
    assert err == 0 and body.buffer() == b""
    assert Stat.read(body).aversion == -1


def test_sequence_counter_survives_deletes() -> None:
    """After creating q-0, q-1 and deleting q-0, cversion is 3 and the next name is ...2 (reference §7.2)."""
    kit = Kit()
    c = kit.session()
    kit.call(c, 1, Op.CREATE, CreateRequest("/p", b"", OPEN_ACL_UNSAFE, 0))
    for i in range(2):
        kit.call(c, 2 + i, Op.CREATE, CreateRequest("/p/q-", b"", OPEN_ACL_UNSAFE, 2))
    kit.call(c, 5, Op.DELETE, DeleteRequest("/p/q-0000000000", -1))
    node = kit.engine.tree.get("/p")
    assert node is not None and node.stat().cversion == 3
    _err, _, body, _ = kit.call(c, 6, Op.CREATE, CreateRequest("/p/q-", b"", OPEN_ACL_UNSAFE, 2))
    assert body.ustring() == "/p/q-0000000002"


multi_ops = st.lists(
    st.one_of(
        st.tuples(st.just(Op.CREATE), st.sampled_from(PATHS), st.booleans()),
        st.tuples(st.just(Op.DELETE), st.sampled_from(PATHS), st.sampled_from([-1, 0])),
        st.tuples(st.just(Op.SET_DATA), st.sampled_from(PATHS), st.sampled_from([-1, 0, 1])),
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=200, deadline=None)
@given(setup=ops, multi=multi_ops)
def test_multi_is_all_or_nothing(setup: list[tuple[object, ...]], multi: list[tuple[object, ...]]) -> None:
    """A failed multi leaves every node (stats, data, children, indexes) exactly as before."""
    from zk_py.jute import Writer
    from zk_py.proto import MultiHeader

    kit = Kit()
    c = kit.session()
    xid = 0
    for op in setup:
        xid += 1
        if op[0] == "create":
            kit.call(c, xid, Op.CREATE, CreateRequest(op[1], op[2], OPEN_ACL_UNSAFE, 2 if op[3] else 1))
        elif op[0] == "delete":
            kit.call(c, xid, Op.DELETE, DeleteRequest(op[1], op[2]))
        else:
            kit.call(c, xid, Op.SET_DATA, SetDataRequest(op[1], op[2], op[3]))
    tree = kit.engine.tree
    before = tree_view(tree)
    eph_before = {k: dict(v) for k, v in tree.ephemerals.items()}
    w = Writer()
    for t, path, arg in multi:
        MultiHeader(t, False, -1).write(w)
        if t == Op.CREATE:
            CreateRequest(path, b"m", OPEN_ACL_UNSAFE, 2 if arg else 0).write(w)
        elif t == Op.DELETE:
            DeleteRequest(path, arg).write(w)
        else:
            SetDataRequest(path, b"m", arg).write(w)
    MultiHeader(-1, True, -1).write(w)

    class Raw:
        def to_bytes(self) -> bytes:
            return w.getvalue()

    err, _, body, _ = kit.call(c, xid + 1, Op.MULTI, Raw())
    assert err == 0
    first = MultiHeader.read(body)
    if first.type == -1:  # failed: nothing changed
        assert tree_view(tree) == before
        assert {k: dict(v) for k, v in tree.ephemerals.items()} == eph_before
    # either way the log replays to the live tree
    replayed = DataTree()
    for _, rec in kit.records:
        hdr, txn = decode_record(rec)
        replayed.apply(hdr, txn, [])
    assert tree_view(replayed) == tree_view(tree)
