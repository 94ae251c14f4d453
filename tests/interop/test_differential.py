"""Differential test: one seeded random operation sequence, run in lockstep on zk_py and Apache 3.8.0.

kazoo-level tests only see what kazoo exposes; here a raw wire client (:mod:`tests.support.rawzk`) sends
the same requests to both servers and compares everything a client can observe: error codes, reply
zxids, Stat fields, multi result headers, sequential names, ACLs, whoAmI, and the watch notifications
each session receives between two of its replies.

The sequence is a pure function of the seed (never of results), over a small path space so that
NodeExists, NoNode, NotEmpty, BadVersion, NoAuth, InvalidACL, NoChildrenForEphemerals... all happen.
Several sessions (slots) are interleaved deterministically: one request, its reply, then the next.
After every write, each other session sends a ping; a server queues notifications for a session
before any later reply to it, so the events a write caused are read exactly before that ping's reply.

Normalised before comparing: zxids are taken relative to the first reply's zxid (both servers spend
one zxid per transaction, so these must agree exactly), ctime/mtime are dropped, session ids and
ephemeralOwner become the session's opening order (S0, S1, ...), children lists and whoAmI entries are
sorted (Apache returns hash order) and so are the events of one closeSession (Apache deletes the
ephemerals in hash order).  Everything else must be identical; the first mismatch fails with the op,
both results and the steps before it.  Absolute zxids are checked too (via the first reply's zxid).

``SCENARIOS`` are fixed sequences run the same way, for behaviour that random runs draw too rarely
(malformed and system paths, timeout negotiation) or that would end nearly every random run at once.
"""

from __future__ import annotations

import collections
import dataclasses
import pprint
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.support.rawzk import RESPONSES, RawZk, RawZkError, Reply, decode_multi, digest_id
from tests.support.servers import ZkServer
from zk_py import proto
from zk_py.jute import JuteError, Reader, Record
from zk_py.proto import ACL, CONTAINER_EPHEMERAL_OWNER, Err, Event, Id, Op, Perm

pytestmark = pytest.mark.apache

SEEDS = (1, 2, 3, 4, 5, 6, 7, 8)
STEPS_PER_SEED = 600  # a fresh server pair per seed, well under the 60 s container reaper interval
SLOTS = 3  # concurrent sessions
ROOT = "/t"
NAMES = ("a", "b", "c")
USERS = {"alice": "alice-pw", "bob": "bob-pw"}
SESSION_TIMEOUT_MS = 30000
CLOSE_EOF_WAIT = 10.0  # a bound for failures only: servers close at once
RECENT_PATHS = 10  # the generator's memory of paths it created
CONTEXT_STEPS = 12  # steps shown before a mismatch

SPECIAL_PATHS = ("/", "/zookeeper", "/zookeeper/config", "/zookeeper/quota", ROOT)
INVALID_PATHS = ("t/a", ROOT + "/", ROOT + "//a", "", ROOT + "/./a", ROOT + "/../t", ROOT + "/a\x00b")

OPEN_ACL = [ACL(Perm.ALL, Id("world", "anyone"))]
ACL_CHOICES: tuple[tuple[int, list[ACL]], ...] = (
    (40, OPEN_ACL),
    (6, [ACL(Perm.READ, Id("world", "anyone"))]),
    (6, [ACL(Perm.ALL, Id("digest", digest_id("alice", USERS["alice"])))]),
    (
        6,
        [
            ACL(Perm.ALL, Id("digest", digest_id("alice", USERS["alice"]))),
            ACL(Perm.READ, Id("world", "anyone")),
        ],
    ),
    (5, [ACL(Perm.READ | Perm.CREATE | Perm.DELETE | Perm.ADMIN, Id("world", "anyone"))]),
    (5, [ACL(Perm.ALL, Id("auth", ""))]),
    (3, [ACL(Perm.ALL, Id("ip", "127.0.0.1"))]),
    (3, [ACL(Perm.ALL, Id("world", "anyone")), ACL(Perm.ALL, Id("world", "anyone"))]),
    (2, []),
    (2, [ACL(Perm.ALL, Id("digest", "alice"))]),
    (2, [ACL(Perm.ALL, Id("nosuchscheme", "x"))]),
    (1, [ACL(Perm.ALL, Id("ip", "300.1.2.3"))]),
    (1, [ACL(Perm.ALL, Id("world", "somebody"))]),
)
DATA_CHOICES: tuple[bytes | None, ...] = (b"", b"v", b"hello world", b"\x00\xff" * 8, None, b"v2")
CREATE_FLAGS = ((40, 0), (20, 1), (15, 2), (15, 3), (3, 4), (1, 5), (1, 6), (1, 7), (1, -1), (1, 42))

