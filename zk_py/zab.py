"""ZooKeeper Atomic Broadcast as two pure state machines: :class:`Leader` and :class:`Learner`.

Packets and clock readings go in; actions come out (packets to send, records to log, txns to
apply, epochs to persist).  No sockets, files or clocks: the asyncio edge (``quorum.py``) and
the deterministic simulator in the tests drive the same code.  The phases follow upstream
(reference/zookeeper.md §15):

* discovery: learners send FOLLOWERINFO/OBSERVERINFO with their accepted epoch; once a quorum of
  voters (the leader included) is in, the new epoch is ``max(accepted) + 1``, persisted as
  ``acceptedEpoch`` and announced with LEADERINFO; learners answer ACKEPOCH with their
  ``currentEpoch`` and last logged zxid, and the leader gives up if one of a quorum is ahead;
* synchronisation: each learner gets DIFF (the txns it lacks), TRUNC (+ the txns after the
  common point) or SNAP (the whole tree), then NEWLEADER; a quorum of NEWLEADER acks (each sent
  only once the learner's log is fsynced) establishes the epoch; UPTODATE lets learners serve;
* broadcast: PROPOSAL → an ACK from a quorum (each after the proposal is fsynced; the leader's
  own ack is its own fsync) → COMMIT, in zxid order; observers get INFORM instead.

Links are TCP: FIFO and reliable while they last.  A broken link, a silent peer (syncLimit) or
a protocol violation yields :class:`Lost` and the server goes back to leader election.
"""

from __future__ import annotations

import bisect
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum

from .election import has_quorum

COUNTER_MASK = 0xFFFFFFFF
PROTOCOL_VERSION = 0x10000
_INT = struct.Struct("!i")
_LEARNER_INFO = struct.Struct("!qi")
_TOUCH = struct.Struct("!qi")


class P(IntEnum):
    """QuorumPacket types, numbered as upstream's ``Leader`` constants."""

    REQUEST = 1
    PROPOSAL = 2
    ACK = 3
    COMMIT = 4
    PING = 5
    REVALIDATE = 6
    SYNC = 7
    INFORM = 8
    NEWLEADER = 10
    FOLLOWERINFO = 11
    UPTODATE = 12
    DIFF = 13
    TRUNC = 14
    SNAP = 15
    OBSERVERINFO = 16
    LEADERINFO = 17
    ACKEPOCH = 18


def epoch_of(zxid: int) -> int:
    return zxid >> 32


def make_zxid(epoch: int, counter: int) -> int:
    return (epoch << 32) | (counter & COUNTER_MASK)


@dataclass(frozen=True, slots=True)
class Packet:
    type: int
    zxid: int = 0
    data: bytes = b""


@dataclass(frozen=True, slots=True)
class Timing:
    tick_ms: int = 2000
    init_limit: int = 10
    sync_limit: int = 5


# ---------------------------------------------------------------- actions


@dataclass(frozen=True, slots=True)
class Send:
    dst: int
    pkt: Packet


@dataclass(frozen=True, slots=True)
class Append:
    """Log this record; report :meth:`persisted` once it (and all before it) is fsynced."""

    zxid: int
    record: bytes


@dataclass(frozen=True, slots=True)
class Deliver:
    """A committed txn for a learner to apply to its tree."""

    zxid: int
    record: bytes


@dataclass(frozen=True, slots=True)
class Committed:
    """Leader: everything up to ``zxid`` is committed (the tree already holds it)."""

    zxid: int


@dataclass(frozen=True, slots=True)
class Truncate:
    """Drop every logged txn after ``zxid`` and reload the tree from disk."""

    zxid: int


@dataclass(frozen=True, slots=True)
class LoadSnapshot:
    """Replace the tree (and the on-disk state) with the leader's snapshot at ``zxid``."""

    zxid: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class SaveEpochs:
    """Persist acceptedEpoch/currentEpoch before anything that follows is sent."""

    accepted: int
    current: int


@dataclass(frozen=True, slots=True)
class Serving:
    """Start serving clients; the tree's zxid moves to ``zxid`` (epoch << 32)."""

    zxid: int


@dataclass(frozen=True, slots=True)
class Forwarded:
    """Leader: a client request a learner forwarded (REQUEST)."""

    src: int
    data: bytes


@dataclass(frozen=True, slots=True)
class Touched:
    """Leader: session ids a learner's clients kept alive, with their timeouts."""

    sessions: tuple[tuple[int, int], ...]


