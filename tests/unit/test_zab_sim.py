"""Deterministic simulation of the ensemble core: fast leader election + ZAB, driven exactly as the asyncio
edge will drive them (disks with group commit, TCP-like links, a lossy election network, clock ticks), under
seeded faults: crashes, link resets, stalling or resetting partitions, lost/duplicated/reordered votes.

Safety invariants are checked on every action; liveness after a quiet period.  A failure names the seed
and configuration and prints the last events; ``Sim(seed, config).scenario()`` replays it exactly.
``ZAB_SIM_RUNS=n`` spreads about n runs over the soak tests instead of the default few thousand.

The directed scenarios at the end replay what this simulator found in the first version of the core
(each was a real bug, fixed in zab.py / election.py / the driver): keep them as regression tests.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import os
import random
import struct
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from zk_py.election import Election, Notification, PeerState
from zk_py.zab import (
    Action,
    Append,
    Committed,
    Deliver,
    Disconnect,
    Forwarded,
    Leader,
    Learner,
    LoadSnapshot,
    Lost,
    P,
    Packet,
    SaveEpochs,
    Send,
    Serving,
    SyncDone,
    Timing,
    Touched,
    Truncate,
    epoch_of,
)

Entry = tuple[int, bytes]
TIMING = Timing(tick_ms=400, init_limit=5, sync_limit=3)
ELECTION_TICK_MS = 50  # while LOOKING: finer than tick/2, so finalizeWait (200 ms) is honoured
CONNECT_TRIES, CONNECT_RETRY_MS = 5, 200  # upstream Learner.connectToLeader: 5 tries, ~1 s
LINK_DELAY = (1, 15)
VOTE_DELAY = (1, 60)
FSYNC_DELAY = (1, 8)
_HDR = struct.Struct("!qi")


def zx(z: int) -> str:
    return f"{z >> 32}:{z & 0xFFFFFFFF}"


def last_zxid(entries: list[Entry]) -> int:
    return entries[-1][0] if entries else 0


def encode(tree: list[Entry]) -> bytes:
    return b"".join(_HDR.pack(z, len(r)) + r for z, r in tree)


def decode(data: bytes) -> list[Entry]:
    out, i = [], 0
    while i < len(data):
        z, n = _HDR.unpack_from(data, i)
        i += _HDR.size
        out.append((z, data[i : i + n]))
        i += n
    return out


@dataclass
class Disk:
    """What survives a crash."""

    log: list[Entry] = field(default_factory=list)
    snapshot: tuple[int, list[Entry]] | None = None
    accepted_epoch: int = 0
    current_epoch: int = 0

    @property
    def snap_zxid(self) -> int:
        return self.snapshot[0] if self.snapshot else 0

    def history(self) -> list[Entry]:
        """The logged txns after the snapshot: a new leader's ``history``."""
        return [e for e in self.log if e[0] > self.snap_zxid]

    def load(self) -> list[Entry]:
        """The tree a server rebuilds at boot and after ``Lost``: snapshot state, then the log after it."""
        return (list(self.snapshot[1]) if self.snapshot else []) + self.history()


class Link:
    """One leader↔learner TCP connection: FIFO per direction, reliable until it breaks."""

    __slots__ = ("dead", "ends", "last_at", "queue")

    def __init__(self, leader: Server, learner: Server) -> None:
        self.ends: dict[int, Any] = {leader.sid: leader.role, learner.sid: learner.role}
        self.queue: dict[int, deque[tuple[int, Packet | None]]] = {leader.sid: deque(), learner.sid: deque()}
        self.last_at = {leader.sid: 0, learner.sid: 0}
        self.dead = False

    def peer(self, sid: int) -> int:
        return next(s for s in self.ends if s != sid)


class Server:
    """One ensemble member: its disk, and what a crash loses (tree, group commit, role, links)."""

    def __init__(self, sid: int, observer: bool) -> None:
        self.sid = sid
        self.observer = observer
        self.disk = Disk()
        self.up = True
        self.gen = 0  # bumped on every role change and crash: stale fsync/connect events are ignored
        self.tick_token = 0
        self.tree: list[Entry] = []
        self.unflushed: list[Entry] = []
        self.flushing: list[Entry] = []
        self.election: Election | None = None
        self.role: Leader | Learner | None = None  # None while LOOKING
        self.serving_zxid = -1  # -1: not serving clients
        self.links: dict[int, Link] = {}
        self.needs_snap = False  # Config.snap_resync: a TRUNC fell below our snapshot

    def last_logged(self) -> int:
        for batch in (self.unflushed, self.flushing, self.disk.log):
            if batch:
                return batch[-1][0]
        return self.disk.snap_zxid


@dataclass
class Config:
    voters: int = 3
    observers: int = 0
    fault_ms: int = 12_000  # faults and writes happen during this phase
    tail_ms: int = 2_000  # writes continue this long after everything heals
    settle_ms: int = 150_000  # bound for convergence after the tail (vote backoff can reach 60 s)
    write_gap_ms: tuple[int, int] = (30, 300)
    fault_gap_ms: tuple[int, int] = (300, 2_500)
    max_history: int = 50_000
    rollover: int = 0xFFFFFFFF
    faults: tuple[str, ...] = ("crash", "reset", "partition", "isolate_leader")
    vote_loss: float = 0.1
    vote_dup: float = 0.1
    # Every Deliver must extend the committed sequence, even before UPTODATE.  Off, a pre-UPTODATE Deliver
    # is only counted, and the tree is checked when the learner serves.
    strict_deliver: bool = True
    # What quorum.py does: asked to truncate below its snapshot, a learner keeps its state, goes back to
    # election and next reports last zxid -1, which makes the leader send a SNAP.  Off: drop the newer
    # snapshot and reload what is left (unsafe: the scenarios below show it).
    snap_resync: bool = True