# Relative frequency of each kind of step (opcode names, or the special kinds of Step).
# fmt: off
STEP_WEIGHTS: tuple[tuple[int, str], ...] = (
    (14, "CREATE"), (5, "CREATE2"), (3, "CREATE_CONTAINER"), (1, "CREATE_TTL"), (9, "DELETE"),
    (8, "SET_DATA"), (6, "EXISTS"), (6, "GET_DATA"), (4, "GET_CHILDREN"), (4, "GET_CHILDREN2"),
    (3, "GET_ACL"), (3, "SET_ACL"), (8, "MULTI"), (2, "MULTI_READ"), (2, "SYNC"),
    (2, "GET_ALL_CHILDREN_NUMBER"), (2, "GET_EPHEMERALS"), (3, "ADD_WATCH"), (3, "REMOVE_WATCHES"),
    (1, "CHECK_WATCHES"), (1, "WHO_AM_I"), (2, "AUTH"), (1, "SET_WATCHES"), (1, "PING"), (1, "RECONFIG"),
    (2, "CLOSE"), (2, "RECONNECT"), (1, "CONNECT_AHEAD"),
)
# fmt: on

WRITES = frozenset(
    {"CREATE", "CREATE2", "CREATE_CONTAINER", "CREATE_TTL", "DELETE", "SET_DATA", "SET_ACL", "MULTI"}
)

# Things every seed must make both servers do, so the generator cannot silently lose its bite.
REQUIRED_ERRORS = {"OK", "NO_NODE", "NODE_EXISTS", "NOT_EMPTY", "BAD_VERSION", "BAD_ARGUMENTS", "NO_AUTH"}
REQUIRED_ERRORS |= {"INVALID_ACL", "NO_WATCHER", "RUNTIME_INCONSISTENCY", "RECONFIG_DISABLED"}
REQUIRED_EVENTS = {"NODE_CREATED", "NODE_DELETED", "NODE_DATA_CHANGED", "NODE_CHILDREN_CHANGED"}


# --------------------------------------------------------------------------------------------------------
# the operation sequence


@dataclass(frozen=True)
class Step:
    """One client action on session slot ``slot``.

    ``kind`` is an :class:`Op` name (the request is sent with that opcode and ``body``) or one of
    OPEN (body: (timeout, send the readOnly byte)), CLOSE, AUTH (body: user), PING, SET_WATCHES (body:
    (relative-zxid choice, record)), RECONNECT, BAD_RECONNECT, CONNECT_AHEAD (see :meth:`Side._run`).
    """

    slot: int
    kind: str
    body: Any = None

    def __str__(self) -> str:
        body = "" if self.body is None else f" {self.body!r}"
        return f"slot {self.slot} {self.kind}{body}"


