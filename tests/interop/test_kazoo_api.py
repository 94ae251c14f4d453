"""The real kazoo 2.11 client against zk_py and Apache ZooKeeper 3.8.0: core API.

Every test runs against both servers through the parametrised ``zk_server`` fixture and asserts the
same observable behaviour, so a difference means zk_py is not a drop-in replacement.  Waits are
bounded (queues/events with timeouts); nothing asserts how fast the server is.
"""

from __future__ import annotations

import queue
import re
import socket
import struct
import threading
import uuid
from typing import TYPE_CHECKING

import pytest
from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import (
    BadArgumentsError,
    BadVersionError,
    ConnectionLoss,
    InvalidACLError,
    NoAuthError,
    NoChildrenForEphemeralsError,
    NodeExistsError,
    NoNodeError,
    NotEmptyError,
    RolledBackError,
    RuntimeInconsistency,
)
from kazoo.protocol.states import EventType, WatchedEvent, ZnodeStat
from kazoo.security import ACL, OPEN_ACL_UNSAFE, Id, Permissions, make_acl, make_digest_acl

if TYPE_CHECKING:
    from tests.support.servers import ZkServer

from tests.support.clients import WAIT, ClientFactory

# --------------------------------------------------------------------------- fixtures and helpers


@pytest.fixture
def base(zk: KazooClient) -> str:
    """A fresh parent node per test, so tests never see each other's nodes or counters."""
    return zk.create(f"/kapi-{uuid.uuid4().hex[:10]}")


class Events:
    """Collects watch callbacks (they run on kazoo's single callback thread) for bounded waits."""

    def __init__(self) -> None:
        self.q: queue.Queue[WatchedEvent] = queue.Queue()

    def __call__(self, event: WatchedEvent) -> None:
        self.q.put(event)

    def next(self, timeout: float = WAIT) -> WatchedEvent:
        try:
            return self.q.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no watch event within {timeout}s") from None

    def pending(self) -> list[WatchedEvent]:
        out = []
        while True:
            try:
                out.append(self.q.get_nowait())
            except queue.Empty:
                return out


def _barrier_callbacks(zk: KazooClient, base: str) -> None:
    """Return once every watch callback queued before this call has run.

    kazoo runs watch callbacks in arrival order on one thread, and the server sends a notification
    before the reply that reflects it, so firing a fresh sentinel watch drains everything earlier.
    """
    sentinel = Events()
    path = f"{base}/sentinel-{uuid.uuid4().hex[:6]}"
    assert zk.exists(path, watch=sentinel) is None
    zk.create(path)
    assert sentinel.next().type == EventType.CREATED
    zk.delete(path)


def _srvr(zk_server: ZkServer) -> dict[str, str]:
    out = zk_server.four_letter("srvr")
    return dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)


# --------------------------------------------------------------------------- a hand-rolled session


def _ustr(s: str) -> bytes:
    b = s.encode()
    return struct.pack("!i", len(b)) + b


def _buf(b: bytes) -> bytes:
    return struct.pack("!i", len(b)) + b


