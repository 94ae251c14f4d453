"""The asyncio edge of a zk_py server: client sockets, the txn log, timers.

All protocol decisions are made by :class:`zk_py.engine.Engine`; this module frames bytes,
reads the clock, group-commits transactions (one write + fsync per batch, on one worker
thread) and releases each output only once the tree's zxid at the time it was produced is
*visible*: durable on disk when standalone, committed by a quorum when leading an ensemble
(``quorum.py`` drives the ensemble roles through :attr:`ZkServer.peer`).
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import logging
import os
import random
import socket
import struct
import time
from collections.abc import Callable
from typing import Any, Protocol

from . import fourlw, metrics
from .config import ZkConfig
from .datatree import DataTree, decode_record
from .engine import Client, Engine, EngineConfig
from .jute import JuteError, Reader
from .proto import ConnectRequest, Id, ZkError
from .snapfiles import latest_valid_snapshot, purge, write_snapshot
from .txnlog import TxnLog, read_log


class Replication(Protocol):
    """An ensemble role driver (``quorum.QuorumPeer``): what the server hands it and asks of it."""

    async def run(self) -> None: ...

    def propose(self, txns: list[tuple[int, bytes]]) -> None: ...

    def forward(self, items: list[bytes | None]) -> None: ...

    def persisted(self, zxid: int) -> None: ...

    def mode(self) -> str: ...

    def mntr_values(self) -> list[tuple[str, object]]: ...

    def proposal_sizes(self) -> tuple[int, int, int] | None: ...


log = logging.getLogger("zk_py.server")

_LEN = struct.Struct("!i")
STOP_TIMEOUT_S = 10.0
_FOUR = {w.encode("ascii") for w in fourlw.COMMANDS}


def wall_ms() -> int:
    return int(time.time() * 1000)


def mono_ms() -> int:
    return int(time.monotonic() * 1000)


class Connection(asyncio.Protocol):
    """One client socket: frames in, engine calls, bytes out."""

    __slots__ = ("buf", "client", "server", "state", "transport")

    def __init__(self, server: ZkServer) -> None:
        self.server = server
        self.buf = bytearray()
        self.state = "new"
        self.transport: asyncio.Transport | None = None
        self.client: Client | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports are not subclasses
        peer = transport.get_extra_info("peername") or ("?", 0)
        ip, port = peer[0], peer[1]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.client = Client(remote_ip=ip, remote=f"/{ip}:{port}", auth=[Id("ip", ip)])
        self.client.conn = self
        if not self.server.admit(self):
            transport.abort()

    def data_received(self, data: bytes) -> None:
        if self.state == "closed":
            return
        buf = self.buf
        buf += data
        srv = self.server
        eng = srv.engine
        eng.wall = wall_ms()
        eng.mono = mono_ms()
        maxbuf = srv.cfg.jute_maxbuffer
        off = 0
        end = len(buf)
        client = self.client
        assert client is not None
        while end - off >= 4:
            if self.state == "new" and off == 0 and bytes(buf[0:4]) in _FOUR:
                self._four_letter(bytes(buf[0:4]).decode("ascii"))
                return
            (n,) = _LEN.unpack_from(buf, off)
            if n < 0 or n > maxbuf:
                log.warning(
                    "%s: frame length %d out of range (jute.maxbuffer %d): Len error, closing",
                    client.remote,
                    n,
                    maxbuf,
                )
                self._abort()
                return
            if end - off - 4 < n:
                break
            frame = bytes(buf[off + 4 : off + 4 + n])
            off += 4 + n
            if self.state == "connected":
                eng.request(client, frame)
            elif self.state == "new":
                if not (srv.serving or srv.read_only):  # no quorum (yet): the client tries another server
                    self._abort()
                    return
                self._connect(frame)
            else:
                break
        if off:
            del buf[:off]
        srv.pump()

    def _connect(self, frame: bytes) -> None:
        client = self.client
        assert client is not None
        try:
            r = Reader(frame)
            req = ConnectRequest.read(r)
            with_ro = r.remaining() >= 1
            client.can_be_read_only = with_ro and r.bool()
        except JuteError as e:
            log.info("%s: bad ConnectRequest (%s); closing", client.remote, e)
            self._abort()
            return
        self.state = "connected"
        self.server.engine.connect(client, req, with_ro)

    def _four_letter(self, cmd: str) -> None:
        self.state = "closed"
        if self.client is not None:
            self.client.recved = 1
        assert self.transport is not None
        try:
            out = self.server.four_letter(cmd, self)
        except Exception:  # a broken 4lw must never take the server down
            log.exception("four-letter word %s failed", cmd)
            out = ""
        self.transport.write(out.encode("utf-8"))
        self.transport.close()

    def _abort(self) -> None:
        self.state = "closed"
        if self.client is not None:
            self.server.engine.drop(self.client)
        if self.transport is not None:
            self.transport.close()

    def pause_writing(self) -> None:  # slow reader: stop reading its requests
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.state = "closed"
        self.server.forget(self)


class ZkServer:
    """A standalone server: recovery, listener, group commit, timers, four-letter words."""

    def __init__(self, cfg: ZkConfig, replication: Callable[[ZkServer], Replication] | None = None) -> None:
        self.cfg = cfg
        self._replication = replication
        self.engine: Engine
        self.txnlog: TxnLog
        self.conns: set[Connection] = set()
        self.per_ip: collections.Counter[str] = collections.Counter()
        self.pending: list[tuple[int, bytes]] = []
        self.release_q: collections.deque[tuple[int, Client, bytes | None]] = collections.deque()
        self.durable = 0
        self.visible = 0  # outputs produced at a tree zxid up to this may reach the wire
        self.serving = False
        self.read_only = False  # no quorum, but serving reads to clients that accept that
        self.peer: Replication | None = None
        self.snapshot_base = 0  # zxid of the snapshot the tree was recovered from
        self.started_mono = mono_ms()
        self.started_wall = wall_ms()
        self._flush_event = asyncio.Event()
        self._stopping = asyncio.Event()
        self._log_exec = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="zk-txnlog")
        self._snap_exec = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="zk-snapshot")
        self._tasks: list[asyncio.Task[Any]] = []
        self._server: asyncio.base_events.Server | None = None
        self._metrics_server: asyncio.base_events.Server | None = None
        self._txns_since_snap = 0
        self._snap_at = self._next_snap_threshold()
        self._snapshotting = False
        self._flushing = False
        self.fatal: str | None = None
        self.min_latency = 0
        self.max_latency = 0
        self.total_latency = 0
        self.count_latency = 0
        self.last_snapshot_zxid = 0

    # ---------------------------------------------------------------- lifecycle

    def recover(self) -> DataTree:
        """Newest valid snapshot, then every good log record after it."""
        t0 = time.monotonic()
        data_dir, log_dir = self.cfg.data_dir, self.cfg.log_dir
        snap = latest_valid_snapshot(data_dir)
        if snap is None:
            tree = DataTree()
            self.snapshot_base = 0
        else:
            tree = DataTree.deserialize(snap[1], snap[0])
            self.last_snapshot_zxid = self.snapshot_base = snap[0]
        replayed = 0
        for _zxid, rec in read_log(log_dir, tree.last_zxid):
            hdr, txn = decode_record(rec)
            try:
                tree.apply(hdr, txn, [])
            except ZkError as e:  # an idempotent re-apply after a fuzzy snapshot
                log.debug("replay of zxid 0x%x: %s", hdr.zxid, e)
            replayed += 1
        log.info(
            "recovered zxid 0x%x from %s and %d log records in %.3fs (%d nodes, %d sessions)",
            tree.last_zxid,
            f"snapshot 0x{snap[0]:x}" if snap else "no snapshot",
            replayed,
            time.monotonic() - t0,
            tree.node_count(),
            len(tree.sessions),
        )
        return tree

    async def start(self) -> None:
        cfg = self.cfg
        for d in {cfg.data_dir, cfg.log_dir}:
            d.mkdir(parents=True, exist_ok=True)
        self.txnlog = TxnLog(cfg.log_dir, prealloc_bytes=cfg.prealloc_kb * 1024, force_sync=cfg.force_sync)
        self.load_state()
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: Connection(self),
            host=cfg.client_port_address,
            port=cfg.client_port,
            reuse_address=True,
            backlog=1024,
        )
        self._tasks = [
            asyncio.create_task(self._flush_loop(), name="flush"),
            asyncio.create_task(self._tick_loop(), name="sessions"),
            asyncio.create_task(self._reaper_loop(), name="containers"),
        ]
        if cfg.autopurge_purge_interval > 0:
            self._tasks.append(asyncio.create_task(self._purge_loop(), name="autopurge"))
        if cfg.metrics_port is not None:
            self._metrics_server = await metrics.serve(
                cfg.metrics_host, cfg.metrics_port, lambda: fourlw.mntr_values(self)
            )
        if self._replication is None:
            self.serving = True
        else:
            self.peer = self._replication(self)
            self._tasks.append(asyncio.create_task(self.peer.run(), name="quorum"))
        log.info(
            "zk_py serving on %s:%d (dataDir %s, dataLogDir %s, tickTime %d, zxid 0x%x)",
            cfg.client_port_address,
            cfg.client_port,
            cfg.data_dir,
            cfg.log_dir,
            cfg.tick_time,
            self.engine.tree.last_zxid,
        )

    def load_state(self, role: str = "standalone") -> None:
        """(Re)build the tree from disk and a fresh engine; the log continues from the tree's zxid."""
        cfg = self.cfg
        tree = self.recover()
        if self.txnlog.last_zxid() > tree.last_zxid:
            # Replay stopped early (damage in an older log file): drop what it could not reach, so
            # the log continues from the state clients will now see.
            log.error(
                "txn log holds records up to 0x%x but replay stopped at 0x%x; truncating the log there",
                self.txnlog.last_zxid(),
                tree.last_zxid,
            )
            self.txnlog.truncate_after(tree.last_zxid)
        self.durable = self.visible = tree.last_zxid
        ecfg = EngineConfig(
            tick_time=cfg.tick_time,
            min_timeout=cfg.min_timeout,
            max_timeout=cfg.max_timeout,
            server_id=cfg.my_id if not cfg.standalone else 1,
            super_digest=cfg.super_digest,
            extended_types=cfg.extended_types,
            reconfig_enabled=cfg.reconfig_enabled,
        )
        self.engine = Engine(ecfg, tree, mono_ms())
        self.engine.role = role

    def set_tree(self, tree: DataTree, role: str) -> None:
        """Replace the state with one received from a leader (a SNAP)."""
        self.engine = Engine(self.engine.cfg, tree, mono_ms())
        self.engine.role = role
        self.durable = self.visible = tree.last_zxid

    def drop_clients(self) -> None:
        """Close every client connection (the role changed; clients reconnect, maybe elsewhere)."""
        self.serving = self.read_only = False
        for c in list(self.conns):
            c.state = "closed"
            if c.transport is not None:
                c.transport.abort()
            self.forget(c)
        self.release_q.clear()

    async def flush(self, timeout: float = 30.0) -> None:
        """Wait until everything handed to the log is fsynced (bounded)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        self._flush_event.set()
        while (self.pending or self._flushing) and self.fatal is None:
            if loop.time() > deadline:
                raise TimeoutError("txn log flush did not finish")
            await asyncio.sleep(0.002)

    async def wait_stopped(self) -> None:
        await self._stopping.wait()

    def request_stop(self) -> None:
        self._stopping.set()

    async def stop(self) -> None:
        """Stop accepting, flush what is pending, close every connection and the log."""
        if self._server is not None:
            self._server.close()
        if self._metrics_server is not None:
            self._metrics_server.close()
        if self.pending and self.fatal is None:
            self._flush_event.set()
            for _ in range(200):
                if not self.pending and self.durable >= self.engine.tree.last_zxid:
                    break
                await asyncio.sleep(0.01)
        for t in self._tasks:
            t.cancel()
        if self._tasks:
            _, stuck = await asyncio.wait(self._tasks, timeout=STOP_TIMEOUT_S)
            for t in stuck:  # never let one wedged task keep the process alive after SIGTERM
                log.error("task %s did not stop within %.0fs; stopping anyway", t.get_name(), STOP_TIMEOUT_S)
        for c in list(self.conns):
            if c.transport is not None:
                c.transport.close()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._log_exec, self.txnlog.close)
        self._log_exec.shutdown(wait=True)
        self._snap_exec.shutdown(wait=True)
        log.info("zk_py stopped at zxid 0x%x", self.durable)

    # ---------------------------------------------------------------- connections

    def admit(self, c: Connection) -> bool:
        assert c.client is not None
        ip = c.client.remote_ip
        limit = self.cfg.max_client_cnxns
        if limit and self.per_ip[ip] >= limit:
            log.warning("Too many connections from %s - max is %d", ip, limit)
            return False
        self.per_ip[ip] += 1
        self.conns.add(c)
        return True

    def forget(self, c: Connection) -> None:
        if c in self.conns:
            self.conns.discard(c)
            assert c.client is not None
            ip = c.client.remote_ip
            self.per_ip[ip] -= 1
            if self.per_ip[ip] <= 0:
                del self.per_ip[ip]
            self.engine.drop(c.client)

    # ---------------------------------------------------------------- output release

    def pump(self) -> None:
        """Move the engine's fresh outputs to the wire or the release queue, its txns to the log."""
        eng = self.engine
        if eng.log:
            if self.peer is not None:
                self.peer.propose(eng.log)
            else:
                self.pending.extend(eng.log)
                self._flush_event.set()
            eng.log = []
        if eng.forward and self.peer is not None:
            self.peer.forward(eng.forward)
            eng.forward = []
        out = eng.out
        if not out:
            return
        eng.out = []
        required = eng.tree.last_zxid if eng.role != "learner" else 0
        if required <= self.visible and not self.release_q:
            _write_out(out)
        else:
            now = mono_ms()
            self.release_q.extend((required, c, f if f is None else (f, now)) for c, f in out)  # type: ignore[misc]

    def _release(self) -> None:
        q = self.release_q
        visible = self.visible
        ready: list[tuple[Client, bytes | None]] = []
        now = mono_ms()
        while q and q[0][0] <= visible:
            _, c, item = q.popleft()
            if item is None:
                ready.append((c, None))
            else:
                frame, t0 = item  # type: ignore[misc]
                lat = now - t0
                self._latency(lat)
                c.record_latency(lat)
                ready.append((c, frame))
        if ready:
            _write_out(ready)

    def _latency(self, ms: int) -> None:
        if self.count_latency == 0 or ms < self.min_latency:
            self.min_latency = ms
        self.max_latency = max(self.max_latency, ms)
        self.total_latency += ms
        self.count_latency += 1

    async def _flush_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._flush_event.wait()
            self._flush_event.clear()
            while self.pending:
                batch, self.pending = self.pending, []
                self._flushing = True
                try:
                    await loop.run_in_executor(self._log_exec, self.txnlog.append_batch, batch)
                except Exception as e:
                    self.fatal = f"txn log write failed: {e}"
                    log.critical("%s; stopping so that nothing unlogged is acknowledged", self.fatal)
                    self.request_stop()
                    return
                finally:
                    self._flushing = False
                self.durable = batch[-1][0]
                if self.peer is not None:
                    self.peer.persisted(self.durable)
                else:
                    self.visible = self.durable
                    self._release()
                self._txns_since_snap += len(batch)
                if (
                    self._txns_since_snap >= self._snap_at
                    and not self._snapshotting
                    and self.visible >= self.engine.tree.last_zxid  # a leader snapshots committed state only
                ):
                    await self._snapshot()

    def _next_snap_threshold(self) -> int:
        n = self.cfg.snap_count
        return random.randint(n // 2 + 1, n) if n > 2 else max(1, n)

    async def _snapshot(self) -> None:
        """Serialise the tree now (consistent at its zxid), roll the log, write the file off-loop."""
        self._snapshotting = True
        self._txns_since_snap = 0
        self._snap_at = self._next_snap_threshold()
        tree = self.engine.tree
        zxid = tree.last_zxid
        payload = tree.serialize()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._log_exec, self.txnlog.roll)

        def write() -> None:
            try:
                write_snapshot(self.cfg.data_dir, zxid, payload)
                self.last_snapshot_zxid = zxid
                log.info("snapshot 0x%x written (%d bytes)", zxid, len(payload))
            except Exception:
                log.exception("snapshot 0x%x failed", zxid)
            finally:
                self._snapshotting = False

        loop.run_in_executor(self._snap_exec, write)

    async def _tick_loop(self) -> None:
        tick = self.cfg.tick_time
        while True:
            now = mono_ms()
            await asyncio.sleep(((now // tick + 1) * tick - now) / 1000 + 0.001)
            eng = self.engine
            if not (self.serving or self.read_only) or eng.role == "learner":  # the leader expires them
                continue
            eng.wall, eng.mono = wall_ms(), mono_ms()
            if eng.expire_sessions():
                self.pump()

    async def _reaper_loop(self) -> None:
        interval = self.cfg.container_check_ms / 1000
        while True:
            await asyncio.sleep(interval)
            eng = self.engine
            if not self.serving or eng.role == "learner":
                continue
            eng.wall, eng.mono = wall_ms(), mono_ms()
            if eng.reap_containers_and_ttls():
                self.pump()

    async def _purge_loop(self) -> None:
        """Autopurge as DatadirCleanupManager schedules it: once at start, then every purgeInterval hours."""
        loop = asyncio.get_running_loop()
        cfg = self.cfg
        while True:
            try:
                removed = await loop.run_in_executor(
                    self._snap_exec, purge, cfg.data_dir, cfg.log_dir, cfg.autopurge_snap_retain_count
                )
                log.info("autopurge removed %d files", len(removed))
            except Exception:
                log.exception("autopurge failed")
            await asyncio.sleep(cfg.autopurge_purge_interval * 3600)

    # ---------------------------------------------------------------- 4lw

    def four_letter(self, cmd: str, conn: Connection) -> str:
        if cmd not in self.cfg.four_letter_whitelist:
            return f"{cmd} is not executed because it is not in the whitelist.\n"
        assert conn.client is not None
        return fourlw.run(cmd, self, conn.client)

    def clients(self) -> list[Client]:
        return [c.client for c in self.conns if c.client is not None]

    def outstanding(self) -> int:
        return len(self.release_q)

    def proposal_sizes(self) -> tuple[int, int, int] | None:
        """srvr's "Proposal sizes last/min/max" (leaders only)."""
        return None if self.peer is None else self.peer.proposal_sizes()

    def quorum_values(self) -> list[tuple[str, Any]]:
        return [] if self.peer is None else self.peer.mntr_values()

    def mode(self) -> str:
        """``srvr``'s Mode: standalone, or this peer's current role."""
        return "standalone" if self.peer is None else self.peer.mode()

    def pending_txns(self) -> int:
        return len(self.pending)

    def reset_stats(self) -> None:
        self.min_latency = self.max_latency = self.total_latency = self.count_latency = 0
        self.engine.packets_received = self.engine.packets_sent = 0


def _write_out(items: list[tuple[Client, bytes | None]]) -> None:
    """Write frames grouped per connection; ``None`` closes the connection after what precedes it."""
    if len(items) == 1:
        c, f = items[0]
        conn = c.conn
        if conn is not None and conn.transport is not None and not conn.transport.is_closing():
            if f is None:
                conn.transport.close()
            else:
                conn.transport.write(f)
        return
    grouped: dict[Client, list[bytes]] = {}
    closes: list[Client] = []
    for c, f in items:
        if f is None:
            pend = grouped.pop(c, None)
            conn = c.conn
            if conn is not None and conn.transport is not None and not conn.transport.is_closing():
                if pend:
                    conn.transport.write(b"".join(pend))
                closes.append(c)
        else:
            grouped.setdefault(c, []).append(f)
    for c, frames in grouped.items():
        conn = c.conn
        if conn is not None and conn.transport is not None and not conn.transport.is_closing():
            conn.transport.write(frames[0] if len(frames) == 1 else b"".join(frames))
    for c in closes:
        conn = c.conn
        if conn is not None and conn.transport is not None:
            conn.transport.close()


def install_event_loop_policy() -> Callable[[], None] | None:
    """uvloop when installed (ZK_PY_NO_UVLOOP=1 turns it off)."""
    if os.environ.get("ZK_PY_NO_UVLOOP"):
        return None
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop  # type: ignore[no-any-return]
