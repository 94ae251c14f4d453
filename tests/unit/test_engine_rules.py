"""Engine rules that clients depend on: multi atomicity, watches, ACLs, sessions, paths, config."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from zk_py import acl as aclmod
from zk_py.config import ConfigError, load, parse
from zk_py.jute import Writer
from zk_py.paths import path_problem
from zk_py.proto import (
    ACL,
    OPEN_ACL_UNSAFE,
    AddWatchRequest,
    AuthPacket,
    CreateRequest,
    DeleteRequest,
    Err,
    Event,
    Id,
    MultiHeader,
    Op,
    PathWatchRequest,
    SetDataRequest,
)
from zk_py.sessions import SessionTracker, initial_session_id, java_random_bytes, session_password

from .enginekit import Kit


def _multi(*ops: tuple[int, object]) -> bytes:
    w = Writer()
    for t, rec in ops:
        MultiHeader(t, False, -1).write(w)
        rec.write(w)  # type: ignore[attr-defined]
    MultiHeader(-1, True, -1).write(w)
    return w.getvalue()


class RawMulti:
    def __init__(self, raw: bytes) -> None:
        self.raw = raw

    def to_bytes(self) -> bytes:
        return self.raw


def test_failed_multi_applies_nothing_and_reports_like_upstream() -> None:
    kit = Kit()
    c = kit.session()
    kit.call(c, 1, Op.CREATE, CreateRequest("/p", b"", OPEN_ACL_UNSAFE, 0))
    before = {p: n.stat_tuple() for p, n in kit.engine.tree.nodes.items()}
    raw = _multi(
        (Op.CREATE, CreateRequest("/p/s-", b"", OPEN_ACL_UNSAFE, 2)),
        (Op.DELETE, DeleteRequest("/missing", -1)),
        (Op.SET_DATA, SetDataRequest("/p", b"x", -1)),
    )
    err, zxid, body, _ = kit.call(c, 2, Op.MULTI, RawMulti(raw))
    assert err == 0 and zxid == 3  # a failed multi still takes a zxid; ReplyHeader.err stays 0
    results = []
    for _ in range(3):
        mh = MultiHeader.read(body)
        results.append((mh.type, mh.err, body.int()))
    assert results == [(-1, 0, 0), (-1, Err.NO_NODE, Err.NO_NODE), (-1, Err.RUNTIME_INCONSISTENCY, -2)]
    assert MultiHeader.read(body) == MultiHeader(-1, True, -1)
    assert {p: n.stat_tuple() for p, n in kit.engine.tree.nodes.items()} == before
    # the sequence counter was not consumed either
    err, _, body, _ = kit.call(c, 3, Op.CREATE, CreateRequest("/p/s-", b"", OPEN_ACL_UNSAFE, 2))
    assert body.ustring() == "/p/s-0000000000"


def test_successful_multi_shares_one_zxid_and_later_ops_see_earlier_ones() -> None:
    kit = Kit()
    c = kit.session()
    raw = _multi(
        (Op.CREATE, CreateRequest("/m", b"", OPEN_ACL_UNSAFE, 0)),
        (Op.CREATE, CreateRequest("/m/c", b"1", OPEN_ACL_UNSAFE, 0)),
        (Op.SET_DATA, SetDataRequest("/m/c", b"2", 0)),
    )
    err, zxid, _body, _ = kit.call(c, 1, Op.MULTI, RawMulti(raw))
    assert err == 0
    tree = kit.engine.tree
    assert tree.get("/m").czxid == tree.get("/m/c").czxid == tree.get("/m/c").mzxid == zxid  # type: ignore[union-attr]
    assert tree.get("/m/c").data == b"2"  # type: ignore[union-attr]


def test_watch_notification_precedes_the_reply_that_caused_it() -> None:
    kit = Kit()
    c = kit.session()
    kit.call(c, 1, Op.CREATE, CreateRequest("/w", b"", OPEN_ACL_UNSAFE, 0))
    kit.call(c, 2, Op.GET_DATA, PathWatchRequest("/w", True))
    kit.engine.request(c, struct.pack("!ii", 3, Op.SET_DATA) + SetDataRequest("/w", b"x", -1).to_bytes())
    frames = [f for f in kit.drain(c) if f is not None]
    xids = [struct.unpack_from("!i", f, 4)[0] for f in frames]
    assert xids == [-1, 3]
    # one-shot: a second change fires nothing
    _, _, _, notes = kit.call(c, 4, Op.SET_DATA, SetDataRequest("/w", b"y", -1))
    assert notes == []


def test_persistent_recursive_watch_sees_descendants_but_not_child_events() -> None:
    kit = Kit()
    c = kit.session()
    other = kit.session()
    kit.call(c, 1, Op.ADD_WATCH, AddWatchRequest("/r", 1))
    events = []
    for i, path in enumerate(["/r", "/r/a", "/r/a/b"], 2):
        kit.call(other, i, Op.CREATE, CreateRequest(path, b"", OPEN_ACL_UNSAFE, 0))
        events += [struct.unpack_from("!ii", f, 20) for f in kit.drain(c) if f]
    # every create reached c exactly once; a recursive watch never sends NodeChildrenChanged
    assert [e[0] for e in events] == [Event.NODE_CREATED] * 3


def test_acl_digest_and_super() -> None:
    kit = Kit(super_digest=aclmod.digest_id("super:test"))
    owner = kit.session()
    stranger = kit.session()
    admin = kit.session()
    kit.call(owner, -4, Op.AUTH, AuthPacket(0, "digest", b"u:pw"))
    err, *_ = kit.call(owner, 1, Op.CREATE, CreateRequest("/s", b"x", [ACL(31, Id("auth", ""))], 0))
    assert err == 0
    assert kit.engine.tree.get("/s").acl == [ACL(31, Id("digest", aclmod.digest_id("u:pw")))]  # type: ignore[union-attr]
    err, *_ = kit.call(stranger, 1, Op.GET_DATA, PathWatchRequest("/s", False))
    assert err == Err.NO_AUTH
    kit.call(admin, -4, Op.AUTH, AuthPacket(0, "digest", b"super:test"))
    err, *_ = kit.call(admin, 1, Op.GET_DATA, PathWatchRequest("/s", False))
    assert err == 0
    # "auth" with no authenticated id is InvalidACL
    err, *_ = kit.call(stranger, 2, Op.CREATE, CreateRequest("/t", b"", [ACL(31, Id("auth", ""))], 0))
    assert err == Err.INVALID_ACL
    err, *_ = kit.call(stranger, 3, Op.CREATE, CreateRequest("/t", b"", [], 0))
    assert err == Err.INVALID_ACL


def test_known_digest_value() -> None:
    assert aclmod.digest_id("super:test") == "super:D/InIHSb7yEEbrWz8b9l71RjZJU="


def test_java_random_matches_jdk() -> None:
    # new Random(0).nextBytes(new byte[8]) in the JDK: [96, -76, 32, -69, 56, 81, -39, -44]
    assert list(java_random_bytes(0, 8)) == [b & 0xFF for b in [96, -76, 32, -69, 56, 81, -39, -44]]
    assert session_password(1) == session_password(1) and len(session_password(1)) == 16


def test_session_ids_carry_the_server_id() -> None:
    sid = initial_session_id(1, 123456)
    assert sid >> 56 == 1 and sid & 0xFFFF == 0


def test_bucketed_expiry() -> None:
    t = SessionTracker(2000)
    t.add(7, 4000, now=1000)  # expires in the bucket after 5000 -> 6000
    assert t.expired(5999) == []
    assert t.expired(6000) == [7]
    t.add(8, 4000, now=0)
    t.touch(8, 3000)  # pushes it to 8000
    assert t.expired(6000) == []
    assert t.expired(8000) == [8]


@pytest.mark.parametrize(
    "path,ok",
    [
        ("/", True),
        ("/a", True),
        ("/a/b", True),
        ("a", False),
        ("/a/", False),
        ("//a", False),
        ("/a/./b", False),
        ("/a/../b", False),
        ("/a/.b", True),
        ("/a\x00", False),
        ("", False),
        ("/\u0001", False),
    ],
)
def test_paths(path: str, ok: bool) -> None:
    assert (path_problem(path) is None) == ok


def test_config_parsing(tmp_path: Path) -> None:
    cfg = parse(
        "tickTime=2000\ndataDir=/d\nclientPort=2181\n4lw.commands.whitelist=ruok, mntr\n"
        "DigestAuthenticationProvider.superDigest=super:abc\nserver.1=h1:2888:3888\nmystery=1\n"
    )
    assert cfg.min_timeout == 4000 and cfg.max_timeout == 40000
    assert cfg.four_letter_whitelist == {"ruok", "mntr", "srvr"}  # srvr is always allowed upstream
    assert cfg.super_digest == "super:abc"
    assert cfg.servers[1].host == "h1" and cfg.unknown == {"mystery": "1"}
    for bad, key in [
        ("tickTime=abc", "tickTime"),
        ("clientPort=70000", "clientPort"),
        ("4lw.commands.whitelist=nope", "4lw"),
        ("server.1=h1:2888", "server.1"),
    ]:
        with pytest.raises(ConfigError, match=key):
            parse(f"dataDir=/d\nclientPort=1\n{bad}\n")
    (tmp_path / "zoo.cfg").write_text("clientPort=1\n")
    with pytest.raises(ConfigError, match="dataDir"):
        load(tmp_path / "zoo.cfg")
