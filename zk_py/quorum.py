"""The asyncio edge of an ensemble member: election and quorum sockets, timers, epoch files.

Decisions are made by the pure cores (:mod:`zk_py.election`, :mod:`zk_py.zab`); this module
moves their packets over TCP, runs their actions against the server (txn log, tree, client
replies) and feeds back clock ticks, fsync completions and broken links.  Roles cycle:
LOOKING (reload the state from disk, elect) → LEADING / FOLLOWING / OBSERVING → on any
:class:`~zk_py.zab.Lost`, back to LOOKING.

Wire formats are zk_py's own (a length-prefixed frame per notification or packet; packet
types and meanings as upstream's); mixing zk_py and Apache servers in one ensemble is not
supported.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from .datatree import DataTree, decode_record
from .election import Election, Notification, Outcome, PeerState, Vote
from .snapfiles import snapshot_files, write_snapshot
from .txnlog import fsync_dir, read_log, version_dir
from .zab import (
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

if TYPE_CHECKING:
    from .server import ZkServer

log = logging.getLogger("zk_py.quorum")

_LEN = struct.Struct("!i")
_SID = struct.Struct("!q")
_NOTE = struct.Struct("!iqqqq")  # state, leader, zxid, election epoch, peer epoch
_PKT = struct.Struct("!iq")  # type, zxid; data follows
MAX_QUORUM_FRAME = 1 << 30
TICK_S = 0.05
CONNECT_TIMEOUT_S = 1.0


def mono_ms() -> int:
    return int(time.monotonic() * 1000)


# ---------------------------------------------------------------- epoch files


def read_epoch(data_dir: Path, name: str, default: int) -> int:
    """``version-2/acceptedEpoch`` / ``currentEpoch`` (decimal text, as upstream writes them)."""
    try:
        return int((version_dir(data_dir) / name).read_text().strip())
    except FileNotFoundError:
        return default


def write_epoch(data_dir: Path, name: str, value: int) -> None:
    d = version_dir(data_dir)
    d.mkdir(parents=True, exist_ok=True)
    tmp = d / f"{name}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, f"{value}\n".encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, d / name)
    fsync_dir(d)


# ---------------------------------------------------------------- framing


def encode_note(n: Notification) -> bytes:
    body = _NOTE.pack(n.state, n.vote.leader, n.vote.zxid, n.election_epoch, n.vote.peer_epoch)
    return _LEN.pack(len(body)) + body


def decode_note(sender: int, body: bytes) -> Notification:
    state, leader, zxid, eepoch, pepoch = _NOTE.unpack_from(body)
    return Notification(sender, PeerState(state), Vote(leader, zxid, pepoch), eepoch)


def encode_packet(p: Packet) -> bytes:
    return _LEN.pack(_PKT.size + len(p.data)) + _PKT.pack(p.type, p.zxid) + p.data


def decode_packet(body: bytes) -> Packet:
    t, zxid = _PKT.unpack_from(body)
    return Packet(t, zxid, body[_PKT.size :])


async def read_frame(reader: asyncio.StreamReader, limit: int) -> bytes:
    (n,) = _LEN.unpack(await reader.readexactly(4))
    if n < 0 or n > limit:
        raise ValueError(f"frame length {n} out of range")
    return await reader.readexactly(n)


# ---------------------------------------------------------------- election transport


class ElectionNet:
    """Notifications between peers: one outbound connection per peer (hello = our sid), any inbound."""

    def __init__(self, sid: int, addrs: dict[int, tuple[str, int]], on_note: Callable[[Notification], None]):
        self.sid = sid
        self.addrs = addrs
        self.on_note = on_note
        self.queues: dict[int, asyncio.Queue[bytes]] = {p: asyncio.Queue(64) for p in addrs if p != sid}
        self.last: dict[int, bytes] = {}  # re-sent on every (re)connection, as upstream's lastMessageSent
        self.tasks: list[asyncio.Task[None]] = []
        self.server: asyncio.Server | None = None

    async def start(self) -> None:
        host, port = self.addrs[self.sid]
        self.server = await asyncio.start_server(self._inbound, host, port, reuse_address=True)
        self.tasks = [asyncio.create_task(self._outbound(p), name=f"election-to-{p}") for p in self.queues]

    def send(self, dst: int, n: Notification) -> None:
        q = self.queues.get(dst)
        if q is None:
            return
        if q.full():  # the peer is unreachable: old votes are worthless, the newest matters
            q.get_nowait()
        frame = encode_note(n)
        self.last[dst] = frame
        q.put_nowait(frame)

    async def _outbound(self, dst: int) -> None:
        host, port = self.addrs[dst]
        q = self.queues[dst]
        while True:
            writer = None
            eof: asyncio.Future[bytes] | None = None
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(host, port), CONNECT_TIMEOUT_S
                )
                writer.write(_SID.pack(self.sid))
                # A LOOKING peer may be backing off for up to a minute: tell it our latest vote now, so a
                # healed partition or a restarted peer does not wait for the next scheduled resend.
                if dst in self.last and q.empty():
                    writer.write(self.last[dst])
                # The peer never writes on this connection: a read that completes means it is gone.
                eof = asyncio.ensure_future(reader.read(1))
                while True:
                    get = asyncio.ensure_future(q.get())
                    await asyncio.wait({get, eof}, return_when=asyncio.FIRST_COMPLETED)
                    if eof.done():
                        get.cancel()
                        break
                    writer.write(get.result())
                    await writer.drain()
            except (OSError, TimeoutError, RuntimeError):  # uvloop: RuntimeError on a closed transport
                pass
            finally:
                if eof is not None:
                    eof.cancel()
                if writer is not None:
                    writer.close()
            await asyncio.sleep(0.1)

    async def _inbound(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            (sender,) = _SID.unpack(await asyncio.wait_for(reader.readexactly(8), 5))
            if sender not in self.addrs or sender == self.sid:
                log.warning("election connection from unknown server id %d; closing", sender)
                return
            while True:
                body = await read_frame(reader, 1024)
                self.on_note(decode_note(sender, body))
        except (OSError, ValueError, TimeoutError, asyncio.IncompleteReadError, struct.error):
            pass
        finally:
            writer.close()

    async def close(self) -> None:
        for t in self.tasks:
            t.cancel()
        if self.server is not None:
            self.server.close()
        if self.tasks:
            await asyncio.wait(self.tasks, timeout=5.0)


# ---------------------------------------------------------------- the peer


class QuorumPeer:
    """One ensemble member's role loop, driving the pure cores against a :class:`ZkServer`."""

    def __init__(self, server: ZkServer) -> None:
        cfg = server.cfg
        self.server = server
        self.sid = cfg.my_id
        self.voters = frozenset(s for s, spec in cfg.servers.items() if spec.role == "participant")
        self.observer = self.sid not in self.voters or cfg.peer_type == "observer"
        self.timing = Timing(cfg.tick_time, cfg.init_limit, cfg.sync_limit)
        self.state = PeerState.LOOKING
        self.phase = "election"
        self.leader_core: Leader | None = None
        self.learner_core: Learner | None = None
        self.links: dict[int, asyncio.StreamWriter] = {}
        self.leader_link: asyncio.StreamWriter | None = None
        self.lost = asyncio.Event()
        self.lost_reason = ""
        self.elections = 0
        self.election_started = 0
        self.last_election_ms = 0
        self.need_snapshot = False
        self.last_proposal_size = self.max_proposal_size = self.min_proposal_size = -1
        last = server.engine.tree.last_zxid
        self.current_epoch = read_epoch(cfg.data_dir, "currentEpoch", epoch_of(last))
        self.accepted_epoch = read_epoch(cfg.data_dir, "acceptedEpoch", self.current_epoch)
        peers = frozenset(s for s in cfg.servers if s != self.sid)
        self.election = Election(self.sid, self.voters, peers, last, self.current_epoch)
        self.net = ElectionNet(
            self.sid,
            {s: (spec.host, spec.election_port) for s, spec in cfg.servers.items()},
            self._on_note,
        )

    # ---- status

    def mode(self) -> str:
        if self.server.read_only:
            return "read-only"
        return {
            PeerState.LEADING: "leader",
            PeerState.FOLLOWING: "follower",
            PeerState.OBSERVING: "observer",
        }.get(self.state, "looking")

    def peer_state(self) -> str:
        return f"{self.state.name.lower()} - {self.phase}"

    def proposal_sizes(self) -> tuple[int, int, int] | None:
        if self.state != PeerState.LEADING:
            return None
        return self.last_proposal_size, self.min_proposal_size, self.max_proposal_size

    def mntr_values(self) -> list[tuple[str, object]]:
        """The quorum lines of ``mntr``, named as upstream's."""
        out: list[tuple[str, object]] = [("zk_peer_state", self.peer_state())]
        core = self.leader_core
        if core is not None and self.state == PeerState.LEADING:
            followers = core.synced_followers()
            observers = core.synced_observers()
            out += [
                ("zk_learners", len(core.learners)),
                ("zk_synced_followers", len(followers)),
                ("zk_synced_non_voting_followers", 0),
                ("zk_synced_observers", len(observers)),
                ("zk_pending_syncs", core.pending_sync_count()),
                ("zk_last_proposal_size", self.last_proposal_size),
                ("zk_max_proposal_size", self.max_proposal_size),
                ("zk_min_proposal_size", self.min_proposal_size),
            ]
        out.append(("zk_election_time_ms", self.last_election_ms))
        return out

    # ---- main loop

    async def run(self) -> None:
        await self.net.start()
        try:
            while True:
                await self._reset()
                outcome = await self._elect()
                self.lost.clear()
                self.lost_reason = ""
                try:
                    if outcome.state == PeerState.LEADING:
                        await self._lead(outcome)
                    else:
                        await self._follow(outcome)
                except (OSError, ValueError, asyncio.IncompleteReadError) as e:
                    self.lost_reason = self.lost_reason or f"{type(e).__name__}: {e}"
                log.info("leaving %s: %s", self.mode(), self.lost_reason or "stopped")
                self.leader_core = None
                self.learner_core = None
                self.state = PeerState.LOOKING
        finally:
            await self.net.close()

    async def _reset(self) -> None:
        """Back to LOOKING: no clients, everything logged, the state exactly what is on disk."""
        srv = self.server
        srv.drop_clients()
        self.phase = "election"
        self._close_links()
        await srv.flush()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, srv.load_state, "looking")

    def _close_links(self) -> None:
        for w in self.links.values():
            w.close()
        self.links.clear()
        if self.leader_link is not None:
            self.leader_link.close()
            self.leader_link = None

    def _lose(self, reason: str) -> None:
        if not self.lost.is_set():
            self.lost_reason = reason
            self.lost.set()

    # ---- election

    def _on_note(self, n: Notification) -> None:
        for dst, note in self.election.receive(n, mono_ms()):
            self.net.send(dst, note)

    async def _elect(self) -> Outcome:
        e = self.election
        e.last_zxid = self.server.engine.tree.last_zxid
        e.current_epoch = self.current_epoch
        self.state = PeerState.LOOKING
        self.elections += 1
        self.election_started = mono_ms()
        log.info("LOOKING: last zxid 0x%x, current epoch %d", e.last_zxid, e.current_epoch)
        for dst, note in e.start(mono_ms()):
            self.net.send(dst, note)
        srv = self.server
        # readonlymode.enabled: after max(2 s, tickTime) without a quorum, serve reads (upstream's delay).
        ro_delay = max(2000, self.timing.tick_ms)
        read_only_at = self.election_started + ro_delay if srv.cfg.readonly_mode else None
        while e.outcome is None:
            await asyncio.sleep(TICK_S / 2)
            for dst, note in e.tick(mono_ms()):
                self.net.send(dst, note)
            if read_only_at is not None and not srv.read_only and mono_ms() >= read_only_at:
                srv.engine.role = "readonly"
                srv.read_only = True
                log.info("no quorum for %d ms: serving read-only clients", mono_ms() - self.election_started)
        if srv.read_only:  # read-only sessions are local: none may leak into the quorum role
            srv.drop_clients()
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, srv.load_state, "looking")
        out = e.outcome
        self.state = out.state
        log.info(
            "election decided: %s, leader %d (election epoch %d)",
            out.state.name,
            out.leader,
            out.election_epoch,
        )
        return out

    # ---- leading

    async def _lead(self, outcome: Outcome) -> None:
        srv = self.server
        cfg = srv.cfg
        srv.engine.role = "leader"
        self.phase = "discovery"
        history = list(read_log(cfg.log_dir, srv.snapshot_base))

        def snapshot() -> tuple[int, bytes]:
            tree = srv.engine.tree
            return tree.last_zxid, tree.serialize()

        core = Leader(
            self.sid,
            self.voters,
            accepted_epoch=self.accepted_epoch,
            current_epoch=self.current_epoch,
            history=history,
            history_start=srv.snapshot_base,
            snapshot=snapshot,
            now=mono_ms(),
            timing=self.timing,
        )
        self.leader_core = core
        spec = cfg.servers[self.sid]
        listener = await asyncio.start_server(
            self._learner_conn, spec.host, spec.quorum_port, reuse_address=True
        )
        try:
            while not self.lost.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.lost.wait(), TICK_S)
                if not self.lost.is_set():
                    self._apply(core.tick(mono_ms()))
                    self.phase = core.phase
        finally:
            listener.close()
            self._close_links()

    async def _learner_conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        core = self.leader_core
        sid = -1
        try:
            first = decode_packet(
                await asyncio.wait_for(read_frame(reader, 4096), self.timing.tick_ms / 1000 * 5)
            )
            if core is None or first.type not in (P.FOLLOWERINFO, P.OBSERVERINFO) or len(first.data) < 8:
                return
            (sid,) = _SID.unpack_from(first.data)
            old = self.links.pop(sid, None)
            if old is not None:
                old.close()
                self._apply(core.disconnected(sid))
            self.links[sid] = writer
            self._apply(core.receive(sid, first, mono_ms()))
            while core is self.leader_core and not self.lost.is_set():
                pkt = decode_packet(await read_frame(reader, MAX_QUORUM_FRAME))
                self._apply(core.receive(sid, pkt, mono_ms()))
        except (
            OSError,
            ValueError,
            TimeoutError,
            RuntimeError,
            asyncio.IncompleteReadError,
            struct.error,
        ) as e:
            log.info("learner %d link closed: %s", sid, e or type(e).__name__)
        finally:
            writer.close()
            if sid >= 0 and self.links.get(sid) is writer:
                del self.links[sid]
                if core is self.leader_core and core is not None:
                    self._apply(core.disconnected(sid))

    # ---- following / observing

    async def _follow(self, outcome: Outcome) -> None:
        srv = self.server
        spec = srv.cfg.servers[outcome.leader]
        srv.engine.role = "learner"
        self.phase = "discovery"
        deadline = time.monotonic() + min(self.timing.init_limit * self.timing.tick_ms, 5000) / 1000
        reader = writer = None
        while reader is None:
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(spec.host, spec.quorum_port), CONNECT_TIMEOUT_S
                )
            except (OSError, TimeoutError) as e:
                if time.monotonic() > deadline:
                    self._lose(f"cannot reach leader {outcome.leader}: {e}")
                    return
                await asyncio.sleep(0.1)
        assert writer is not None
        self.leader_link = writer
        core = Learner(
            self.sid,
            outcome.leader,
            observer=self.observer,
            accepted_epoch=self.accepted_epoch,
            current_epoch=self.current_epoch,
            last_zxid=-1 if self.need_snapshot else srv.engine.tree.last_zxid,  # -1: the leader sends SNAP
            now=mono_ms(),
            timing=self.timing,
            session_report=lambda: self.server.engine.drain_touches(),
        )
        self.learner_core = core
        ticker = asyncio.create_task(self._learner_ticks(core))
        try:
            self._apply(core.connected(mono_ms()))
            while not self.lost.is_set():
                pkt = decode_packet(await read_frame(reader, MAX_QUORUM_FRAME))
                for act in core.receive(pkt, mono_ms()):
                    if isinstance(act, Truncate):
                        await self._truncate(act.zxid)
                    elif isinstance(act, LoadSnapshot):
                        await self._load_snapshot(act.zxid, act.payload)
                    else:
                        self._apply([act])
                self.phase = core.phase
                srv.pump()
        except (OSError, ValueError, RuntimeError, asyncio.IncompleteReadError, struct.error) as e:
            self._lose(f"link to leader {outcome.leader} broke: {e or type(e).__name__}")
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
            self._close_links()

    async def _learner_ticks(self, core: Learner) -> None:
        while not self.lost.is_set():
            await asyncio.sleep(TICK_S)
            self._apply(core.tick(mono_ms()))
        if self.leader_link is not None:
            self.leader_link.close()  # wakes the reader

    async def _truncate(self, zxid: int) -> None:
        srv = self.server
        await srv.flush()
        if any(z > zxid for z, _ in snapshot_files(srv.cfg.data_dir)):
            # Our snapshot holds txns the leader wants gone (a SNAP taken while they were in flight).
            # Keep everything -- it may hold txns we acked -- and ask for a whole snapshot instead,
            # which replaces the state in one step.
            self.need_snapshot = True
            self._lose(f"asked to truncate to 0x{zxid:x}, below our newest snapshot: resyncing by SNAP")
            return
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, srv.txnlog.truncate_after, zxid)
        await loop.run_in_executor(None, srv.load_state, "learner")
        if srv.engine.tree.last_zxid != zxid:
            self._lose(f"truncation to 0x{zxid:x} left the state at 0x{srv.engine.tree.last_zxid:x}")
        log.info("truncated to 0x%x at the leader's request", zxid)

    async def _load_snapshot(self, zxid: int, payload: bytes) -> None:
        """Replace everything on disk with the leader's snapshot (old logs could only mislead)."""
        srv = self.server
        await srv.flush()
        tree = DataTree.deserialize(payload, zxid)
        loop = asyncio.get_running_loop()

        def replace_files() -> None:
            srv.txnlog.truncate_after(0)
            for _, path in snapshot_files(srv.cfg.data_dir):
                path.unlink()
            write_snapshot(srv.cfg.data_dir, zxid, payload)

        await loop.run_in_executor(None, replace_files)
        srv.set_tree(tree, "learner")
        srv.snapshot_base = srv.last_snapshot_zxid = zxid
        self.need_snapshot = False
        log.info("loaded the leader's snapshot at 0x%x (%d bytes)", zxid, len(payload))

    # ---- hooks from the server

    def propose(self, txns: list[tuple[int, bytes]]) -> None:
        core = self.leader_core
        if core is None:
            self._lose("txn produced while not leading")
            return
        for zxid, rec in txns:
            n = len(rec)
            self.last_proposal_size = n
            self.max_proposal_size = max(self.max_proposal_size, n)
            self.min_proposal_size = n if self.min_proposal_size < 0 else min(self.min_proposal_size, n)
            self._apply(core.propose(zxid, rec))

    def forward(self, items: list[bytes | None]) -> None:
        core = self.learner_core
        if core is None:
            return
        for item in items:
            self._apply(core.forward(item) if item is not None else core.sync())

    def persisted(self, zxid: int) -> None:
        core: Leader | Learner | None = self.leader_core or self.learner_core
        if core is not None:
            self._apply(core.persisted(zxid))

    # ---- actions

    def _apply(self, actions: list[Action]) -> None:
        srv = self.server
        for a in actions:
            if isinstance(a, Send):
                w = self.leader_link if self.learner_core is not None else self.links.get(a.dst)
                if w is not None and not w.is_closing():
                    w.write(encode_packet(a.pkt))
            elif isinstance(a, Append):
                srv.pending.append((a.zxid, a.record))
                srv._flush_event.set()
            elif isinstance(a, Deliver):
                eng = srv.engine
                eng.wall, eng.mono = int(time.time() * 1000), mono_ms()
                hdr, txn = decode_record(a.record)
                eng.apply_committed(hdr, txn)
                srv.visible = eng.tree.last_zxid
            elif isinstance(a, Committed):
                srv.visible = max(srv.visible, a.zxid)
                srv._release()
            elif isinstance(a, Forwarded):
                eng = srv.engine
                eng.wall, eng.mono = int(time.time() * 1000), mono_ms()
                eng.forwarded(a.data)
                srv.pump()
            elif isinstance(a, Touched):
                srv.engine.mono = mono_ms()
                srv.engine.touch_sessions(a.sessions)
            elif isinstance(a, SyncDone):
                srv.engine.sync_done()
                srv.pump()
            elif isinstance(a, SaveEpochs):
                self._save_epochs(a.accepted, a.current)
            elif isinstance(a, Serving):
                self._serving(a.zxid)
            elif isinstance(a, Disconnect):
                w = self.links.pop(a.sid, None)
                if w is not None:
                    w.close()
            elif isinstance(a, Lost):
                self._lose(a.reason)
            else:  # Truncate / LoadSnapshot only come from the leader's packets (handled there)
                raise AssertionError(f"unexpected action {a!r}")

    def _save_epochs(self, accepted: int, current: int) -> None:
        d = self.server.cfg.data_dir
        if accepted != self.accepted_epoch:
            write_epoch(d, "acceptedEpoch", accepted)
            self.accepted_epoch = accepted
        if current != self.current_epoch:
            write_epoch(d, "currentEpoch", current)
            self.current_epoch = current

    def _serving(self, zxid: int) -> None:
        srv = self.server
        tree = srv.engine.tree
        tree.last_zxid = max(tree.last_zxid, zxid)
        srv.visible = max(srv.visible, zxid)
        srv.serving = True
        self.phase = "broadcast"
        self.election.established(epoch_of(zxid))
        took = mono_ms() - self.election_started
        self.last_election_ms = took
        log.info("%s serving at zxid 0x%x, %d ms after the election began", self.mode(), zxid, took)