class Sim:
    def __init__(self, seed: int, cfg: Config) -> None:
        self.seed, self.cfg = seed, cfg
        self.rnd = random.Random(seed)
        n = cfg.voters + cfg.observers
        self.servers = {sid: Server(sid, sid > cfg.voters) for sid in range(1, n + 1)}
        self.voters = frozenset(range(1, cfg.voters + 1))
        self.q: list[tuple[int, int, Callable[..., None], tuple[Any, ...]]] = []
        self.seq = 0
        self.now = 0
        self.vote_loss, self.vote_dup = cfg.vote_loss, cfg.vote_dup
        self.faults_on = False
        self.writes_on = False
        self.blocked: set[tuple[int, int]] = set()  # (a, b) pairs that cannot talk (both orders)
        self.links: list[Link] = []
        self.committed: list[Entry] = []  # C: the global committed sequence
        self.epoch_leader: dict[int, tuple[int, int]] = {}  # epoch -> (sid, gen of its Leader core)
        self.writes = 0
        self.stats: Counter[str] = Counter()
        self.trace: deque[tuple[int, int, object]] = deque(maxlen=80)
        self.handlers: dict[type, Callable[[Server, Any], None]] = {
            Send: self._send,
            Append: self._append,
            Deliver: self._deliver,
            Committed: self._committed,
            Truncate: self._truncate,
            LoadSnapshot: self._load_snapshot,
            SaveEpochs: self._save_epochs,
            Serving: self._serving,
            Forwarded: self._forwarded,
            Touched: self._count,
            SyncDone: self._count,
            Disconnect: self._disconnect,
            Lost: self._lost,
        }

    # ------------------------------------------------------------ scheduling and reporting

    def at(self, t: int, fn: Callable[..., None], *args: Any) -> None:
        self.seq += 1
        heapq.heappush(self.q, (t, self.seq, fn, args))

    def run(self, until: int, stop: Callable[[], bool] | None = None, every: int = 200) -> bool:
        """Process events up to ``until``; with ``stop``, return as soon as it holds (checked every
        ``every`` ms of simulated time; 0: after every event).  Returns whether ``stop`` held."""
        q = self.q
        check_at = self.now
        while q and q[0][0] <= until:
            t, _, fn, args = heapq.heappop(q)
            self.now = t
            fn(*args)
            if stop is not None and t >= check_at:
                if stop():
                    return True
                check_at = t + every
        self.now = max(self.now, until)
        return stop is not None and stop()

    def note(self, sid: int, what: object) -> None:
        self.trace.append((self.now, sid, what))

    def fail(self, msg: str) -> None:
        lines = []
        for t, sid, what in self.trace:
            if isinstance(what, Send):
                p = what.pkt
                what = f"Send(->{what.dst}, {P(p.type).name} {zx(p.zxid)}{' +data' if p.data else ''})"
            elif isinstance(what, Append | Deliver):
                what = f"{type(what).__name__}({zx(what.zxid)}, {what.record.decode()})"
            elif isinstance(what, LoadSnapshot | Committed | Truncate | Serving):
                what = f"{type(what).__name__}({zx(what.zxid)})"
            lines.append(f"  {t:>7} s{sid}: {what}")
        state = "\n".join(
            f"  s{s.sid}: up={s.up} role={type(s.role).__name__} serving={zx(s.serving_zxid)} "
            f"tree=..{[zx(z) for z, _ in s.tree[-4:]]} disk.log=..{zx(last_zxid(s.disk.log))} "
            f"snap={zx(s.disk.snap_zxid)} epochs={s.disk.accepted_epoch}/{s.disk.current_epoch}"
            + (
                f" vote=({v.leader}, {zx(v.zxid)}, {v.peer_epoch})"
                if s.election and (v := s.election.proposal)
                else ""
            )
            for s in self.servers.values()
        )
        c = [zx(z) for z, _ in self.committed[-6:]]
        raise AssertionError(
            f"seed {self.seed} {self.cfg}\nt={self.now}: {msg}\nC (last): {c}\n{state}\nlast events:\n"
            + "\n".join(lines)
        )

    # ------------------------------------------------------------ network

    def cut(self, a: int, b: int) -> bool:
        return bool(self.blocked) and (a, b) in self.blocked

    def votes_out(self, src: int, out: list[tuple[int, Notification]]) -> None:
        rnd = self.rnd
        for dst, n in out:
            if rnd.random() < self.vote_loss:
                continue
            for _ in range(2 if rnd.random() < self.vote_dup else 1):
                self.at(self.now + rnd.randint(*VOTE_DELAY), self.vote_in, src, dst, n)

    def vote_in(self, src: int, dst: int, n: Notification) -> None:
        s = self.servers[dst]
        if not s.up or self.cut(src, dst):
            return
        assert s.election is not None
        self.votes_out(dst, s.election.receive(n, self.now))
        self.after_vote(s)

    def push(self, link: Link, dst: int, pkt: Packet | None) -> None:
        at = max(self.now + self.rnd.randint(*LINK_DELAY), link.last_at[dst])
        link.last_at[dst] = at
        link.queue[dst].append((at, pkt))
        self.at(at, self.wake, link, dst)

    def wake(self, link: Link, dst: int) -> None:
        """Deliver what is due on ``link`` towards ``dst``, in order; a cut stalls it (TCP retransmits)."""
        q = link.queue[dst]
        src = link.peer(dst)
        while q and q[0][0] <= self.now and not self.cut(src, dst):
            _, pkt = q.popleft()
            s = self.servers[dst]
            if pkt is None:  # the peer closed: FIN
                self.detach(link, dst)
                continue
            role = link.ends[dst]
            if not s.up or s.role is not role:
                continue
            if isinstance(role, Leader):
                self.act(s, role.receive(src, pkt, self.now))
            elif isinstance(role, Learner):
                self.act(s, role.receive(pkt, self.now))

    def connect(self, s: Server, role: Learner, attempt: int) -> None:
        if s.role is not role:
            return
        lead = self.servers[role.leader]
        if lead.up and isinstance(lead.role, Leader) and not self.cut(s.sid, lead.sid):
            old = lead.links.get(s.sid)
            if old is not None:  # the driver keys links by connection: the stale one is closed first
                self.close(old, lead.sid, notify=False)
            link = Link(lead, s)
            self.links.append(link)
            lead.links[s.sid] = s.links[lead.sid] = link
            self.note(s.sid, f"connected to {lead.sid}")
            self.act(s, role.connected(self.now))
        elif attempt < CONNECT_TRIES:
            self.at(self.now + CONNECT_RETRY_MS, self.connect, s, role, attempt + 1)
        else:
            self.act(s, [Lost(f"cannot connect to leader {role.leader}")])

    def close(self, link: Link, closer: int | None, notify: bool) -> None:
        """Break a link, dropping what is in flight.  ``closer`` None: a reset both ends see at once;
        otherwise the other end learns by a FIN that travels the link (``notify``) or never (power loss)."""
        if not link.dead:
            link.dead = True
            for q in link.queue.values():
                q.clear()
            if closer is None:
                for sid in link.ends:
                    self.detach(link, sid)
                return
            if notify:
                self.push(link, link.peer(closer), None)
        if closer is not None:
            self.detach(link, closer)

    def detach(self, link: Link, sid: int) -> None:
        """This end learns its link is gone: the leader core hears ``disconnected``, a learner is lost."""
        s = self.servers[sid]
        peer = link.peer(sid)
        if s.links.get(peer) is not link:
            return
        del s.links[peer]
        role = link.ends[sid]
        if not s.up or s.role is not role:
            return
        if isinstance(role, Leader):
            self.act(s, role.disconnected(peer))
        else:
            self.act(s, [Lost("link closed")])

    # ------------------------------------------------------------ life cycle

    def boot(self, s: Server) -> None:
        s.up = True
        s.tree = s.disk.load()
        peers = frozenset(x for x in self.servers if x != s.sid)
        s.election = Election(s.sid, self.voters, peers, last_zxid(s.tree), s.disk.current_epoch)
        self.note(s.sid, "boot")
        self.look(s)

    def look(self, s: Server) -> None:
        e = s.election
        assert e is not None
        e.last_zxid, e.current_epoch = last_zxid(s.tree), s.disk.current_epoch
        self.stats["rounds"] += 1
        self.votes_out(s.sid, e.start(self.now))
        self.restart_ticks(s)

    def restart_ticks(self, s: Server) -> None:
        s.tick_token += 1
        gap = ELECTION_TICK_MS if s.role is None else TIMING.tick_ms // 2
        self.at(self.now + gap, self.tick, s, s.tick_token)

    def tick(self, s: Server, token: int) -> None:
        if not s.up or token != s.tick_token:
            return
        role = s.role
        if role is None:
            assert s.election is not None
            self.votes_out(s.sid, s.election.tick(self.now))
            self.after_vote(s)
        else:
            self.act(s, role.tick(self.now))
        if s.up and token == s.tick_token:
            gap = ELECTION_TICK_MS if s.role is None else TIMING.tick_ms // 2
            self.at(self.now + gap, self.tick, s, token)

    def after_vote(self, s: Server) -> None:
        e = s.election
        if s.role is not None or e is None or e.outcome is None:
            return
        o = e.outcome
        s.gen += 1
        self.note(s.sid, f"decided {o.state.name} leader={o.leader} round={o.election_epoch}")
        if o.state == PeerState.LEADING:
            self.stats["leaders"] += 1
            if s.tree != s.disk.load():
                self.fail(f"s{s.sid} leads with a tree that is not its disk state")
            s.role = Leader(
                s.sid,
                self.voters,
                accepted_epoch=s.disk.accepted_epoch,
                current_epoch=s.disk.current_epoch,
                history=s.disk.history(),
                history_start=s.disk.snap_zxid,
                snapshot=lambda: (last_zxid(s.tree), encode(s.tree)),
                now=self.now,
                timing=TIMING,
                max_history=self.cfg.max_history,
                rollover=self.cfg.rollover,
            )
        else:
            role = Learner(
                s.sid,
                o.leader,
                observer=o.state == PeerState.OBSERVING,
                accepted_epoch=s.disk.accepted_epoch,
                current_epoch=s.disk.current_epoch,
                last_zxid=-1 if s.needs_snap else last_zxid(s.tree),
                now=self.now,
                timing=TIMING,
            )
            s.role = role
            self.at(self.now, self.connect, s, role, 1)
        self.restart_ticks(s)

    def crash(self, s: Server, down_ms: int, fin: bool | None = None) -> None:
        if fin is None:
            fin = self.rnd.random() < 0.5  # a killed process closes its sockets; a power loss does not
        self.note(s.sid, f"crash ({'FIN' if fin else 'silent'}), back in {down_ms} ms")
        self.stats["crashes"] += 1
        s.up, s.role, s.serving_zxid = False, None, -1
        s.gen += 1
        for link in list(s.links.values()):
            self.close(link, s.sid, notify=fin)
        s.links, s.unflushed, s.flushing, s.tree, s.election = {}, [], [], [], None
        self.at(self.now + down_ms, self.restart, s)

    def restart(self, s: Server) -> None:
        if not s.up:
            self.boot(s)

    # ------------------------------------------------------------ actions

    def act(self, s: Server, acts: list[Action]) -> None:
        role = s.role
        for a in acts:
            if s.role is not role or not s.up:
                return  # a Lost ended this role: what follows it is moot
            if not (type(a) is Send and a.pkt.type == P.PING):
                self.note(s.sid, a)
            self.handlers[type(a)](s, a)

    def _count(self, s: Server, a: Action) -> None:
        self.stats[type(a).__name__] += 1

    def _send(self, s: Server, a: Send) -> None:
        link = s.links.get(a.dst)
        if link is not None and not link.dead:
            self.push(link, a.dst, a.pkt)

    def _append(self, s: Server, a: Append) -> None:
        if isinstance(s.role, Leader) and epoch_of(a.zxid) != s.role.epoch:
            self.fail(f"s{s.sid} leader of epoch {s.role.epoch} logs {zx(a.zxid)}")
        if a.zxid <= s.last_logged():
            self.fail(f"s{s.sid} logs {zx(a.zxid)} after {zx(s.last_logged())}")
        s.unflushed.append((a.zxid, a.record))
        if not s.flushing:
            self.start_fsync(s)

    def start_fsync(self, s: Server) -> None:
        s.flushing, s.unflushed = s.unflushed, []
        self.at(self.now + self.rnd.randint(*FSYNC_DELAY), self.fsync_done, s, s.gen)

    def fsync_done(self, s: Server, gen: int) -> None:
        if gen != s.gen or not s.flushing:
            return
        batch, s.flushing = s.flushing, []
        s.disk.log.extend(batch)
        if s.unflushed:
            self.start_fsync(s)
        assert s.role is not None
        self.act(s, s.role.persisted(batch[-1][0]))

    def _deliver(self, s: Server, a: Deliver) -> None:
        if a.zxid <= last_zxid(s.tree):
            self.fail(f"s{s.sid} delivers {zx(a.zxid)} onto a tree at {zx(last_zxid(s.tree))}")
        s.tree.append((a.zxid, a.record))
        self.stats["delivered"] += 1
        if s.tree == self.committed[: len(s.tree)]:
            return
        if s.serving_zxid < 0 and not self.cfg.strict_deliver:
            self.stats["uncommitted deliveries before UPTODATE"] += 1
        else:
            self.fail(f"s{s.sid} delivered {zx(a.zxid)}: its tree is not a prefix of the committed sequence")

    def extend_committed(self, s: Server, entries: list[Entry]) -> None:
        c = self.committed
        n = min(len(c), len(entries))
        if c[:n] != entries[:n]:
            i = next(i for i in range(n) if c[i] != entries[i])
            self.fail(f"s{s.sid} commits {entries[i]} where {c[i]} was committed")
        if len(entries) > len(c):
            c.extend(entries[len(c) :])

    def _committed(self, s: Server, a: Committed) -> None:
        self.stats["commits"] += 1
        self.extend_committed(s, s.tree[: bisect.bisect_right(s.tree, a.zxid, key=lambda e: e[0])])

    def _truncate(self, s: Server, a: Truncate) -> None:
        self.stats["truncates"] += 1
        if s.unflushed or s.flushing:
            self.fail(f"s{s.sid} truncates with unflushed appends")
        if self.cfg.snap_resync and s.disk.snap_zxid > a.zxid:
            s.needs_snap = True
            self._lost(s, Lost("asked to truncate below our snapshot: resync by SNAP"))
            return
        keep = [e for e in s.tree if e[0] <= a.zxid]
        s.disk.log = [e for e in s.disk.log if e[0] <= a.zxid]
        if s.disk.snap_zxid > a.zxid:
            s.disk.snapshot = None
        s.tree = s.disk.load()
        if s.tree != keep:
            self.fail(f"s{s.sid} truncated to {zx(a.zxid)} but its disk cannot rebuild the state there")

    def _load_snapshot(self, s: Server, a: LoadSnapshot) -> None:
        self.stats["snapshots"] += 1
        if s.unflushed or s.flushing:
            self.fail(f"s{s.sid} loads a snapshot with unflushed appends")
        state = decode(a.payload)
        if last_zxid(state) != a.zxid or any(x[0] >= y[0] for x, y in itertools.pairwise(state)):
            self.fail(f"snapshot at {zx(a.zxid)} is not a tree up to there")
        s.disk.snapshot, s.disk.log, s.tree = (a.zxid, state), [], list(state)
        s.needs_snap = False

    def _save_epochs(self, s: Server, a: SaveEpochs) -> None:
        d = s.disk
        if a.accepted < d.accepted_epoch or a.current < d.current_epoch or a.current > a.accepted:
            self.fail(f"s{s.sid} epochs {d.accepted_epoch}/{d.current_epoch} -> {a.accepted}/{a.current}")
        d.accepted_epoch, d.current_epoch = a.accepted, a.current

    def _serving(self, s: Server, a: Serving) -> None:
        s.serving_zxid = a.zxid
        established = getattr(s.election, "established", None)  # the fix for finding F4, once it exists
        if established is not None:
            established(epoch_of(a.zxid))
        if isinstance(s.role, Leader):
            epoch = epoch_of(a.zxid)
            first = self.epoch_leader.setdefault(epoch, (s.sid, s.gen))  # gen: this Leader core
            if first != (s.sid, s.gen):
                self.fail(f"two leaders serve epoch {epoch}: s{first[0]} and s{s.sid}")
            self.stats["established"] += 1
            if s.tree[: len(self.committed)] != self.committed:
                self.fail(f"s{s.sid} leads epoch {epoch} without every committed txn")
            self.extend_committed(s, s.tree)  # a quorum acked NEWLEADER: the whole history is committed
        elif s.tree != self.committed[: len(s.tree)]:
            self.fail(f"s{s.sid} serves a tree that is not a prefix of the committed sequence")

    def _forwarded(self, s: Server, a: Forwarded) -> None:
        self.stats["forwarded"] += 1
        self.local_write(s, a.data)

    def _disconnect(self, s: Server, a: Disconnect) -> None:
        link = s.links.get(a.sid)
        if link is not None:
            self.close(link, s.sid, notify=True)

    def _lost(self, s: Server, a: Lost) -> None:
        """Back to LOOKING: drain the group commit, close links, reload the tree from disk."""
        self.stats["lost"] += 1
        self.stats["lost: " + " ".join(w for w in a.reason.split() if not any(c.isdigit() for c in w))] += 1
        if "rolled over" in a.reason:
            self.stats["rollovers"] += 1
        s.role, s.serving_zxid = None, -1
        s.gen += 1
        for link in list(s.links.values()):
            self.close(link, s.sid, notify=True)
        s.disk.log.extend(s.flushing + s.unflushed)
        s.flushing, s.unflushed = [], []
        s.tree = s.disk.load()
        self.look(s)

    # ------------------------------------------------------------ workload

    def local_write(self, s: Server, data: bytes) -> None:
        """The leader applies a client write to its tree (speculatively), then proposes it."""
        assert isinstance(s.role, Leader)
        z = max(last_zxid(s.tree), s.serving_zxid) + 1
        s.tree.append((z, data))
        self.act(s, s.role.propose(z, data))

    def write(self, data: bytes | None = None) -> None:
        """A client write at a random serving server."""
        if data is None:
            if not self.writes_on:
                return
            self.at(self.now + self.rnd.randint(*self.cfg.write_gap_ms), self.write)
        serving = [s for s in self.servers.values() if s.up and s.serving_zxid >= 0]
        if not serving:
            return
        s = self.rnd.choice(serving)
        if isinstance(s.role, Leader):
            self.writes += 1
            self.local_write(s, data or f"w{self.writes}@{s.sid}".encode())
        elif isinstance(s.role, Learner):
            if data is None and self.rnd.random() < 0.1:
                self.act(s, s.role.sync())  # exercised only: sync+read is not linearizable in ZooKeeper
                return
            self.writes += 1
            self.act(s, s.role.forward(data or f"w{self.writes}@{s.sid}".encode()))

    # ------------------------------------------------------------ faults

    def leader(self) -> Server | None:
        found = [
            s for s in self.servers.values() if s.up and isinstance(s.role, Leader) and s.serving_zxid >= 0
        ]
        return found[0] if len(found) == 1 else None

    def fault(self) -> None:
        if not self.faults_on:
            return
        rnd = self.rnd
        self.at(self.now + rnd.randint(*self.cfg.fault_gap_ms), self.fault)
        kind = rnd.choice(self.cfg.faults)
        up = [s for s in self.servers.values() if s.up]
        if kind == "crash" and up:
            self.crash(rnd.choice(up), rnd.randint(100, 3_000))
        elif kind == "reset":
            self.links = [ln for ln in self.links if not ln.dead or any(ln.queue.values())]
            live = [ln for ln in self.links if not ln.dead]
            if live:
                self.reset(rnd.choice(live))
        elif kind in ("partition", "isolate_leader") and not self.blocked:
            sids = list(self.servers)
            lead = self.leader()
            if kind == "isolate_leader" and lead is not None:
                alone = {lead.sid}
            else:
                alone = set(rnd.sample(sids, rnd.randint(1, len(sids) - 1)))
            self.partition(alone, reset=rnd.random() < 0.3)
            self.at(self.now + rnd.randint(500, 6_000), self.heal)

    def reset(self, link: Link) -> None:
        self.stats["resets"] += 1
        self.note(0, f"reset link {'-'.join(map(str, link.ends))}")
        self.close(link, None, notify=True)

    def partition(self, alone: set[int], reset: bool = False) -> None:
        self.stats["partitions"] += 1
        self.block({(a, b) for a in alone for b in self.servers if b not in alone}, reset)

    def block(self, pairs: set[tuple[int, int]], reset: bool = False) -> None:
        """Cut these pairs: votes are dropped, links stall (or, with ``reset``, break at once)."""
        self.note(0, f"block {sorted(pairs)} ({'reset' if reset else 'stall'})")
        self.blocked |= pairs | {(b, a) for a, b in pairs}
        if reset:
            for link in self.links:
                a, b = link.ends
                if not link.dead and self.cut(a, b):
                    self.close(link, None, notify=True)

    def heal(self) -> None:
        if not self.blocked:
            return
        self.note(0, "heal")
        self.blocked = set()
        self.links = [ln for ln in self.links if not ln.dead or any(ln.queue.values())]
        for link in self.links:
            for dst, q in link.queue.items():
                if q:
                    self.at(self.now + 1, self.wake, link, dst)

    # ------------------------------------------------------------ scenario and liveness

    def converged(self) -> bool:
        lead = self.leader()
        if lead is None or lead.unflushed or lead.flushing:
            return False
        for s in self.servers.values():
            if not s.up or s.serving_zxid < 0 or s.tree != lead.tree:
                return False
            if s is not lead and (not isinstance(s.role, Learner) or s.role.leader != lead.sid):
                return False
        return self.committed == lead.tree

    def vote_split(self) -> str:
        """Diagnosis: do the settled servers report different votes to a server that is looking?"""
        votes = {
            s.sid: s.election.proposal
            for s in self.servers.values()
            if s.up and s.role is not None and s.election is not None and s.sid in self.voters
        }
        if len(set(votes.values())) < 2:
            return ""
        looking = [s.sid for s in self.servers.values() if s.up and s.role is None]
        return f"; looking: {looking}, settled voters report different votes: {votes}"

    def start(self) -> None:
        for s in self.servers.values():
            self.boot(s)
        self.faults_on, self.writes_on = bool(self.cfg.faults), True
        self.at(self.rnd.randint(*self.cfg.fault_gap_ms), self.fault)
        self.at(self.rnd.randint(*self.cfg.write_gap_ms), self.write)

    def quiet(self) -> None:
        """No new faults: heal, restart the crashed, let votes through."""
        self.faults_on = False
        self.heal()
        self.vote_loss = self.vote_dup = 0.0
        for s in self.servers.values():
            if not s.up:
                self.boot(s)

    def settle(self) -> None:
        """Liveness: one serving leader, everyone serving it with the same tree, equal to C; then a new
        write commits everywhere (retried if it met the zxid rollover, which drops it)."""
        for _ in range(3):
            if not self.run(self.now + self.cfg.settle_ms, self.converged):
                self.fail("no convergence after the quiet period" + self.vote_split())
            probe = f"probe@{self.now}".encode()
            rollovers = self.stats["rollovers"]
            self.write(probe)

            def done(probe: bytes = probe) -> bool:
                return self.converged() and any(r == probe for _, r in reversed(self.committed))

            if self.run(self.now + self.cfg.settle_ms, done):
                return
            if self.stats["rollovers"] == rollovers:
                break
        self.fail("a write after convergence did not commit everywhere")

    def scenario(self) -> Sim:
        self.start()
        self.run(self.cfg.fault_ms)
        self.quiet()
        self.run(self.now + self.cfg.tail_ms)
        self.writes_on = False
        self.settle()
        return self