class Generator:
    """Deterministic random steps for one seed.

    It never looks at results; it only remembers which slots have an open session and the paths it
    recently asked to create, and reuses those often so that most requests hit existing nodes.
    """

    def __init__(self, seed: int) -> None:
        self.rnd = random.Random(seed)
        self.open = [False] * SLOTS
        self.recent: collections.deque[str] = collections.deque(maxlen=RECENT_PATHS)

    def weighted(self, choices: tuple[tuple[int, Any], ...]) -> Any:
        return self.rnd.choices([c for _, c in choices], weights=[w for w, _ in choices])[0]

    def name(self) -> str:
        r = self.rnd.random()
        if r < 0.2:
            return f"q-{self.rnd.randrange(8):010d}"
        if r < 0.25:
            return f"{self.rnd.randrange(4):010d}"
        return self.rnd.choice(NAMES)

    def node(self, min_depth: int = 1, max_depth: int = 3) -> str:
        depth = min(max(self.weighted(((45, 1), (35, 2), (20, 3))), min_depth), max_depth)
        if depth > 0 and self.recent and self.rnd.random() < 0.5:
            path = self.rnd.choice(self.recent)
            if min_depth <= path.count("/") - 1 <= max_depth:
                return path
        path = ROOT
        for _ in range(depth):
            path += "/" + self.name()
        return path

    def path(self) -> str:
        r = self.rnd.random()
        if r < 0.04:
            return self.rnd.choice(SPECIAL_PATHS)
        if r < 0.07:
            return self.rnd.choice(INVALID_PATHS)
        return self.node()

    def create_path(self) -> str:
        """Mostly a child of a path created before, so that creates often succeed."""
        r = self.rnd.random()
        if r < 0.05:
            return ROOT
        if r < 0.25:
            return ROOT + "/" + self.rnd.choice(NAMES)
        if r < 0.65 and self.recent:
            parent = self.rnd.choice(self.recent)
            if parent.count("/") < 4:
                return parent + "/" + self.name()
        return self.path()

    def remember(self, path: str) -> None:
        """Only plain names at depth 1-2: deep or sequential-looking guesses rarely exist."""
        parts = path.split("/")
        plain = parts[:2] == ["", ROOT[1:]] and 3 <= len(parts) <= 4 and all(p in NAMES for p in parts[2:])
        if plain and path not in self.recent:
            self.recent.append(path)

    def version(self) -> int:
        return -1 if self.rnd.random() < 0.6 else self.rnd.randrange(3)

    def data(self) -> bytes | None:
        return self.rnd.choice(DATA_CHOICES)

    def acl(self) -> list[ACL]:
        acl: list[ACL] = self.weighted(ACL_CHOICES)
        return acl

    def create_request(self, flags: int) -> proto.CreateRequest:
        if flags in (2, 3, 6) or flags < 0:
            parent = self.node(0, 2)
            path = parent + ("/" if self.rnd.random() < 0.1 else "/q-")
        else:
            path = self.create_path()
            self.remember(path)
        return proto.CreateRequest(path, self.data(), self.acl(), flags)

    def write_op(self) -> tuple[int, Record]:
        """A sub-operation of a multi."""
        kind = self.weighted(
            (
                (10, Op.CREATE),
                (3, Op.CREATE2),
                (1, Op.CREATE_CONTAINER),
                (5, Op.DELETE),
                (5, Op.SET_DATA),
                (4, Op.CHECK),
            )
        )
        if kind in (Op.CREATE, Op.CREATE2):
            return kind, self.create_request(self.weighted(CREATE_FLAGS[:5]))
        if kind == Op.CREATE_CONTAINER:
            return kind, proto.CreateRequest(self.path(), self.data(), OPEN_ACL, 4)
        if kind == Op.DELETE:
            return kind, proto.DeleteRequest(self.create_path(), self.version())
        if kind == Op.SET_DATA:
            return kind, proto.SetDataRequest(self.path(), self.data(), self.version())
        return kind, proto.CheckVersionRequest(self.path(), self.version())

    def request(self, slot: int) -> Step:
        r = self.rnd
        kind: str = self.weighted(STEP_WEIGHTS)
        body: Any
        if kind == "CREATE" or kind == "CREATE2":
            body = self.create_request(self.weighted(CREATE_FLAGS))
        elif kind == "CREATE_CONTAINER":
            body = proto.CreateRequest(self.path(), self.data(), self.acl(), 4 if r.random() < 0.9 else 0)
        elif kind == "CREATE_TTL":
            body = proto.CreateTTLRequest(self.path(), self.data(), OPEN_ACL, r.choice((5, 6)), 60000)
        elif kind == "DELETE":
            body = proto.DeleteRequest(self.create_path(), self.version())
        elif kind == "SET_DATA":
            body = proto.SetDataRequest(self.path(), self.data(), self.version())
        elif kind in ("EXISTS", "GET_DATA", "GET_CHILDREN", "GET_CHILDREN2"):
            body = proto.PathWatchRequest(self.path(), r.random() < 0.6)
        elif kind in ("GET_ACL", "SYNC", "GET_ALL_CHILDREN_NUMBER"):
            body = proto.PathRequest(self.path())
        elif kind == "GET_EPHEMERALS":
            body = proto.PathRequest(r.choice(("/", ROOT, self.node(1, 2), ROOT + "/a/q-")))
        elif kind == "SET_ACL":
            # never on ROOT itself: a read-only ROOT would freeze the rest of the sequence
            body = proto.SetACLRequest(self.node(), self.acl(), self.version())
        elif kind == "MULTI":
            body = tuple(self.write_op() for _ in range(r.choice((0, 1, 1, 1, 2, 2, 2, 3, 3, 4))))
        elif kind == "MULTI_READ":
            body = tuple(
                (
                    r.choice((Op.GET_DATA, Op.GET_CHILDREN)),
                    proto.PathWatchRequest(self.path(), r.random() < 0.5),
                )
                for _ in range(r.randint(1, 3))
            )
        elif kind == "ADD_WATCH":
            body = proto.AddWatchRequest(self.node(0, 2), r.choice((0, 1)))
        elif kind in ("REMOVE_WATCHES", "CHECK_WATCHES"):
            body = proto.WatchesRequest(self.node(0, 2), r.randint(1, 5))
        elif kind == "RECONFIG":
            body = proto.ReconfigRequest("", "", "", -1)
        elif kind == "AUTH":
            body = r.choice(("alice", "alice", "bob"))
        elif kind == "SET_WATCHES":
            paths = [self.node(0, 2) for _ in range(5)]
            rec: Record
            if r.random() < 0.5:
                rec = proto.SetWatches(0, paths[:2], paths[2:3], paths[3:])
            else:
                rec = proto.SetWatches2(0, paths[:1], paths[1:2], paths[2:3], paths[3:4], paths[4:])
            body = (r.choice(("last", "first", "zero")), rec)
        else:
            body = None
        if kind == "CLOSE":
            self.open[slot] = False
        return Step(slot, kind, body)

    def steps(self, n: int) -> list[Step]:
        out = [Step(s, "OPEN") for s in range(SLOTS)]
        self.open = [True] * SLOTS
        out.append(Step(0, "EXISTS", proto.PathWatchRequest("/", False)))
        out.append(Step(0, "CREATE", proto.CreateRequest(ROOT, b"root", OPEN_ACL, 0)))
        while len(out) < n:
            slot = self.rnd.randrange(SLOTS)
            if not self.open[slot]:
                self.open[slot] = True
                timeout = self.weighted(((6, SESSION_TIMEOUT_MS), (1, 100000), (1, 15000)))
                out.append(Step(slot, "OPEN", (timeout, self.rnd.random() < 0.8)))
            else:
                out.append(self.request(slot))
        for slot in range(SLOTS):
            if self.open[slot]:
                out += [Step(slot, "PING"), Step(slot, "CLOSE")]
        return out


