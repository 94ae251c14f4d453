"""ZooKeeper ensembles (zk_py or Apache 3.8.0) on loopback for tests: start, inspect, kill, partition.

Each member is a ``ZkServer`` with its own loopback address (127.0.0.11, .12, … where this host allows it,
else 127.0.0.1 with distinct ports), client port, quorum port and election port.  With ``proxied=True``
every member reaches every other one through its own ``FaultProxy`` per direction and port kind, so a test
can cut links: member i's zoo.cfg names member j at the proxy for i→j (its own ``server.i`` line keeps its
real address, where it binds).

One protocol detail makes the proxies work: in ZooKeeper's election handshake the connecting server sends
the election address it listens on, and a receiver with the higher sid drops the connection and dials that
address back.  Forwarded verbatim, that dial-back would bypass the proxies, so the election-port proxies
rewrite the advertised address to the proxy for the opposite direction.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import re
import socket
import struct
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Literal, Self

from tests.support.clients import client_factory
from tests.support.faultproxy import FaultProxy, FirstBytesRewriter
from tests.support.servers import ZkServer

PortKind = Literal["quorum", "election"]
QUORUM_DEFAULTS = {"tickTime": "200", "initLimit": "5", "syncLimit": "2", "4lw.commands.whitelist": "*"}
# kazoo options for ensemble clients: a short session (the servers cap it at 20 ticks anyway) and reconnects
# that keep trying without ever backing off beyond half a second, so a client is back soon after a failover.
CLIENT_OPTIONS: dict[str, Any] = {
    "timeout": 4.0,
    "connection_retry": {"max_tries": -1, "delay": 0.05, "backoff": 1.5, "max_delay": 0.5},
}
FIRST_LOOPBACK = 11  # member k (from 0) listens on 127.0.0.(11 + k)
MAX_TREE_NODES = 100_000
WALK_BATCH = 256  # znodes read in one pipelined round (each costs a get and a get_children)
WALK_TIMEOUT = 20.0
_MODE = re.compile(r"^Mode: (\w+)", re.MULTILINE)


class EnsembleError(RuntimeError):
    """The ensemble did not reach the state asked for; the message says what each member reported."""


@dataclass(frozen=True)
class Peer:
    sid: int
    host: str
    client_port: int
    quorum_port: int
    election_port: int
    observer: bool

    def port(self, kind: PortKind) -> int:
        return self.quorum_port if kind == "quorum" else self.election_port


@functools.cache
def distinct_loopback_addresses() -> bool:
    """Whether this host lets us bind 127.0.0.x other than .1 (Linux does; some sandboxes and macOS not)."""
    try:
        with socket.socket() as s:
            s.bind((f"127.0.0.{FIRST_LOOPBACK}", 0))
        return True
    except OSError:
        return False


def _free_ports(hosts: list[str], per_host: int) -> list[list[int]]:
    """``per_host`` ports for each entry of ``hosts`` that were free a moment ago, all distinct even where
    hosts repeat (every socket is held open until all are picked)."""
    with contextlib.ExitStack() as stack:
        socks = [[stack.enter_context(socket.socket()) for _ in range(per_host)] for _ in hosts]
        for host, group in zip(hosts, socks, strict=True):
            for s in group:
                s.bind((host, 0))
        return [[s.getsockname()[1] for s in group] for group in socks]


def election_hello_rewriter(advertise: Callable[[], tuple[str, int]]) -> FirstBytesRewriter:
    """Rewrite the election address in a ZooKeeper election handshake (``QuorumCnxManager``'s initial message:
    protocol version < 0, sid, address length, ``host:port[|host:port…]``); old-style (version ≥ 0) and
    malformed openings pass unchanged for the server to judge."""

    def rewrite(seen: bytes) -> bytes | None:
        if len(seen) < 8:
            return None
        if struct.unpack_from(">q", seen)[0] >= 0:
            return seen
        if len(seen) < 20:
            return None
        (length,) = struct.unpack_from(">i", seen, 16)
        if not 0 < length <= 2048:
            return seen
        if len(seen) < 20 + length:
            return None
        host, port = advertise()
        address = f"{host}:{port}".encode()
        return seen[:16] + struct.pack(">i", len(address)) + address + seen[20 + length :]

    return rewrite


class Ensemble:
    """``voters`` + ``observers`` servers of ``kind`` under ``workdir``; sids are 1…n, observers last.

    Construction writes nothing and starts no server, but a proxied ensemble already listens (its proxies):
    use it as a context manager, which always kills everything and prints the members' logs on failure.
    """

    def __init__(
        self,
        kind: str,
        workdir: Path,
        voters: int = 3,
        observers: int = 0,
        proxied: bool = False,
        extra_cfg: dict[str, str] | None = None,
    ) -> None:
        if voters < 1 or observers < 0:
            raise ValueError("an ensemble needs at least one voter")
        self.kind = kind
        self.workdir = Path(workdir).resolve()
        self.proxied = proxied
        self.extra_cfg = dict(extra_cfg or {})
        self.voter_ids = list(range(1, voters + 1))
        self.observer_ids = list(range(voters + 1, voters + observers + 1))
        sids = self.voter_ids + self.observer_ids
        distinct = distinct_loopback_addresses()
        hosts = [f"127.0.0.{FIRST_LOOPBACK + k}" if distinct else "127.0.0.1" for k in range(len(sids))]
        self.peers = {
            sid: Peer(sid, host, client, quorum, election, sid in self.observer_ids)
            for sid, host, (client, quorum, election) in zip(sids, hosts, _free_ports(hosts, 3), strict=True)
        }
        self._proxies: dict[tuple[int, int, PortKind], FaultProxy] = {}
        try:
            if proxied:
                self._make_proxies()
            self.members = {sid: self._make_member(peer) for sid, peer in self.peers.items()}
        except BaseException:
            self.stop()
            raise

    def _make_proxies(self) -> None:
        for src in self.peers:
            for dst, peer in self.peers.items():
                if src == dst:
                    continue
                back = functools.partial(self._proxy_address, dst, src, "election")  # dst dials src here
                kinds: dict[PortKind, FirstBytesRewriter | None] = {
                    "quorum": None,
                    "election": election_hello_rewriter(back),
                }
                for kind, rewrite in kinds.items():
                    self._proxies[(src, dst, kind)] = FaultProxy(
                        (peer.host, peer.port(kind)),
                        rewrite_first=rewrite,
                        name=f"zk-proxy {src}->{dst} {kind}",
                    )

    def _proxy_address(self, src: int, dst: int, kind: PortKind) -> tuple[str, int]:
        return self._proxies[(src, dst, kind)].address

    def _server_line(self, viewer: int, peer: Peer) -> str:
        """How ``viewer`` names ``peer`` in its zoo.cfg: directly, or through the viewer→peer proxies."""
        if self.proxied and viewer != peer.sid:
            host, quorum = self._proxy_address(viewer, peer.sid, "quorum")
            election = self._proxy_address(viewer, peer.sid, "election")[1]
        else:
            host, quorum, election = peer.host, peer.quorum_port, peer.election_port
        return f"{host}:{quorum}:{election}" + (":observer" if peer.observer else "")

    def _make_member(self, me: Peer) -> ZkServer:
        cfg = {**QUORUM_DEFAULTS, **self.extra_cfg}
        cfg.update({f"server.{p.sid}": self._server_line(me.sid, p) for p in self.peers.values()})
        if me.observer:
            cfg["peerType"] = "observer"
        srv = ZkServer(
            self.kind, self.workdir / f"server{me.sid}", port=me.client_port, extra_cfg=cfg, myid=me.sid
        )
        srv.host = me.host  # listen on the member's own loopback address (clientPortAddress)
        return srv

    # ------------------------------------------------------------------ lifecycle

    def start(self, timeout: float = 60.0) -> None:
        """Launch every member at once, then wait as ``wait_ready`` does."""
        for srv in self.members.values():
            srv.start(wait="none")
        self.wait_ready(timeout)

    def start_member(self, sid: int) -> None:
        """(Re)launch one member without waiting: alone it never serves; ``wait_ready`` tells when it does."""
        self.members[sid].start(wait="none")

    def stop(self) -> None:
        """Kill every member and close every proxy (a test's data is not worth a clean shutdown)."""
        for srv in getattr(self, "members", {}).values():
            srv.kill()
        for proxy in self._proxies.values():
            proxy.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if exc_type is not None:
                self.dump_logs()
        finally:
            self.stop()

    # ------------------------------------------------------------------ inspection

    @property
    def hosts(self) -> str:
        """Connection string naming every member's client port."""
        return ",".join(srv.hosts for srv in self.members.values())

    def hosts_of(self, sids: Iterable[int]) -> str:
        return ",".join(self.members[sid].hosts for sid in sids)

    def member(self, sid: int) -> ZkServer:
        return self.members[sid]

    def sid_of(self, member: ZkServer) -> int:
        assert member.myid is not None
        return member.myid

    def mode(self, sid: int) -> str | None:
        """``leader`` / ``follower`` / ``observer`` from ``srvr``, or None when down or not serving."""
        srv = self.members[sid]
        if not srv.running():
            return None
        try:
            match = _MODE.search(srv.four_letter("srvr", timeout=2.0))
        except OSError:
            return None
        return match.group(1) if match else None

    def modes(self) -> dict[int, str | None]:
        return {sid: self.mode(sid) for sid in self.members}

    def _with_mode(self, mode: str) -> list[ZkServer]:
        return [self.members[sid] for sid, m in self.modes().items() if m == mode]

    def leader(self) -> ZkServer:
        """The one member that says it leads (raises unless exactly one does)."""
        leaders = self._with_mode("leader")
        if len(leaders) != 1:
            raise EnsembleError(f"expected exactly one leader, modes are {self.modes()}")
        return leaders[0]

    def followers(self) -> list[ZkServer]:
        return self._with_mode("follower")

    def observers(self) -> list[ZkServer]:
        return self._with_mode("observer")

    def dump_logs(self, file: IO[str] | None = None, lines: int = 40) -> None:
        for srv in getattr(self, "members", {}).values():
            print(srv.log_tail(lines), file=file or sys.stderr)

    # ------------------------------------------------------------------ waiting

    def _wait(self, timeout: float, what: str, done: Callable[[dict[int, str | None]], Any]) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            modes = self.modes()
            result = done(modes)
            if result is not None and result is not False:
                return result
            if time.monotonic() >= deadline:
                raise EnsembleError(f"no {what} within {timeout:.0f}s; modes are {modes}")
            time.sleep(0.1)

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Until every member runs, exactly one voter leads, the other voters follow, observers observe."""

        def ready(modes: dict[int, str | None]) -> bool:
            for sid, srv in self.members.items():
                if not srv.running():
                    raise EnsembleError(f"member {sid} exited\n{srv.log_tail()}")
            voter_modes = [modes[sid] for sid in self.voter_ids]
            return (
                voter_modes.count("leader") == 1
                and voter_modes.count("follower") == len(self.voter_ids) - 1
                and all(modes[sid] == "observer" for sid in self.observer_ids)
            )

        self._wait(timeout, "settled ensemble", ready)

    def wait_for_leader(self, timeout: float = 60.0, exclude: Iterable[int] = ()) -> int:
        """The sid of the one leader outside ``exclude``, once a quorum of voters follows it (or leads)."""
        skip = set(exclude)
        quorum = len(self.voter_ids) // 2 + 1

        def elected(modes: dict[int, str | None]) -> int | None:
            leaders = [sid for sid, m in modes.items() if m == "leader" and sid not in skip]
            serving = [
                sid for sid in self.voter_ids if sid not in skip and modes[sid] in ("leader", "follower")
            ]
            return leaders[0] if len(leaders) == 1 and len(serving) >= quorum else None

        return int(self._wait(timeout, "leader" + (f" outside {sorted(skip)}" if skip else ""), elected))

    # ------------------------------------------------------------------ faults

    def partition(self, sid: int) -> None:
        """Cut ``sid`` off from every other member, both directions, quorum and election ports."""
        if not self.proxied:
            raise EnsembleError("partition() needs Ensemble(proxied=True)")
        for (src, dst, _), proxy in self._proxies.items():
            if sid in (src, dst):
                proxy.block()

    def blackhole(self, sid: int) -> None:
        """Silently cut ``sid`` off (links stay up, bytes vanish); follow with ``partition`` then ``heal``."""
        if not self.proxied:
            raise EnsembleError("blackhole() needs Ensemble(proxied=True)")
        for (src, dst, _), proxy in self._proxies.items():
            if sid in (src, dst):
                proxy.blackhole()

    def heal(self) -> None:
        for proxy in self._proxies.values():
            proxy.unblock()

    # ------------------------------------------------------------------ comparing members

    def tree_snapshot(self, member: ZkServer | int) -> dict[str, tuple[Any, ...]]:
        """Every znode outside /zookeeper as a client of this one member sees it, after a ``sync``:
        path → (data, czxid, mzxid, pzxid, version, cversion, aversion, ephemeralOwner, numChildren).

        Reads are pipelined a batch at a time, so thousands of znodes take a fraction of a second.  Take it
        while nothing writes: it is a consistent snapshot only of a quiet tree.
        """
        srv = self.members[member] if isinstance(member, int) else member
        tree: dict[str, tuple[Any, ...]] = {}
        with client_factory(srv.hosts) as make:
            zk = make(**CLIENT_OPTIONS)
            zk.sync("/")
            pending = ["/"]
            while pending:
                if len(tree) + len(pending) > MAX_TREE_NODES:
                    raise EnsembleError(f"more than {MAX_TREE_NODES} znodes on {srv!r}")
                batch, pending = pending[:WALK_BATCH], pending[WALK_BATCH:]
                replies = [(path, zk.get_async(path), zk.get_children_async(path)) for path in batch]
                for path, node, children in replies:
                    data, st = node.get(timeout=WALK_TIMEOUT)
                    stat = (st.czxid, st.mzxid, st.pzxid, st.version, st.cversion, st.aversion)
                    tree[path] = (data, *stat, st.ephemeralOwner, st.numChildren)
                    paths = (f"{path.rstrip('/')}/{c}" for c in children.get(timeout=WALK_TIMEOUT))
                    pending.extend(c for c in paths if c != "/zookeeper")
        return tree

    def tree_digest(self, member: ZkServer | int) -> str:
        """A digest of the member's tree (``tree_snapshot``): equal digests mean identical trees."""
        return digest(self.tree_snapshot(member))


def digest(snapshot: dict[str, tuple[Any, ...]]) -> str:
    """SHA-256 over a ``tree_snapshot`` in path order."""
    h = hashlib.sha256()
    for path, fields in sorted(snapshot.items()):
        h.update(repr((path, fields)).encode())
    return h.hexdigest()