# ---------------------------------------------------------------- tests

ALL_FAULTS = Config.faults
SOAK_RUNS = int(os.environ.get("ZAB_SIM_RUNS", "0"))  # > 0: a long soak, spread over the configurations
SHORT_RUNS = SOAK_RUNS // 4 or 750  # per configuration
LONG_RUNS = SOAK_RUNS // 100 or 8


def soak_config(name: str, seed: int, long: bool = False) -> Config:
    """Each seed draws its own fault mix: a small history (SNAP), fault rate and kinds, vote loss."""
    r = random.Random(f"{name}/{seed}")
    voters, _, observers = name.partition("+")
    return Config(
        voters=int(voters),
        observers=int(observers or 0),
        fault_ms=120_000 if long else r.choice([6_000, 12_000, 20_000]),
        fault_gap_ms=r.choice([(100, 800), (300, 2_500)]),
        max_history=r.choice([50_000, 50_000, 4, 12]),
        faults=r.choice([ALL_FAULTS, ALL_FAULTS, ("crash",), ("partition", "isolate_leader", "reset")]),
        vote_loss=r.choice([0.0, 0.1, 0.3]),
        vote_dup=r.choice([0.0, 0.1]),
    )


def soak(name: str, seeds: range, long: bool = False) -> Counter[str]:
    """Run every seed; print totals, and fail on any seed that is not a known finding."""
    totals: Counter[str] = Counter()
    failures: dict[int, str] = {}
    sim_ms = 0
    started = time.perf_counter()
    for seed in seeds:
        sim = Sim(seed, soak_config(name, seed, long))
        try:
            sim.scenario()
        except AssertionError as e:
            failures[seed] = str(e)
        totals.update(sim.stats)
        totals["runs"] += 1
        totals["committed txns"] += len(sim.committed)
        sim_ms += sim.now
    wall = time.perf_counter() - started
    keys = ("runs", "established", "committed txns", "truncates", "snapshots", "crashes", "partitions")
    print(
        f"\n{name}{' long' if long else ''}: {sim_ms / 1000:.0f} s simulated, {wall:.1f} s wall; "
        + ", ".join(f"{k} {totals[k]}" for k in keys)
        + f"; other {dict((k, v) for k, v in totals.items() if k not in keys)}"
    )
    for seed, msg in failures.items():
        print(f"    {name} seed {seed}{' long' if long else ''}: {msg.splitlines()[1]}")
    assert not failures, next(iter(failures.values()))
    return totals