# --------------------------------------------------------------------------------------------------------
# running steps on one server and normalising what comes back


def err_name(code: int) -> str:
    return Err(code).name if code in Err._value2member_map_ else str(code)


class Side:
    """The sessions of one server, and the normalisation of its replies."""

    def __init__(self, srv: ZkServer) -> None:
        self.srv = srv
        self.conns: dict[int, RawZk] = {}
        self.session_names: dict[int, str] = {}
        self.base: int | None = None  # absolute zxid of the first reply

    # ---- normalisation

    def zxid(self, z: int) -> Any:
        if z <= 0:
            return z
        if self.base is None:
            self.base = z
        return f"z{z - self.base:+d}"

    def owner(self, sid: int) -> Any:
        if sid == 0:
            return 0
        if sid == CONTAINER_EPHEMERAL_OWNER:
            return "container"
        return self.session_names.get(sid, f"unknown-session-{sid:#x}")

    def stat(self, s: proto.Stat) -> dict[str, Any]:
        return {
            "czxid": self.zxid(s.czxid),
            "mzxid": self.zxid(s.mzxid),
            "pzxid": self.zxid(s.pzxid),
            "version": s.version,
            "cversion": s.cversion,
            "aversion": s.aversion,
            "ephemeralOwner": self.owner(s.ephemeralOwner),
            "dataLength": s.dataLength,
            "numChildren": s.numChildren,
        }

    def norm(self, v: Any) -> Any:
        if isinstance(v, proto.Stat):
            return self.stat(v)
        if isinstance(v, proto.ChildrenResponse | proto.GetChildren2Response):
            out = {f[0]: self.norm(getattr(v, f[0])) for f in v.FIELDS}
            out["children"] = sorted(v.children)
            return {"type": type(v).__name__, **out}
        if isinstance(v, proto.WhoAmIResponse):  # Apache keeps a connection's auth ids in a hash set
            infos = sorted((i.authScheme, i.user) for i in v.clientInfo)
            return {"type": "WhoAmIResponse", "clientInfo": [f"{s}:{u}" for s, u in infos]}
        if isinstance(v, proto.ACL):
            return f"{v.id.scheme}:{v.id.id}:{v.perms}"
        if isinstance(v, Record):
            return {
                "type": type(v).__name__,
                **{f[0]: self.norm(getattr(v, f[0])) for f in v.FIELDS},
            }
        if isinstance(v, list | tuple):
            return [self.norm(x) for x in v]
        return v

    def body(self, op: int, rep_err: int, body: bytes) -> Any:
        """Decode a reply body the way a client would; anything unexpected is kept as hex."""
        if rep_err == 0 and op in (Op.MULTI, Op.MULTI_READ):
            try:
                results = decode_multi(body)
            except (JuteError, RawZkError) as e:
                return f"undecodable multi ({e}): {body.hex()}"
            return [
                {
                    "type": Op(m.type).name if m.type in Op._value2member_map_ else m.type,
                    "err": err_name(m.err),
                    "result": self.norm(m.record),
                }
                for m in results
            ]
        cls = RESPONSES.get(op)
        if rep_err != 0 or cls is None:
            return f"raw:{body.hex()}" if body else None
        r = Reader(body)
        try:
            rec = cls.read(r)
        except JuteError as e:
            return f"undecodable {cls.__name__} ({e}): {body.hex()}"
        out = self.norm(rec)
        if r.remaining():
            out = {"decoded": out, "trailing": body[r.pos :].hex()}
        return out

    def events(self, conn: RawZk, unordered: bool = False) -> list[Any]:
        evs = [
            (
                Event(n.type).name if n.type in Event._value2member_map_ else n.type,
                n.state,
                n.path,
                self.zxid(n.zxid),
            )
            for n in conn.take_notifications()
        ]
        return sorted(evs, key=repr) if unordered else evs

    def reply(self, op: int, rep: Reply) -> dict[str, Any]:
        return {
            "xid": rep.xid,
            "zxid": self.zxid(rep.zxid),
            "err": err_name(rep.err),
            "body": self.body(op, rep.err, rep.body),
        }

    # ---- execution

    def run(self, step: Step) -> dict[str, Any]:
        """Execute one step; connection failures become part of the result (and kill the slot)."""
        try:
            return self._run(step)
        except (RawZkError, OSError, JuteError) as e:
            conn = self.conns.pop(step.slot, None)
            if conn is not None:
                conn.close()
            return {"failure": type(e).__name__}

    def connected(self, conn: RawZk, resp: proto.ConnectResponse) -> dict[str, Any]:
        """A ConnectResponse, with a new session id named by its opening order."""
        if resp.sessionId != 0 and resp.sessionId not in self.session_names:
            self.session_names[resp.sessionId] = f"S{len(self.session_names)}"
        return {
            "session": self.owner(resp.sessionId),
            "timeOut": resp.timeOut,
            "readOnly": conn.read_only,
            "passwd": "zeros" if resp.passwd == bytes(16) else len(resp.passwd or b""),
            "sid_top_byte": resp.sessionId >> 56,
        }

    def reconnect(self, slot: int, sid: int, passwd: bytes, last_zxid: int) -> dict[str, Any]:
        """Resume session ``sid`` on a new connection in ``slot`` (what a client does after a disconnect)."""
        conn = RawZk(self.srv.host, self.srv.port)
        self.conns[slot] = conn
        resp = conn.connect(timeout_ms=SESSION_TIMEOUT_MS, session_id=sid, passwd=passwd, last_zxid=last_zxid)
        conn.last_zxid = last_zxid
        return self.connected(conn, resp)

    def _run(self, step: Step) -> dict[str, Any]:
        if step.kind == "OPEN":
            timeout_ms, ro_byte = step.body or (SESSION_TIMEOUT_MS, True)
            new = RawZk(self.srv.host, self.srv.port)
            self.conns[step.slot] = new
            return self.connected(new, new.connect(timeout_ms=timeout_ms, read_only_byte=ro_byte))
        conn = self.conns.get(step.slot)
        if conn is None:
            return {"failure": "no connection"}
        if step.kind == "RECONNECT":  # drop the socket (no closeSession) and resume the session
            conn.close()
            return self.reconnect(step.slot, conn.session_id, conn.passwd, conn.last_zxid)
        if step.kind == "BAD_RECONNECT":  # someone else presents this session's id with a wrong password
            sid, passwd, last = conn.session_id, conn.passwd, conn.last_zxid
            probe = RawZk(self.srv.host, self.srv.port)
            try:
                out: dict[str, Any] = {"intruder": self.connected(probe, probe.connect(session_id=sid))}
                out["intruder_eof"] = probe.read_until_eof(CLOSE_EOF_WAIT)
            finally:
                probe.close()
            out["owner_ping"] = self.run(Step(step.slot, "PING"))
            if step.slot not in self.conns:  # the owner's connection was dropped: resume the session
                out["owner_reconnect"] = self.reconnect(step.slot, sid, passwd, last)
            return out
        if step.kind == "CONNECT_AHEAD":  # a client that saw a newer zxid than the server has
            probe = RawZk(self.srv.host, self.srv.port)
            try:
                return {"connect": self.connected(probe, probe.connect(last_zxid=conn.last_zxid + 1000))}
            except RawZkError as e:
                return {"connect_failure": type(e).__name__}
            finally:
                probe.close()
        if step.kind == "CLOSE":
            rep = conn.close_session()
            out = {**self.reply(Op.CLOSE_SESSION, rep), "events": self.events(conn, unordered=True)}
            out["eof"] = conn.read_until_eof(CLOSE_EOF_WAIT)
            out["events_after_reply"] = self.events(conn, unordered=True)
            conn.close()
            del self.conns[step.slot]
            return out
        if step.kind == "PING":
            rep = conn.ping()
            op = Op.PING
        elif step.kind == "AUTH":
            rep = conn.auth("digest", f"{step.body}:{USERS[step.body]}".encode())
            op = Op.AUTH
        elif step.kind == "SET_WATCHES":
            choice, rec = step.body
            rel = {"last": conn.last_zxid, "first": self.base or 0, "zero": 0}[choice]
            rep = conn.set_watches(dataclasses.replace(rec, relativeZxid=rel))
            op = Op.SET_WATCHES
        elif step.kind in ("MULTI", "MULTI_READ"):
            op = Op[step.kind]
            rep, _ = conn.multi(step.body, read=step.kind == "MULTI_READ")
        else:
            op = Op[step.kind]
            rep = conn.call(op, step.body)
        return {**self.reply(op, rep), "events": self.events(conn)}

    def flush_others(self, slot: int, unordered: bool = False) -> dict[int, Any]:
        """Ping every other open session so the events the last write caused are read, per session."""
        out: dict[int, Any] = {}
        for other in sorted(self.conns):
            if other != slot:
                out[other] = self.run(Step(other, "PING"))
                if unordered and "events" in out[other]:
                    out[other]["events"] = sorted(out[other]["events"], key=repr)
        return out

    def close(self) -> None:
        for conn in self.conns.values():
            conn.close()
        self.conns.clear()