@dataclass(frozen=True, slots=True)
class SyncDone:
    """Learner: the oldest pending ``sync`` may now be answered (all before it is applied)."""


@dataclass(frozen=True, slots=True)
class Disconnect:
    """Leader: drop this learner's link (silent too long, or misbehaving)."""

    sid: int


@dataclass(frozen=True, slots=True)
class Lost:
    """Leave this role and go back to leader election."""

    reason: str


Action = (
    Send
    | Append
    | Deliver
    | Committed
    | Truncate
    | LoadSnapshot
    | SaveEpochs
    | Serving
    | Forwarded
    | Touched
    | SyncDone
    | Disconnect
    | Lost
)


def encode_touches(sessions: list[tuple[int, int]]) -> bytes:
    return b"".join(_TOUCH.pack(s, t) for s, t in sessions)


def decode_touches(data: bytes) -> tuple[tuple[int, int], ...]:
    n = len(data) // _TOUCH.size
    return tuple(_TOUCH.unpack_from(data, i * _TOUCH.size) for i in range(n))


def learner_info(sid: int) -> bytes:
    return _LEARNER_INFO.pack(sid, PROTOCOL_VERSION)


# ---------------------------------------------------------------- leader


@dataclass
class _LearnerView:
    sid: int
    observer: bool
    accepted_epoch: int
    last_heard: int
    acked_epoch: bool = False
    last_zxid: int = -1
    current_epoch: int = -1
    forwarding: bool = False  # synced from the leader's history: gets every later proposal/commit
    newleader_acked: bool = False
    uptodate_sent: bool = False
    uptodate_after: int = 0  # SNAP included uncommitted proposals up to here: wait for them


@dataclass
class _Proposal:
    zxid: int
    record: bytes
    acks: set[int] = field(default_factory=set)