@pytest.mark.parametrize("name", ["3", "3+1", "5", "5+1"])
def test_short_runs_under_faults(name: str) -> None:
    totals = soak(name, range(SHORT_RUNS))
    assert totals["truncates"] and totals["snapshots"], "TRUNC and SNAP paths must be exercised"
    assert totals["committed txns"] > 20 * totals["runs"], "the workload must make progress"


@pytest.mark.parametrize("name", ["3", "3+1", "5", "5+1"])
def test_long_runs_under_faults(name: str) -> None:
    soak(name, range(LONG_RUNS), long=True)


def test_zxid_rollover_forces_a_new_epoch() -> None:
    """Leaders hit the (small) counter limit: each goes Lost, a new epoch is elected, nothing is lost."""
    epochs = []
    for seed in range(60):
        cfg = Config(voters=3 + 2 * (seed % 2), rollover=6, faults=() if seed % 3 else ALL_FAULTS)
        sim = Sim(seed, cfg).scenario()
        assert sim.stats["rollovers"] >= 1
        epochs.append(len(sim.epoch_leader))
        assert len({z >> 32 for z, _ in sim.committed}) >= 3, "commits span several epochs"
        assert all(z & 0xFFFFFFFF < 6 for z, _ in sim.committed)
    assert min(epochs) > 3