# --------------------------------------------------------------------------------------------------------
# the test


def fmt(v: Any) -> str:
    return pprint.pformat(v, width=108, sort_dicts=False)


def mismatch(label: str, i: int, step: Step, zkpy: Any, apache: Any, history: list[str]) -> str:
    return (
        f"zk_py differs from Apache 3.8.0 ({label}) at step #{i}: {step}\n"
        f"--- zk_py result:\n{fmt(zkpy)}\n--- Apache result:\n{fmt(apache)}\n"
        f"--- the {len(history)} steps before (identical on both):\n" + "\n".join(history)
    )


def walk(v: Any) -> Iterator[Any]:
    """Every value nested in a result (for coverage counting)."""
    yield v
    if isinstance(v, dict):
        for x in v.values():
            yield from walk(x)
    elif isinstance(v, list | tuple):
        for x in v:
            yield from walk(x)


def execute(side: Side, step: Step) -> dict[str, Any]:
    """One step on one server, plus the pings that collect what a write made other sessions see."""
    out: dict[str, Any] = {"result": side.run(step)}
    if step.kind in WRITES or step.kind == "CLOSE":
        out["other_sessions"] = side.flush_others(step.slot, unordered=step.kind == "CLOSE")
    return out


def run_lockstep(label: str, steps: list[Step], apache_zk: ZkServer, zkpy_server: ZkServer) -> Counter[str]:
    """Run ``steps`` on both servers, failing at the first difference; returns the codes/events seen."""
    apache, zkpy = Side(apache_zk), Side(zkpy_server)
    history: list[str] = []
    seen: Counter[str] = Counter()
    try:
        for i, step in enumerate(steps):
            result_a = execute(apache, step)
            result_z = execute(zkpy, step)
            if result_a != result_z:
                pytest.fail(
                    mismatch(label, i, step, result_z, result_a, history[-CONTEXT_STEPS:]), pytrace=False
                )
            history.append(f"#{i} {step}\n    -> {fmt(result_a['result'])}".replace("\n", "\n    "))
            for v in walk(result_a):
                if isinstance(v, str) and (v in Err.__members__ or v in Event.__members__):
                    seen[v] += 1
    finally:
        apache.close()
        zkpy.close()
    assert zkpy.base == apache.base, (
        f"{label}: all relative zxids matched, but the first reply's zxid was {zkpy.base} on zk_py and "
        f"{apache.base} on Apache (both should start counting at 1 and spend one zxid per transaction)"
    )
    return seen