class Leader:
    """The leader's side of ZAB for one epoch attempt.

    ``history`` holds the logged txns after ``history_start`` (the zxid of the state that a SNAP
    would have to replace); ``snapshot()`` serialises the leader's tree (zxid, payload).
    """

    def __init__(
        self,
        sid: int,
        voters: frozenset[int],
        *,
        accepted_epoch: int,
        current_epoch: int,
        history: list[tuple[int, bytes]],
        history_start: int,
        snapshot: Callable[[], tuple[int, bytes]],
        now: int,
        timing: Timing = Timing(),
        max_history: int = 50_000,
        rollover: int = COUNTER_MASK,
    ) -> None:
        self.sid = sid
        self.voters = voters
        self.accepted_epoch = accepted_epoch
        self.current_epoch = current_epoch
        self.log = list(history)
        self.history_start = history_start
        self.last_zxid = history[-1][0] if history else history_start
        self.committed = self.last_zxid
        self.snapshot = snapshot
        self.timing = timing
        self.max_history = max_history
        self.rollover = rollover
        self.phase = "discovery"
        self.epoch = -1
        self.learners: dict[int, _LearnerView] = {}
        self.outstanding: dict[int, _Proposal] = {}
        self.pending_syncs: list[tuple[int, int]] = []  # (learner, answer once committed >= zxid)
        self.deadline = now + timing.init_limit * timing.tick_ms
        self.next_ping = now
        self.started_at = now

    # ---- queries

    def synced_followers(self) -> list[int]:
        return sorted(s for s, v in self.learners.items() if v.uptodate_sent and not v.observer)

    def synced_observers(self) -> list[int]:
        return sorted(s for s, v in self.learners.items() if v.uptodate_sent and v.observer)

    def pending_sync_count(self) -> int:
        return sum(1 for v in self.learners.values() if v.acked_epoch and not v.uptodate_sent)

    def _quorum(self, sids: set[int]) -> bool:
        return has_quorum(sids | {self.sid}, self.voters)

    # ---- inputs

    def receive(self, src: int, pkt: Packet, now: int) -> list[Action]:
        view = self.learners.get(src)
        t = pkt.type
        if t in (P.FOLLOWERINFO, P.OBSERVERINFO):
            return self._info(src, pkt, now)
        if view is None:
            return [Disconnect(src)]  # anything before FOLLOWERINFO is a protocol violation
        view.last_heard = now
        if t == P.ACK:
            return self._ack(view, pkt.zxid)
        if t == P.PING:
            return [Touched(decode_touches(pkt.data))] if pkt.data else []
        if t == P.REQUEST:
            return [Forwarded(src, pkt.data)] if self.phase == "broadcast" else []
        if t == P.SYNC:
            if self.committed >= self.last_zxid:
                return [Send(src, Packet(P.SYNC, self.last_zxid))]
            self.pending_syncs.append((src, self.last_zxid))
            return []
        if t == P.ACKEPOCH:
            return self._ack_epoch(view, pkt)
        return []

    def disconnected(self, src: int) -> list[Action]:
        self.learners.pop(src, None)
        self.pending_syncs = [(s, z) for s, z in self.pending_syncs if s != src]
        return []

    def _info(self, src: int, pkt: Packet, now: int) -> list[Action]:
        observer = pkt.type == P.OBSERVERINFO
        if src == self.sid or (not observer and src not in self.voters):
            return [Disconnect(src)]
        self.learners[src] = _LearnerView(src, observer, epoch_of(pkt.zxid), now)
        if self.epoch >= 0:
            return [Send(src, self._leaderinfo())]
        infos = {s for s, v in self.learners.items() if not v.observer}
        if not self._quorum(infos):
            return []
        self.epoch = max([self.accepted_epoch] + [v.accepted_epoch for v in self.learners.values()]) + 1
        self.accepted_epoch = self.epoch
        acts: list[Action] = [SaveEpochs(self.epoch, self.current_epoch)]
        acts += [Send(s, self._leaderinfo()) for s in sorted(self.learners)]
        self.deadline = now + self.timing.init_limit * self.timing.tick_ms
        return acts

    def _leaderinfo(self) -> Packet:
        return Packet(P.LEADERINFO, make_zxid(self.epoch, 0), _INT.pack(PROTOCOL_VERSION))

    def _ack_epoch(self, view: _LearnerView, pkt: Packet) -> list[Action]:
        if self.epoch < 0 or view.acked_epoch:
            return [Disconnect(view.sid)]
        view.acked_epoch = True
        view.last_zxid = pkt.zxid
        view.current_epoch = _INT.unpack(pkt.data[:4])[0] if len(pkt.data) >= 4 else -1
        if self.phase == "discovery":
            if not view.observer and (view.current_epoch, view.last_zxid) > (
                self.current_epoch,
                self.last_zxid,
            ):
                return [
                    Lost(
                        f"follower {view.sid} is ahead of the leader (epoch {view.current_epoch}, "
                        f"zxid 0x{view.last_zxid:x})"
                    )
                ]
            acked = {s for s, v in self.learners.items() if v.acked_epoch and not v.observer}
            if not self._quorum(acked):
                return []
            self.phase = "sync"
            self.current_epoch = self.epoch
            acts: list[Action] = [SaveEpochs(self.epoch, self.epoch)]
            for v in sorted(self.learners.values(), key=lambda v: v.sid):
                if v.acked_epoch:
                    acts += self._sync_learner(v)
            return acts
        return self._sync_learner(view)

    def _sync_learner(self, v: _LearnerView) -> list[Action]:
        """DIFF, TRUNC+diff or SNAP, then NEWLEADER; from here on the learner gets every proposal."""
        peer = v.last_zxid
        dst = v.sid
        acts: list[Action] = []
        zxids = [z for z, _ in self.log]
        i = bisect.bisect_left(zxids, peer)
        known = i < len(zxids) and zxids[i] == peer
        if peer > self.history_start and (not known or peer > self.committed):
            # The learner logged txns we never had, or have not committed: roll it back to the last
            # point we share at or below our commit point and resend the rest (upstream: TRUNC to
            # maxCommittedLog).  A DIFF would let it serve them before their COMMIT, and never re-ack.
            prev = self.history_start
            for z in zxids:
                if z >= peer or z > self.committed:
                    break
                prev = z
            acts.append(Send(dst, Packet(P.TRUNC, prev)))
            start = _index_after(zxids, prev)
        elif peer == self.last_zxid:
            acts.append(Send(dst, Packet(P.DIFF, self.last_zxid)))
            start = len(self.log)
        elif peer >= self.history_start:
            acts.append(Send(dst, Packet(P.DIFF, self.last_zxid)))
            start = _index_after(zxids, peer)
        else:
            snap_zxid, payload = self.snapshot()
            acts.append(Send(dst, Packet(P.SNAP, snap_zxid, payload)))
            v.uptodate_after = snap_zxid
            start = _index_after(zxids, snap_zxid)
        established = self.phase == "broadcast"
        for z, rec in self.log[start:]:
            if z > self.committed and v.observer:
                continue  # in flight: its INFORM follows with everyone else's
            acts.append(Send(dst, Packet(P.PROPOSAL, z, rec)))
            if z <= self.committed and established:  # before that, _establish commits the history
                acts.append(Send(dst, Packet(P.COMMIT, z)))
        acts.append(Send(dst, Packet(P.NEWLEADER, make_zxid(self.epoch, 0))))
        v.forwarding = True
        return acts

    def _ack(self, view: _LearnerView, zxid: int) -> list[Action]:
        if view.observer:
            if epoch_of(zxid) == self.epoch and zxid & COUNTER_MASK == 0:
                view.newleader_acked = True
                return self._maybe_uptodate(view)
            return []
        if epoch_of(zxid) == self.epoch and zxid & COUNTER_MASK == 0:
            if not view.forwarding or view.newleader_acked:
                return []
            view.newleader_acked = True
            if self.phase == "sync":
                acked = {s for s, v in self.learners.items() if v.newleader_acked and not v.observer}
                if not self._quorum(acked):
                    return []
                return self._establish()
            return self._maybe_uptodate(view)
        if not view.forwarding:
            return []
        for p in self.outstanding.values():
            if p.zxid > zxid:
                break
            p.acks.add(view.sid)
        return self._try_commit()

    def _establish(self) -> list[Action]:
        """A quorum acked NEWLEADER: the epoch is established and the whole history committed."""
        self.phase = "broadcast"
        base = make_zxid(self.epoch, 0)
        history_end = self.last_zxid
        self.committed = max(self.last_zxid, base)
        acts: list[Action] = [Serving(base)]
        for v in sorted(self.learners.values(), key=lambda v: v.sid):
            if v.forwarding and history_end:  # the history it was sent is committed only now
                acts.append(Send(v.sid, Packet(P.COMMIT, history_end)))
            if v.newleader_acked:
                acts += self._maybe_uptodate(v)
        return acts

    def _maybe_uptodate(self, v: _LearnerView) -> list[Action]:
        if self.phase != "broadcast" or v.uptodate_sent or not v.newleader_acked:
            return []
        if self.committed < v.uptodate_after:
            return []
        v.uptodate_sent = True
        return [Send(v.sid, Packet(P.UPTODATE, make_zxid(self.epoch, 0)))]

    def persisted(self, zxid: int) -> list[Action]:
        """The leader's own log is fsynced up to ``zxid``: its own ack."""
        for p in self.outstanding.values():
            if p.zxid > zxid:
                break
            p.acks.add(self.sid)
        return self._try_commit()

    def propose(self, zxid: int, record: bytes) -> list[Action]:
        """A new txn (already applied to the leader's tree) to broadcast."""
        if self.phase != "broadcast":
            return [Lost("proposal while not established")]
        if epoch_of(zxid) != self.epoch or zxid <= self.last_zxid:
            return [Lost(f"proposal 0x{zxid:x} out of order (last 0x{self.last_zxid:x}, epoch {self.epoch})")]
        if zxid & COUNTER_MASK >= self.rollover:
            return [Lost("zxid lower 32 bits have rolled over, forcing re-election")]
        self.last_zxid = zxid
        self.log.append((zxid, record))
        if len(self.log) > self.max_history:
            drop = len(self.log) - self.max_history
            self.history_start = self.log[drop - 1][0]
            del self.log[:drop]
        self.outstanding[zxid] = _Proposal(zxid, record)
        acts: list[Action] = [Append(zxid, record)]
        pkt = Packet(P.PROPOSAL, zxid, record)
        for v in self.learners.values():
            if v.forwarding and not v.observer:
                acts.append(Send(v.sid, pkt))
        return acts

    def _try_commit(self) -> list[Action]:
        acts: list[Action] = []
        top = 0
        while self.outstanding:
            zxid = next(iter(self.outstanding))
            p = self.outstanding[zxid]
            if not has_quorum(p.acks, self.voters):
                break
            del self.outstanding[zxid]
            top = zxid
            commit = Packet(P.COMMIT, zxid)
            inform = Packet(P.INFORM, zxid, p.record)
            for v in self.learners.values():
                if v.forwarding:
                    acts.append(Send(v.sid, inform if v.observer else commit))
        if not top:
            return acts
        self.committed = top
        acts.append(Committed(top))
        if self.pending_syncs:
            keep = []
            for src, z in self.pending_syncs:
                if z <= top:
                    acts.append(Send(src, Packet(P.SYNC, top)))
                else:
                    keep.append((src, z))
            self.pending_syncs = keep
        for v in list(self.learners.values()):
            if v.newleader_acked and not v.uptodate_sent:
                acts += self._maybe_uptodate(v)
        return acts

    def tick(self, now: int) -> list[Action]:
        """Deadlines of discovery/sync, pings, and the 'quorum still with us' check."""
        t = self.timing
        if self.phase != "broadcast":
            if now >= self.deadline:
                return [Lost(f"no quorum in {self.phase} within initLimit")]
            return []
        acts: list[Action] = []
        silent = now - t.sync_limit * t.tick_ms
        for v in list(self.learners.values()):
            limit = silent if v.uptodate_sent else now - t.init_limit * t.tick_ms
            if v.last_heard < limit:
                self.disconnected(v.sid)
                acts.append(Disconnect(v.sid))
        alive = {s for s, v in self.learners.items() if v.forwarding and not v.observer}
        if not self._quorum(alive):
            acts.append(Lost(f"not sufficient followers synced, only synced with sids: {sorted(alive)}"))
            return acts
        if now >= self.next_ping:
            self.next_ping = now + t.tick_ms // 2
            ping = Packet(P.PING, self.last_zxid)
            acts += [Send(s, ping) for s, v in sorted(self.learners.items()) if v.forwarding]
        return acts