def converged_sim(seed: int, voters: int, observers: int = 0, **cfg: Any) -> Sim:
    """A quiet ensemble (no random faults or writes) that has elected and synced a leader."""
    sim = Sim(seed, Config(voters=voters, observers=observers, faults=(), vote_loss=0, vote_dup=0, **cfg))
    for s in sim.servers.values():
        sim.boot(s)
    assert sim.run(30_000, sim.converged)
    return sim


@pytest.mark.parametrize("voters", [3, 5])
@pytest.mark.parametrize("seed", range(30))
def test_leader_cut_off_from_the_majority_steps_down(voters: int, seed: int) -> None:
    """A leader that can no longer hear a quorum (links stall, no FIN) gives up within syncLimit; the
    majority elects a leader in a higher epoch; the old leader rejoins after the heal."""
    t = TIMING
    sim = converged_sim(seed, voters)
    old = sim.leader()
    assert old is not None and old.role is not None
    role, epoch = old.role, epoch_of(old.serving_zxid)
    sim.writes_on = True
    sim.write()
    cut = sim.now
    sim.partition({old.sid})
    assert sim.run(cut + (t.sync_limit + 1) * t.tick_ms, lambda: old.role is not role, every=0)  # Lost

    def new_epoch() -> bool:
        lead = sim.leader()
        return lead is not None and lead is not old and epoch_of(lead.serving_zxid) > epoch

    assert sim.run(cut + (t.sync_limit + t.init_limit + 2) * t.tick_ms, new_epoch, every=0)
    assert old.serving_zxid < 0, "the cut-off server serves nobody"
    sim.run(sim.now + 3_000)
    sim.writes_on = False
    sim.heal()
    sim.settle()