@pytest.mark.timeout(240)
@pytest.mark.parametrize("seed", SEEDS)
def test_random_ops_match_apache(seed: int, apache_zk: ZkServer, zkpy_server: ZkServer) -> None:
    seen = run_lockstep(f"seed {seed}", Generator(seed).steps(STEPS_PER_SEED), apache_zk, zkpy_server)
    missing = (REQUIRED_ERRORS | REQUIRED_EVENTS) - set(seen)
    assert not missing, (
        f"seed {seed}: the sequence no longer exercises {sorted(missing)} (seen: {dict(seen)})"
    )


def _scenario_prologue() -> list[Step]:
    return [
        Step(0, "OPEN"),
        Step(1, "OPEN"),
        Step(0, "EXISTS", proto.PathWatchRequest("/", False)),
        Step(0, "CREATE", proto.CreateRequest(ROOT, b"root", OPEN_ACL, 0)),
    ]


def _odd_path_steps() -> list[Step]:
    """Every path-taking request once on each special and malformed path (rare in random runs)."""
    steps = _scenario_prologue()
    for path in SPECIAL_PATHS + INVALID_PATHS + (ROOT + "/a",):
        steps += [
            Step(0, "EXISTS", proto.PathWatchRequest(path, True)),
            Step(0, "GET_DATA", proto.PathWatchRequest(path, True)),
            Step(0, "GET_CHILDREN", proto.PathWatchRequest(path, True)),
            Step(0, "GET_CHILDREN2", proto.PathWatchRequest(path, True)),
            Step(0, "GET_ACL", proto.PathRequest(path)),
            Step(0, "SYNC", proto.PathRequest(path)),
            Step(0, "GET_ALL_CHILDREN_NUMBER", proto.PathRequest(path)),
            Step(0, "GET_EPHEMERALS", proto.PathRequest(path)),
            Step(0, "ADD_WATCH", proto.AddWatchRequest(path, 0)),
            Step(0, "ADD_WATCH", proto.AddWatchRequest(path, 1)),
            Step(0, "CHECK_WATCHES", proto.WatchesRequest(path, 3)),
            Step(0, "REMOVE_WATCHES", proto.WatchesRequest(path, 3)),
            Step(0, "MULTI_READ", ((Op.GET_DATA, proto.PathWatchRequest(path, False)),)),
            Step(0, "MULTI_READ", ((Op.GET_CHILDREN, proto.PathWatchRequest(path, False)),)),
            Step(0, "SET_DATA", proto.SetDataRequest(path, b"x", 5)),
            Step(0, "SET_ACL", proto.SetACLRequest(path, OPEN_ACL, 5)),
            Step(0, "MULTI", ((Op.CHECK, proto.CheckVersionRequest(path, 0)),)),
            Step(0, "CREATE", proto.CreateRequest(path, b"", OPEN_ACL, 0)),
            Step(0, "CREATE", proto.CreateRequest(path, b"", OPEN_ACL, 2)),
            Step(0, "CREATE2", proto.CreateRequest(path, b"", OPEN_ACL, 1)),
            Step(0, "CREATE_CONTAINER", proto.CreateRequest(path, b"", OPEN_ACL, 4)),
            Step(1, "DELETE", proto.DeleteRequest(path, 0)),
        ]
    return [*steps, Step(0, "CLOSE"), Step(1, "CLOSE")]