def _index_after(zxids: list[int], zxid: int) -> int:
    return bisect.bisect_right(zxids, zxid)


# ---------------------------------------------------------------- learner


class Learner:
    """A follower's or observer's side of ZAB, attached to one leader."""

    def __init__(
        self,
        sid: int,
        leader: int,
        *,
        observer: bool,
        accepted_epoch: int,
        current_epoch: int,
        last_zxid: int,
        now: int,
        timing: Timing = Timing(),
        session_report: Callable[[], list[tuple[int, int]]] = list,
    ) -> None:
        self.sid = sid
        self.leader = leader
        self.observer = observer
        self.accepted_epoch = accepted_epoch
        self.current_epoch = current_epoch
        self.last_logged = last_zxid
        self.committed = last_zxid
        self.persisted_zxid = last_zxid
        self.pending: list[tuple[int, bytes]] = []
        self.timing = timing
        self.session_report = session_report
        self.phase = "connecting"
        self.epoch = -1
        self.last_heard = now
        self.newleader_zxid: int | None = None
        self.newleader_acked = False
        self.serving = False

    def connected(self, now: int) -> list[Action]:
        self.last_heard = now
        self.phase = "discovery"
        kind = P.OBSERVERINFO if self.observer else P.FOLLOWERINFO
        return [Send(self.leader, Packet(kind, make_zxid(self.accepted_epoch, 0), learner_info(self.sid)))]

    def receive(self, pkt: Packet, now: int) -> list[Action]:
        self.last_heard = now
        t = pkt.type
        if t == P.PROPOSAL:
            return self._proposal(pkt)
        if t == P.COMMIT:
            return self._commit(pkt.zxid)
        if t == P.INFORM:
            return self._inform(pkt)
        if t == P.PING:
            return [Send(self.leader, Packet(P.PING, pkt.zxid, encode_touches(self.session_report())))]
        if t == P.SYNC:
            return [SyncDone()]
        if t == P.LEADERINFO:
            return self._leaderinfo(pkt)
        if t == P.DIFF:
            self.phase = "sync"
            return []
        if t == P.TRUNC:
            self.phase = "sync"
            self.pending = []
            self.last_logged = self.committed = self.persisted_zxid = pkt.zxid
            return [Truncate(pkt.zxid)]
        if t == P.SNAP:
            self.phase = "sync"
            self.pending = []
            self.last_logged = self.committed = self.persisted_zxid = pkt.zxid
            return [LoadSnapshot(pkt.zxid, pkt.data)]
        if t == P.NEWLEADER:
            return self._newleader(pkt.zxid)
        if t == P.UPTODATE:
            if self.newleader_zxid is None:
                return [Lost("UPTODATE before NEWLEADER")]
            self.phase = "broadcast"
            self.serving = True
            base = make_zxid(self.epoch, 0)
            self.committed = max(self.committed, base)
            return [Serving(base)]
        return []

    def _leaderinfo(self, pkt: Packet) -> list[Action]:
        if self.phase != "discovery":
            return [Lost("unexpected LEADERINFO")]
        epoch = epoch_of(pkt.zxid)
        acts: list[Action] = []
        if epoch > self.accepted_epoch:
            self.accepted_epoch = epoch
            acts.append(SaveEpochs(epoch, self.current_epoch))
        elif epoch < self.accepted_epoch:
            return [Lost(f"leader's epoch {epoch} is older than our accepted epoch {self.accepted_epoch}")]
        self.epoch = epoch
        self.phase = "epoch-acked"
        acts.append(Send(self.leader, Packet(P.ACKEPOCH, self.last_logged, _INT.pack(self.current_epoch))))
        return acts

    def _proposal(self, pkt: Packet) -> list[Action]:
        if pkt.zxid <= self.last_logged:
            return [Lost(f"proposal 0x{pkt.zxid:x} is not after our last logged 0x{self.last_logged:x}")]
        self.last_logged = pkt.zxid
        self.pending.append((pkt.zxid, pkt.data))
        return [Append(pkt.zxid, pkt.data)]

    def _commit(self, zxid: int) -> list[Action]:
        if zxid <= self.committed:
            return []  # covered by the snapshot we were sent
        if not self.pending or self.pending[0][0] > zxid:
            return [Lost(f"commit of 0x{zxid:x}, which was never proposed to us")]
        acts: list[Action] = []
        i = 0
        while i < len(self.pending) and self.pending[i][0] <= zxid:
            z, rec = self.pending[i]
            acts.append(Deliver(z, rec))
            i += 1
        del self.pending[:i]
        self.committed = zxid
        return acts

    def _inform(self, pkt: Packet) -> list[Action]:
        if pkt.zxid <= self.committed:
            return []
        acts: list[Action] = []
        self.pending = [(z, r) for z, r in self.pending if z > pkt.zxid]
        if pkt.zxid > self.last_logged:
            self.last_logged = pkt.zxid
            acts.append(Append(pkt.zxid, pkt.data))
        acts.append(Deliver(pkt.zxid, pkt.data))
        self.committed = pkt.zxid
        return acts

    def _newleader(self, zxid: int) -> list[Action]:
        epoch = epoch_of(zxid)
        if epoch != self.epoch or self.phase != "sync":
            return [Lost(f"NEWLEADER for epoch {epoch} in phase {self.phase}")]
        self.newleader_zxid = zxid
        return self._ack_newleader()

    def _ack_newleader(self) -> list[Action]:
        """Take the new epoch and ack NEWLEADER once everything synced is fsynced (ZOOKEEPER-4646): a
        currentEpoch on disk ahead of the log would let this server win an election it must lose."""
        if self.newleader_acked or self.newleader_zxid is None or self.persisted_zxid < self.last_logged:
            return []
        self.newleader_acked = True
        self.current_epoch = epoch_of(self.newleader_zxid)
        return [
            SaveEpochs(self.accepted_epoch, self.current_epoch),
            Send(self.leader, Packet(P.ACK, self.newleader_zxid)),
        ]

    def persisted(self, zxid: int) -> list[Action]:
        """Our log is fsynced up to ``zxid``: ack it (followers), and NEWLEADER if it was waiting."""
        if zxid > self.last_logged:
            return []  # a write that completed after a TRUNC/SNAP replaced what it belonged to
        self.persisted_zxid = max(self.persisted_zxid, zxid)
        acts: list[Action] = []
        if not self.observer and self.phase in ("sync", "broadcast") and zxid & COUNTER_MASK:
            acts.append(Send(self.leader, Packet(P.ACK, zxid)))
        if self.phase == "sync":
            acts += self._ack_newleader()
        return acts

    def forward(self, data: bytes) -> list[Action]:
        return [Send(self.leader, Packet(P.REQUEST, 0, data))]

    def sync(self) -> list[Action]:
        return [Send(self.leader, Packet(P.SYNC, 0))]

    def tick(self, now: int) -> list[Action]:
        t = self.timing
        limit = t.sync_limit if self.serving else t.init_limit
        if now - self.last_heard > limit * t.tick_ms:
            return [Lost(f"no word from leader {self.leader} for {now - self.last_heard} ms")]
        return []