# ---- what the simulator found in the first core, each as a short directed scenario (regression tests)


def followers(sim: Sim, lead: Server) -> list[Server]:
    return [s for s in sim.servers.values() if s is not lead and not s.observer]


def test_learners_deliver_only_committed_txns() -> None:
    """A new leader must not COMMIT its history to learners before a quorum acked NEWLEADER."""
    sim = converged_sim(1, 3, strict_deliver=True)
    lead = sim.leader()
    assert lead is not None
    _, g = followers(sim, lead)
    sim.crash(g, 8_000)
    sim.partition({lead.sid})
    sim.local_write(lead, b"x")  # logged by the leader alone: not committed; it steps down
    sim.run(sim.now + 3_000)
    sim.heal()  # lead (it has x) and f elect lead; its DIFF COMMITs x to f before NEWLEADER is acked
    sim.run(sim.now + 10_000)
    sim.settle()


def speculative_snap_then_trunc(**cfg: Any) -> None:
    """An observer gets a SNAP holding a txn only the leader has; the followers elect a leader without it."""
    sim = converged_sim(1, 3, 1, max_history=2, **cfg)
    lead = sim.leader()
    assert lead is not None
    obs = sim.servers[4]
    sim.crash(obs, 10**9)
    for i in range(5):
        sim.local_write(lead, b"c%d" % i)
    assert sim.run(sim.now + 1_000, lambda: len(sim.committed) == 5)
    sim.block({(lead.sid, f.sid) for f in followers(sim, lead)})
    sim.local_write(lead, b"x")  # uncommitted, only on the leader, yet in its tree
    sim.boot(obs)  # joins the leader (the followers still follow it) and gets SNAP, x included
    sim.run(sim.now + 1_000, lambda: sim.stats["snapshots"] == 1, every=0)
    sim.run(sim.now + 20_000)  # the followers elect a leader without x; it TRUNCs obs below its snapshot
    sim.heal()
    sim.settle()