# Fixed sequences: behaviour too disruptive to draw at random (it would end most random runs at its first
# occurrence and hide every difference after it) or too rare to be drawn reliably.
SCENARIOS: dict[str, list[Step]] = {
    "odd_paths": _odd_path_steps(),
    # negotiation clamps to [2, 20] x tickTime; each session is closed at once, long before it could expire
    "session_timeouts": [
        step
        for t in (1000, 4000, 40000, 100000, 0, -1)
        for step in (Step(0, "OPEN", (t, True)), Step(0, "PING"), Step(0, "CLOSE"))
    ],
    # Apache closes every connection of a session as soon as a connect request names it, before it
    # checks the password: a wrong-password attempt drops the owner's connection (and its watches).
    "wrong_password_reconnect": [
        *_scenario_prologue(),
        Step(0, "CREATE", proto.CreateRequest(ROOT + "/e", b"", OPEN_ACL, 1)),
        Step(0, "EXISTS", proto.PathWatchRequest(ROOT + "/x", True)),
        Step(0, "BAD_RECONNECT"),
        Step(1, "CREATE", proto.CreateRequest(ROOT + "/x", b"", OPEN_ACL, 0)),
        Step(0, "PING"),
        Step(0, "GET_EPHEMERALS", proto.PathRequest("/")),
        Step(0, "CLOSE"),
        Step(1, "CLOSE"),
    ],
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenario_matches_apache(name: str, apache_zk: ZkServer, zkpy_server: ZkServer) -> None:
    run_lockstep(f"scenario {name}", SCENARIOS[name], apache_zk, zkpy_server)