class RawSession:
    """A minimal wire-level client: the only way to vanish without sending closeSession."""

    def __init__(self, hosts: str, timeout_ms: int, session_id: int = 0, passwd: bytes = b"\0" * 16) -> None:
        host, port = hosts.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=WAIT)
        self.xid = 0
        self._send(struct.pack("!iqiq", 0, 0, timeout_ms, session_id) + _buf(passwd) + b"\x00")
        resp = self._recv()
        _proto, self.timeout_ms, self.session_id = struct.unpack_from("!iiq", resp)
        (n,) = struct.unpack_from("!i", resp, 16)
        self.passwd = resp[20 : 20 + n]

    def _send(self, payload: bytes) -> None:
        self.sock.sendall(struct.pack("!i", len(payload)) + payload)

    def _recv_exact(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise ConnectionError("server closed the connection")
            out += chunk
        return out

    def _recv(self) -> bytes:
        (n,) = struct.unpack("!i", self._recv_exact(4))
        return self._recv_exact(n)

    def create(self, path: str, data: bytes = b"", flags: int = 1) -> tuple[int, str]:
        """create with world:anyone ALL; returns (err, created path)."""
        self.xid += 1
        acl = struct.pack("!ii", 1, Permissions.ALL) + _ustr("world") + _ustr("anyone")
        self._send(
            struct.pack("!ii", self.xid, 1) + _ustr(path) + _buf(data) + acl + struct.pack("!i", flags)
        )
        resp = self._recv()
        xid, _zxid, err = struct.unpack_from("!iqi", resp)
        assert xid == self.xid
        if err:
            return err, ""
        (n,) = struct.unpack_from("!i", resp, 16)
        return 0, resp[20 : 20 + n].decode()

    def vanish(self) -> None:
        """Drop the TCP connection without closeSession: the session lives on until it expires."""
        self.sock.close()


# --------------------------------------------------------------------------- create


def test_create_persistent_stat_and_errors(zk: KazooClient, base: str) -> None:
    path = zk.create(f"{base}/a", b"hello")
    assert path == f"{base}/a"
    data, stat = zk.get(path)
    assert data == b"hello"
    assert stat.version == 0 and stat.cversion == 0 and stat.aversion == 0
    assert stat.dataLength == 5 and stat.numChildren == 0 and stat.ephemeralOwner == 0
    assert stat.czxid == stat.mzxid == stat.pzxid and stat.czxid > 0
    assert stat.ctime == stat.mtime and stat.ctime > 1_600_000_000_000  # epoch milliseconds
    with pytest.raises(NodeExistsError):
        zk.create(path, b"again")
    assert zk.get(path)[0] == b"hello"
    with pytest.raises(NoNodeError):
        zk.create(f"{base}/missing/child")
    assert zk.create(f"{base}/empty") == f"{base}/empty"
    assert zk.get(f"{base}/empty")[0] == b""


def test_create_makepath_builds_missing_parents(zk: KazooClient, base: str) -> None:
    path = zk.create(f"{base}/x/y/z", b"leaf", makepath=True)
    assert path == f"{base}/x/y/z"
    assert zk.get(path)[0] == b"leaf"
    assert zk.get(f"{base}/x")[0] == b"" and zk.get_children(f"{base}/x") == ["y"]
    assert zk.get_children(f"{base}/x/y") == ["z"]
    zk.ensure_path(f"{base}/x/y/z")  # idempotent on an existing path
    assert zk.get(path)[0] == b"leaf"


def test_create_ephemeral_owner_and_no_children(zk: KazooClient, base: str) -> None:
    session_id = zk.client_id[0]
    path = zk.create(f"{base}/eph", b"e", ephemeral=True)
    stat = zk.exists(path)
    assert stat is not None and stat.ephemeralOwner == session_id != 0
    assert zk.exists(base).ephemeralOwner == 0
    with pytest.raises(NoChildrenForEphemeralsError):
        zk.create(f"{path}/child")
    assert zk.get_children(path) == []


def test_sequential_names_share_one_counter_per_parent(
    zk: KazooClient, make_client: ClientFactory, base: str
) -> None:
    """Suffix = number of child creations so far (%010d); deletes do not advance it."""
    p = zk.create(f"{base}/seq")
    assert zk.create(f"{p}/s-", b"0", sequence=True) == f"{p}/s-0000000000"
    assert zk.create(f"{p}/e-", b"1", sequence=True, ephemeral=True) == f"{p}/e-0000000001"
    assert zk.create(f"{p}/s-", b"2", sequence=True) == f"{p}/s-0000000002"
    zk.create(f"{p}/plain")  # a non-sequential create also counts
    assert zk.create(f"{p}/", sequence=True) == f"{p}/0000000004"
    zk.delete(f"{p}/s-0000000000")
    zk.delete(f"{p}/0000000004")
    assert zk.create(f"{p}/s-", sequence=True) == f"{p}/s-0000000005"
    assert sorted(zk.get_children(p)) == ["e-0000000001", "plain", "s-0000000002", "s-0000000005"]
    # another client's creates advance the same counter
    assert make_client().create(f"{p}/o-", sequence=True) == f"{p}/o-0000000006"
    assert zk.create(f"{p}/s-", sequence=True) == f"{p}/s-0000000007"
    # separate parents have separate counters
    q = zk.create(f"{base}/seq2")
    assert zk.create(f"{q}/s-", sequence=True) == f"{q}/s-0000000000"


def test_cversion_and_sequence_after_deletes(zk: KazooClient, base: str) -> None:
    p = zk.create(f"{base}/cv")
    assert zk.create(f"{p}/q-", sequence=True) == f"{p}/q-0000000000"
    assert zk.create(f"{p}/q-", sequence=True) == f"{p}/q-0000000001"
    assert zk.exists(p).cversion == 2
    zk.delete(f"{p}/q-0000000000")
    stat = zk.exists(p)
    assert stat.cversion == 3 and stat.numChildren == 1
    assert zk.create(f"{p}/q-", sequence=True) == f"{p}/q-0000000002"
    assert zk.exists(p).cversion == 4


def test_create_include_data_returns_stat(zk: KazooClient, base: str) -> None:
    path, stat = zk.create(f"{base}/c2", b"abc", include_data=True)
    assert path == f"{base}/c2"
    assert isinstance(stat, ZnodeStat)
    assert stat == zk.exists(path)
    assert stat.version == 0 and stat.dataLength == 3 and stat.ephemeralOwner == 0
    path2, stat2 = zk.create(f"{base}/c2-", b"", include_data=True, sequence=True, ephemeral=True)
    assert path2 == f"{base}/c2-0000000001"
    assert stat2.ephemeralOwner == zk.client_id[0]
    assert stat2.czxid > stat.czxid
    with pytest.raises(NodeExistsError):
        zk.create(path, include_data=True)


# --------------------------------------------------------------------------- get / set / exists / delete


def test_set_with_versions(zk: KazooClient, base: str) -> None:
    path = zk.create(f"{base}/v", b"v0")
    created = zk.exists(path)
    stat = zk.set(path, b"v1")
    assert stat.version == 1 and stat.dataLength == 2 and stat.mzxid > created.mzxid
    assert stat.czxid == created.czxid and stat.mtime >= created.mtime
    with pytest.raises(BadVersionError):
        zk.set(path, b"stale", version=0)
    assert zk.get(path) == (b"v1", stat)
    stat2 = zk.set(path, b"v2-longer", version=1)
    assert stat2.version == 2 and stat2.dataLength == 9
    stat3 = zk.set(path, b"", version=-1)
    assert stat3.version == 3 and stat3.dataLength == 0
    assert zk.get(path)[0] == b""
    with pytest.raises(NoNodeError):
        zk.set(f"{base}/nope", b"x")


def test_exists(zk: KazooClient, base: str) -> None:
    assert zk.exists(f"{base}/nope") is None
    assert zk.exists(f"{base}/nope/deeper") is None
    stat = zk.exists(base)
    assert isinstance(stat, ZnodeStat) and stat.numChildren == 0
    root = zk.exists("/")
    assert root is not None and root.numChildren >= 2  # /zookeeper and our base
    assert "zookeeper" in zk.get_children("/")


def test_system_nodes(zk: KazooClient) -> None:
    """The /zookeeper subtree exists from the start, with 3.8.0's reported stats and ACLs."""
    assert sorted(zk.get_children("/zookeeper")) == ["config", "quota"]
    stat = zk.exists("/zookeeper")
    assert (stat.numChildren, stat.cversion, stat.czxid, stat.ephemeralOwner) == (2, -2, 0, 0)
    data, cfg = zk.get("/zookeeper/config")
    assert data == b"" and (cfg.aversion, cfg.version, cfg.czxid) == (-1, 0, 0)
    acls, _ = zk.get_acls("/zookeeper/config")
    assert [(a.perms, a.id.scheme, a.id.id) for a in acls] == [(Permissions.READ, "world", "anyone")]
    with pytest.raises(NoAuthError):
        zk.set("/zookeeper/config", b"server.1=x")
    assert zk.exists("/zookeeper/quota").numChildren == 0


def test_delete_versions_not_empty_and_recursive(zk: KazooClient, base: str) -> None:
    zk.create(f"{base}/t/a/b", b"1", makepath=True)
    zk.create(f"{base}/t/c", b"2")
    with pytest.raises(NotEmptyError):
        zk.delete(f"{base}/t")
    zk.set(f"{base}/t/c", b"3")
    with pytest.raises(BadVersionError):
        zk.delete(f"{base}/t/c", version=0)
    zk.delete(f"{base}/t/c", version=1)
    assert zk.exists(f"{base}/t/c") is None
    with pytest.raises(NoNodeError):
        zk.delete(f"{base}/t/c")
    zk.delete(f"{base}/t", recursive=True)
    assert zk.exists(f"{base}/t") is None
    assert zk.get_children(base) == []


def test_get_children_and_stat_fields(zk: KazooClient, base: str) -> None:
    p = zk.create(f"{base}/kids")
    assert zk.get_children(p) == []
    made = [zk.create(f"{p}/{name}", name.encode()) for name in ("b", "a", "c")]
    assert sorted(zk.get_children(p)) == ["a", "b", "c"]
    children, stat = zk.get_children(p, include_data=True)
    assert sorted(children) == ["a", "b", "c"]
    assert stat.numChildren == 3 and stat.cversion == 3
    last = zk.exists(made[-1])
    assert stat.pzxid == last.czxid  # pzxid = zxid of the last child change
    assert stat.mzxid == stat.czxid  # child changes do not touch mzxid/version
    assert stat.version == 0 and stat.dataLength == 0
    zk.delete(f"{p}/a")
    after = zk.exists(p)
    assert after.pzxid > stat.pzxid and after.numChildren == 2 and after.cversion == 4
    assert after.mzxid == stat.mzxid
    with pytest.raises(NoNodeError):
        zk.get_children(f"{base}/nope")
    with pytest.raises(NoNodeError):
        zk.get(f"{base}/nope")


# --------------------------------------------------------------------------- ACLs and auth


def test_get_and_set_acls(make_client: ClientFactory, zk: KazooClient, base: str) -> None:
    path = zk.create(f"{base}/acl", b"data")
    acls, stat = zk.get_acls(path)
    assert list(acls) == list(OPEN_ACL_UNSAFE) and stat.aversion == 0
    stat = zk.set_acls(path, [make_acl("world", "anyone", read=True, admin=True)])
    assert stat.aversion == 1 and stat.version == 0
    acls, stat = zk.get_acls(path)
    assert [(a.perms, a.id.scheme, a.id.id) for a in acls] == [
        (Permissions.READ | Permissions.ADMIN, "world", "anyone")
    ]
    assert stat.aversion == 1
    with pytest.raises(BadVersionError):
        zk.set_acls(path, OPEN_ACL_UNSAFE, version=0)
    other = make_client()
    assert other.get(path)[0] == b"data"
    with pytest.raises(NoAuthError):
        other.set(path, b"no")
    with pytest.raises(NoAuthError):
        other.create(f"{path}/child")  # CREATE on the parent governs children
    assert (
        zk.set_acls(path, [make_acl("world", "anyone", read=True, create=True, admin=True)], 1).aversion == 2
    )
    assert other.create(f"{path}/child") == f"{path}/child"
    with pytest.raises(NoAuthError):
        other.delete(f"{path}/child")  # ... and DELETE on the parent governs removing them
    assert zk.exists(f"{path}/child") is not None
    assert zk.set_acls(path, [make_acl("world", "anyone", read=True)]).aversion == 3
    with pytest.raises(NoAuthError):
        zk.set_acls(path, OPEN_ACL_UNSAFE)  # ADMIN is gone for everyone
    assert zk.get(path)[0] == b"data"
    assert zk.get_acls(path)[1].aversion == 3


def test_digest_auth(make_client: ClientFactory, zk: KazooClient, base: str) -> None:
    owner = make_client()
    owner.add_auth("digest", "alice:secret")
    acl = [make_digest_acl("alice", "secret", all=True)]
    path = owner.create(f"{base}/private", b"s3cret", acl=acl)
    acls, _ = owner.get_acls(path)
    assert [(a.perms, a.id.scheme, a.id.id) for a in acls] == [(Permissions.ALL, "digest", acl[0].id.id)]
    assert owner.get(path)[0] == b"s3cret"
    with pytest.raises(NoAuthError):
        zk.get(path)
    with pytest.raises(NoAuthError):
        zk.set(path, b"x")
    assert zk.exists(path) is not None  # exists needs no permission
    wrong = make_client()
    wrong.add_auth("digest", "alice:wrong")
    with pytest.raises(NoAuthError):
        wrong.get(path)
    friend = make_client(auth_data=[("digest", "alice:secret")])
    assert friend.get(path)[0] == b"s3cret"
    assert friend.set(path, b"shared").version == 1
    assert owner.get(path)[0] == b"shared"


def test_auth_scheme_acl_expands_to_creator_identity(make_client: ClientFactory, base: str) -> None:
    owner = make_client(auth_data=[("digest", "bob:pw")])
    path = owner.create(f"{base}/mine", b"m", acl=[ACL(Permissions.ALL, Id("auth", ""))])
    acls, _ = owner.get_acls(path)
    expected = make_digest_acl("bob", "pw", all=True)
    assert [(a.perms, a.id.scheme, a.id.id) for a in acls] == [(Permissions.ALL, "digest", expected.id.id)]
    stranger = make_client()
    with pytest.raises(NoAuthError):
        stranger.get(path)


def test_empty_acl_is_invalid(zk: KazooClient, base: str) -> None:
    """``create(acl=[])`` falls back to the default ACL; ``create_async`` sends the empty list as is."""
    with pytest.raises(InvalidACLError):
        zk.create_async(f"{base}/noacl", b"", acl=[]).get(timeout=WAIT)
    assert zk.exists(f"{base}/noacl") is None
    path = zk.create(f"{base}/acl-ok")
    with pytest.raises(InvalidACLError):
        zk.set_acls(path, [])
    assert list(zk.get_acls(path)[0]) == list(OPEN_ACL_UNSAFE)


# --------------------------------------------------------------------------- sessions


def test_ephemeral_removed_when_session_closes(
    make_client: ClientFactory, zk: KazooClient, base: str
) -> None:
    owner = make_client()
    eph = owner.create(f"{base}/worker", b"w", ephemeral=True)
    seq = owner.create(f"{base}/w-", ephemeral=True, sequence=True)
    deleted, children = Events(), Events()
    assert zk.exists(eph, watch=deleted).ephemeralOwner == owner.client_id[0]
    assert sorted(zk.get_children(base, watch=children)) == sorted(["worker", seq.rsplit("/", 1)[1]])
    owner.stop()
    ev = deleted.next()
    assert (ev.type, ev.path) == (EventType.DELETED, eph)
    ev = children.next()
    assert (ev.type, ev.path) == (EventType.CHILD, base)
    assert zk.exists(eph) is None and zk.exists(seq) is None
    assert zk.get_children(base) == []


def _conf(zk_server: ZkServer) -> dict[str, str]:
    out = zk_server.four_letter("conf")
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def test_session_timeout_is_clamped_to_server_bounds(zk_server: ZkServer) -> None:
    conf = _conf(zk_server)
    low, high = int(conf["minSessionTimeout"]), int(conf["maxSessionTimeout"])
    assert (low, high) == (2 * int(conf["tickTime"]), 20 * int(conf["tickTime"]))
    for asked, expected in ((1, low), (low + 1234, low + 1234), (10 * high, high)):
        raw = RawSession(zk_server.hosts, timeout_ms=asked)
        try:
            assert raw.timeout_ms == expected
        finally:
            raw.vanish()


def test_session_expiry_removes_ephemerals(
    zk_server: ZkServer, make_client: ClientFactory, zk: KazooClient, base: str
) -> None:
    raw = RawSession(zk_server.hosts, timeout_ms=1000)  # clamped up to minSessionTimeout
    assert raw.session_id != 0 and len(raw.passwd) == 16
    assert raw.timeout_ms == int(_conf(zk_server)["minSessionTimeout"])
    err, path = raw.create(f"{base}/lease", b"x", flags=1)
    assert err == 0 and path == f"{base}/lease"
    deleted = Events()
    raw.vanish()
    stat = zk.exists(path, watch=deleted)
    assert stat is not None and stat.ephemeralOwner == raw.session_id  # disconnect alone keeps it
    limit = raw.timeout_ms / 1000 + 10  # expiry lands within timeout + one tick; generous bound
    ev = deleted.next(timeout=limit)
    assert (ev.type, ev.path) == (EventType.DELETED, path)
    assert zk.exists(path) is None
    # the expired session cannot be resumed: kazoo is handed a new one
    late = make_client(client_id=(raw.session_id, raw.passwd))
    assert late.client_id[0] not in (0, raw.session_id)


def test_session_resume_with_client_id(
    zk_server: ZkServer, make_client: ClientFactory, zk: KazooClient, base: str
) -> None:
    raw = RawSession(zk_server.hosts, timeout_ms=30000)
    err, path = raw.create(f"{base}/held", b"h", flags=1)
    assert err == 0
    raw.vanish()
    resumed = make_client(client_id=(raw.session_id, raw.passwd))
    assert resumed.client_id[0] == raw.session_id
    assert resumed.exists(path).ephemeralOwner == raw.session_id
    assert resumed.create(f"{base}/more", ephemeral=True)
    resumed.stop()  # closeSession ends the resumed session and all its ephemerals
    assert zk.exists(path) is None and zk.exists(f"{base}/more") is None


def test_wrong_password_or_expired_session_gets_a_new_session(
    zk_server: ZkServer, make_client: ClientFactory, zk: KazooClient, base: str
) -> None:
    raw = RawSession(zk_server.hosts, timeout_ms=30000)
    err, path = raw.create(f"{base}/kept", flags=1)
    assert err == 0
    bad = bytes(b ^ 0xFF for b in raw.passwd)
    probe = RawSession(zk_server.hosts, timeout_ms=30000, session_id=raw.session_id, passwd=bad)
    assert (probe.timeout_ms, probe.session_id, probe.passwd) == (0, 0, b"\0" * 16)
    probe.sock.close()
    # kazoo treats the refusal as an expired session and carries on with a brand-new one
    client = make_client(client_id=(raw.session_id, bad))
    assert client.client_id[0] not in (0, raw.session_id)
    assert client.exists(path).ephemeralOwner == raw.session_id
    # the refused attempt did not hurt the real session
    assert zk.exists(path).ephemeralOwner == raw.session_id
    raw.vanish()


# --------------------------------------------------------------------------- watches


def test_data_watch_is_one_shot(zk: KazooClient, make_client: ClientFactory, base: str) -> None:
    writer = make_client()
    path = zk.create(f"{base}/w", b"0")
    ev_data = Events()
    assert zk.get(path, watch=ev_data)[0] == b"0"
    writer.set(path, b"1")
    ev = ev_data.next()
    assert (ev.type, ev.path, ev.state) == (EventType.CHANGED, path, "CONNECTED")
    writer.set(path, b"2")  # the watch was consumed: no second event
    _barrier_callbacks(zk, base)
    assert ev_data.pending() == []
    # re-arming twice on one connection still yields one event
    zk.get(path, watch=ev_data)
    zk.exists(path, watch=ev_data)
    writer.delete(path)
    ev = ev_data.next()
    assert (ev.type, ev.path) == (EventType.DELETED, path)
    _barrier_callbacks(zk, base)
    assert ev_data.pending() == []


def test_exists_watch_on_missing_node_fires_created(
    zk: KazooClient, make_client: ClientFactory, base: str
) -> None:
    writer = make_client()
    path = f"{base}/later"
    created = Events()
    assert zk.exists(path, watch=created) is None
    writer.create(path, b"now")
    ev = created.next()
    assert (ev.type, ev.path) == (EventType.CREATED, path)
    # getData on a missing node sets no watch
    unset = Events()
    with pytest.raises(NoNodeError):
        zk.get(f"{base}/never", watch=unset)
    writer.create(f"{base}/never")
    _barrier_callbacks(zk, base)
    assert unset.pending() == []


def test_children_watch(zk: KazooClient, make_client: ClientFactory, base: str) -> None:
    writer = make_client()
    p = zk.create(f"{base}/dir")
    kids = Events()
    assert zk.get_children(p, watch=kids) == []
    writer.create(f"{p}/one")
    ev = kids.next()
    assert (ev.type, ev.path) == (EventType.CHILD, p)
    writer.create(f"{p}/two")  # the watch is spent
    writer.set(p, b"data change is not a child change")
    _barrier_callbacks(zk, base)
    assert kids.pending() == []
    assert sorted(zk.get_children(p, watch=kids)) == ["one", "two"]
    writer.set(p, b"still not")
    writer.delete(f"{p}/one")
    ev = kids.next()
    assert (ev.type, ev.path) == (EventType.CHILD, p)
    writer.delete(f"{p}/two")
    _barrier_callbacks(zk, base)
    assert kids.pending() == []
    node_gone = Events()
    assert zk.get_children(p, watch=node_gone) == []
    writer.delete(p)
    ev = node_gone.next()
    assert (ev.type, ev.path) == (EventType.DELETED, p)  # the node itself going reaches child watchers


def test_watch_events_reach_only_the_watching_client(
    zk: KazooClient, make_client: ClientFactory, base: str
) -> None:
    other = make_client()
    path = zk.create(f"{base}/solo", b"0")
    mine, theirs = Events(), Events()
    zk.get(path, watch=mine)
    other.get(path, watch=theirs)
    other.set(path, b"1")
    assert mine.next().type == EventType.CHANGED
    assert theirs.next().type == EventType.CHANGED


# --------------------------------------------------------------------------- transactions


def test_transaction_success(zk: KazooClient, base: str) -> None:
    zk.create(f"{base}/old", b"o")
    zk.create(f"{base}/cfg", b"c0")
    tx = zk.transaction()
    tx.create(f"{base}/new", b"n")
    tx.create(f"{base}/s-", b"", sequence=True)
    tx.set_data(f"{base}/cfg", b"c1", version=0)
    tx.check(f"{base}/cfg", 1)
    tx.delete(f"{base}/old")
    results = tx.commit()
    assert results[0] == f"{base}/new"
    assert results[1] == f"{base}/s-0000000003"
    assert isinstance(results[2], ZnodeStat) and results[2].version == 1
    assert results[3:] == [True, True]
    assert zk.get(f"{base}/cfg")[0] == b"c1"
    assert zk.exists(f"{base}/old") is None
    new, seq = zk.exists(f"{base}/new"), zk.exists(f"{base}/s-0000000003")
    assert new.czxid == seq.czxid == results[2].mzxid  # one transaction, one zxid


def test_transaction_failure_applies_nothing(zk: KazooClient, base: str) -> None:
    zk.create(f"{base}/cfg", b"c0")
    before = zk.exists(base)
    tx = zk.transaction()
    tx.create(f"{base}/a", b"a")
    tx.create(f"{base}/q-", b"", sequence=True)
    tx.set_data(f"{base}/cfg", b"bad", version=7)
    tx.delete(f"{base}/cfg")
    results = tx.commit()
    assert [type(r) for r in results] == [
        RolledBackError,
        RolledBackError,
        BadVersionError,
        RuntimeInconsistency,
    ]
    assert zk.exists(f"{base}/a") is None
    assert zk.get(f"{base}/cfg")[0] == b"c0"
    after = zk.exists(base)
    assert (after.numChildren, after.cversion, after.pzxid) == (
        before.numChildren,
        before.cversion,
        before.pzxid,
    )
    # the sequence counter did not move either
    assert zk.create(f"{base}/q-", sequence=True) == f"{base}/q-0000000001"
    # a failing first op: the real error then RuntimeInconsistency for the rest
    tx = zk.transaction()
    tx.check(f"{base}/missing", 0)
    tx.create(f"{base}/b")
    results = tx.commit()
    assert [type(r) for r in results] == [NoNodeError, RuntimeInconsistency]
    assert zk.exists(f"{base}/b") is None


def test_transaction_sees_its_own_earlier_ops(zk: KazooClient, base: str) -> None:
    with zk.transaction() as tx:
        tx.create(f"{base}/p", b"")
        tx.create(f"{base}/p/c", b"child")
        tx.set_data(f"{base}/p", b"parent", version=0)
        tx.check(f"{base}/p/c", 0)
    assert tx.committed
    assert zk.get(f"{base}/p")[0] == b"parent" and zk.get(f"{base}/p/c")[0] == b"child"
    tx = zk.transaction()
    tx.delete(f"{base}/p/c")
    tx.create(f"{base}/p/c", b"again")
    tx.create(f"{base}/p/c", b"dup")
    results = tx.commit()
    assert [type(r) for r in results] == [RolledBackError, RolledBackError, NodeExistsError]
    assert zk.get(f"{base}/p/c")[0] == b"child"


# --------------------------------------------------------------------------- sync, 4lw, version


def test_sync_then_read_sees_other_clients_write(
    zk: KazooClient, make_client: ClientFactory, base: str
) -> None:
    writer = make_client()
    writer.create(f"{base}/synced", b"fresh")
    assert zk.sync(f"{base}/synced") == f"{base}/synced"
    assert zk.get(f"{base}/synced")[0] == b"fresh"
    assert zk.sync(base) == base


def test_server_version_and_four_letter_words(zk_server: ZkServer, zk: KazooClient, base: str) -> None:
    assert zk.server_version() == (3, 8, 0)
    assert zk.command(b"ruok") == "imok"
    first = zk.exists(zk.create(f"{base}/z1")).czxid
    info = _srvr(zk_server)
    assert info["Zookeeper version"].startswith("3.8.0")
    assert info["Mode"] == "standalone"
    zxid = int(info["Zxid"], 16)
    count = int(info["Node count"])
    for i in range(3):
        zk.create(f"{base}/n{i}")
    after = _srvr(zk_server)
    assert first <= zxid < zk.exists(f"{base}/n0").czxid
    assert int(after["Node count"]) == count + 3
    assert re.fullmatch(r"0x[0-9a-f]+", after["Zxid"])
    via_kazoo = dict(line.split(": ", 1) for line in zk.command(b"srvr").splitlines() if ": " in line)
    assert via_kazoo["Mode"] == "standalone" and int(via_kazoo["Node count"]) == count + 3


def test_last_zxid_tracks_replies(zk: KazooClient, base: str) -> None:
    stat = zk.set(base, b"x")
    assert zk.last_zxid >= stat.mzxid
    zk.get(base)
    assert zk.last_zxid >= stat.mzxid


# --------------------------------------------------------------------------- size limits and unicode


def test_large_data(zk_server: ZkServer, make_client: ClientFactory, zk: KazooClient, base: str) -> None:
    blob = bytes(range(256)) * (512 * 1024 // 256)
    path = zk.create(f"{base}/big", blob)
    data, stat = zk.get(path)
    assert data == blob and stat.dataLength == 512 * 1024

    sender = make_client()
    suspended, reconnected = threading.Event(), threading.Event()

    def listener(state: KazooState) -> None:
        if state == KazooState.SUSPENDED:
            suspended.set()
        elif state == KazooState.CONNECTED and suspended.is_set():
            reconnected.set()

    sender.add_listener(listener)
    session = sender.client_id[0]
    with pytest.raises(ConnectionLoss):
        sender.create(f"{base}/huge", b"\0" * (2 * 1024 * 1024))
    assert suspended.wait(WAIT)  # the server dropped the connection ("Len error")
    # other clients are unaffected, and nothing was written
    assert zk.exists(f"{base}/huge") is None
    assert zk.get(path)[0] == blob
    bystander = make_client()
    assert bystander.create(f"{base}/after", b"ok") == f"{base}/after"
    # the oversized frame cost the connection, not the session: kazoo reconnects to the same one
    assert reconnected.wait(WAIT)
    assert sender.retry(sender.get, f"{base}/after")[0] == b"ok"
    assert sender.client_id[0] == session
    assert "Mode" in _srvr(zk_server)


def test_unicode_paths_and_data(zk: KazooClient, make_client: ClientFactory, base: str) -> None:
    names = ["ünïcødé", "日本語", "space name", "Ελληνικά", "tab\u00e9-\u4e2d"]
    value = "données ✓ 数据 🚀".encode()
    for n in names:
        assert zk.create(f"{base}/{n}", value) == f"{base}/{n}"
    other = make_client()
    assert sorted(other.get_children(base)) == sorted(names)
    for n in names:
        data, stat = other.get(f"{base}/{n}")
        assert data == value and stat.dataLength == len(value)
    seq = zk.create(f"{base}/日本語/項目-", sequence=True)
    assert seq == f"{base}/日本語/項目-0000000000"
    assert other.get_children(f"{base}/日本語") == ["項目-0000000000"]
    # ZooKeeper's path rules (checked on UTF-16 code units) reject surrogates, so no emoji in paths
    with pytest.raises(BadArgumentsError):
        zk.create(f"{base}/rocket-🚀")
    with pytest.raises(BadArgumentsError):
        zk.create(f"{base}/ctl-\u0007")
    assert sorted(zk.get_children(base)) == sorted(names)