def unestablished_snap_then_trunc(**cfg: Any) -> None:
    """An observer gets a SNAP in the initial sync of a leader that never establishes its epoch."""
    sim = converged_sim(0, 3, 1, max_history=2, **cfg)
    a, b, c, obs = (sim.servers[sid] for sid in (1, 2, 3, 4))
    assert sim.leader() is c
    sim.crash(obs, 10**9)
    sim.crash(b, 10**9)
    for i in range(5):
        sim.local_write(c, b"c%d" % i)
    assert sim.run(sim.now + 1_000, lambda: len(sim.committed) == 5)
    sim.boot(b)  # rejoins c behind its history: a (committed) SNAP, so b's state starts at a snapshot
    assert sim.run(sim.now + 3_000, lambda: b.serving_zxid >= 0 and b.disk.snapshot is not None)
    sim.crash(c, 10**9)
    assert sim.run(sim.now + 5_000, lambda: sim.leader() is b and a.serving_zxid >= 0)  # epoch 2
    sim.block({(a.sid, b.sid)})
    sim.local_write(b, b"t")  # on b alone; b steps down
    assert sim.run(sim.now + 5_000, lambda: not isinstance(b.role, Leader))
    sim.heal()
    sim.boot(obs)  # b (it has t) leads again; its initial sync SNAPs obs with t, DIFFs a ...

    def syncing() -> bool:
        return isinstance(b.role, Leader) and b.role.phase == "sync"

    assert sim.run(sim.now + 5_000, syncing, every=0)
    sim.block({(a.sid, b.sid)})  # ... but a never gets it: the epoch is not established
    sim.run(sim.now + 500)
    sim.crash(b, 5_000)
    sim.boot(c)  # a and c elect a leader without t; it TRUNCs obs below its snapshot
    sim.run(sim.now + 10_000)
    sim.heal()
    sim.settle()


@pytest.mark.parametrize("scenario", [speculative_snap_then_trunc, unestablished_snap_then_trunc])
def test_a_learner_asked_to_truncate_below_its_snapshot_resyncs_by_snap(
    scenario: Callable[..., None],
) -> None:
    """A SNAP can carry txns that are later truncated; the learner must resync by SNAP, not drop its state."""
    scenario(snap_resync=True)


@pytest.mark.parametrize("scenario", [speculative_snap_then_trunc, unestablished_snap_then_trunc])
def test_dropping_the_newer_snapshot_instead_is_unsafe(scenario: Callable[..., None]) -> None:
    """The naive Truncate (drop the newer snapshot, reload the rest): the simulator must catch it."""
    with pytest.raises(AssertionError, match="cannot rebuild the state there"):
        scenario(snap_resync=False)


def test_a_reconnecting_follower_serves_only_committed_txns() -> None:
    """A follower that logged an uncommitted proposal and rejoins must be truncated, not DIFFed."""
    sim = converged_sim(1, 5)
    lead = sim.leader()
    assert lead is not None
    f, *rest = followers(sim, lead)
    sim.block({(lead.sid, o.sid) for o in rest})  # the leader keeps only f: no quorum for new txns
    sim.local_write(lead, b"x")
    assert sim.run(sim.now + 100, lambda: any(r == b"x" for _, r in f.disk.log), every=0)
    sim.reset(f.links[lead.sid])  # f's ACK is lost with the link; f rejoins at once
    sim.run(sim.now + 20_000)  # f serves x; then x is truncated away when the majority elects anew
    sim.heal()
    sim.settle()


def test_restarted_servers_join_an_established_ensemble() -> None:
    """Out-of-election votes match on (leader, epoch) (ZOOKEEPER-1732); members report the current epoch."""
    sim = converged_sim(0, 5)
    lead = sim.leader()
    assert lead is not None
    stale, f2, f3, _ = followers(sim, lead)
    sim.crash(stale, 100, fin=True)
    assert sim.run(sim.now + 2_000, lambda: stale.role is not None, every=0)  # decided, not yet connected
    sim.crash(lead, 100, fin=True)  # re-elected by the others within stale's connect retries
    assert sim.run(sim.now + 5_000, lambda: all(s.serving_zxid >= 0 for s in sim.servers.values()))
    sim.crash(f2, 100, fin=True)  # the leader keeps a quorum (itself, stale, f4); f2 and f3 come back
    sim.crash(f3, 100, fin=True)  # to members reporting two different votes for it
    sim.settle()


def test_a_committed_txn_survives_a_follower_crash_during_sync() -> None:
    """currentEpoch is taken (and NEWLEADER acked) only once the synced txns are fsynced (ZOOKEEPER-4646)."""
    sim = converged_sim(0, 3)
    lead = sim.leader()
    assert lead is not None
    f, g = followers(sim, lead)
    sim.crash(g, 10**9)
    sim.local_write(lead, b"x")
    assert sim.run(sim.now + 1_000, lambda: len(sim.committed) == 1)  # x is on lead and f
    sim.crash(lead, 10**9)
    sim.boot(g)  # f leads epoch 2 and syncs g: DIFF with x, NEWLEADER
    assert sim.run(sim.now + 5_000, lambda: g.disk.current_epoch == 2, every=0)
    sim.crash(g, 100, fin=False)  # currentEpoch 2 is on g's disk; x is still in its group commit
    sim.crash(f, 20_000, fin=True)
    sim.boot(lead)  # g (epoch 2, nothing logged) beats lead (epoch 1, x): g leads and TRUNCs x away
    sim.run(sim.now + 10_000)
    sim.settle()
