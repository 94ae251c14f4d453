"""Four-letter words in Apache ZooKeeper 3.8's exact output formats.

Monitoring (Prometheus exporters, Metricbeat, ``zkServer.sh status``) parses these, so the
layout follows the real server byte for byte where it can; values are ours.
"""

from __future__ import annotations

import contextlib
import os
import platform
import resource
import socket
import sys
import time
from pathlib import Path
from typing import Any, Protocol

from . import __version__
from .config import ALL_4LW, ZkConfig
from .engine import Client, Engine
from .sessions import fmt_sid


class ServerView(Protocol):
    """What the four-letter words read of a running server (the server implements it)."""

    cfg: ZkConfig
    engine: Engine
    min_latency: int
    max_latency: int
    total_latency: int
    count_latency: int
    durable: int
    serving: bool
    read_only: bool
    started_mono: int
    last_snapshot_zxid: int

    def clients(self) -> list[Client]: ...

    def outstanding(self) -> int: ...

    def pending_txns(self) -> int: ...

    def reset_stats(self) -> None: ...

    def mode(self) -> str: ...

    def quorum_values(self) -> list[tuple[str, Any]]: ...

    def proposal_sizes(self) -> tuple[int, int, int] | None: ...


NOT_SERVING = "This ZooKeeper instance is not currently serving requests\n"
VERSION = f"3.8.0-zk_py-{__version__}, built on 2026-11-24 00:00 UTC"
COMMANDS = tuple(sorted(ALL_4LW))
TRACE_MASK = 306


def _dir_size(d: Path) -> int:
    total = 0
    try:
        for p in (d / "version-2").iterdir():
            with contextlib.suppress(OSError):
                total += p.stat().st_size
    except OSError:
        pass
    return total


def _latency(srv: ServerView) -> tuple[int, float, int]:
    n = srv.count_latency
    return srv.min_latency, (round(srv.total_latency / n, 4) if n else 0.0), srv.max_latency


def _fmt_avg(v: float) -> str:
    return repr(float(v)) if v != int(v) else f"{v:.1f}"


def _server_lines(srv: ServerView) -> list[str]:
    eng = srv.engine
    lo, avg, hi = _latency(srv)
    lines = [
        f"Latency min/avg/max: {lo}/{_fmt_avg(avg)}/{hi}",
        f"Received: {eng.packets_received}",
        f"Sent: {eng.packets_sent}",
        f"Connections: {len(srv.clients())}",
        f"Outstanding: {srv.outstanding()}",
        f"Zxid: 0x{eng.tree.last_zxid:x}",
        f"Mode: {srv.mode()}",
        f"Node count: {eng.tree.node_count()}",
    ]
    sizes = srv.proposal_sizes()
    if sizes is not None:
        lines.append(f"Proposal sizes last/min/max: {sizes[0]}/{sizes[1]}/{sizes[2]}")
    return lines


def _conn_brief(cl: Client) -> str:
    init = 1 if cl.session_id else 0
    return f" {cl.remote}[{init}](queued=0,recved={cl.recved},sent={cl.sent}"


def _conn_line(cl: Client) -> str:
    s = _conn_brief(cl)
    if not cl.session_id:
        return s + ")"
    avg = cl.total_latency // cl.count_latency if cl.count_latency else 0
    return (
        f"{s},sid={fmt_sid(cl.session_id)},lop={cl.last_op},est={cl.established},to={cl.timeout},"
        f"lcxid=0x{cl.last_cxid & 0xFFFFFFFF:x},lzxid=0x{cl.last_zxid & 0xFFFFFFFFFFFFFFFF:x},"
        f"lresp={cl.last_resp},llat={cl.last_latency},minlat={cl.min_latency},avglat={avg},"
        f"maxlat={cl.max_latency})"
    )


def _sorted_conns(srv: ServerView, me: Client) -> list[Client]:
    conns = sorted((c for c in srv.clients() if c is not me), key=lambda c: c.remote)
    return [me, *conns]


def _fmt_date(ms: int) -> str:
    return time.strftime("%a %b %d %H:%M:%S UTC %Y", time.gmtime(ms / 1000))


def mntr_values(srv: ServerView) -> list[tuple[str, Any]]:
    eng = srv.engine
    tree = eng.tree
    lo, avg, hi = _latency(srv)
    try:
        fds = len(os.listdir("/proc/self/fd"))
    except OSError:
        fds = -1
    max_fds = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return [
        ("zk_version", VERSION),
        ("zk_server_state", srv.mode()),
        ("zk_ephemerals_count", tree.ephemeral_count()),
        ("zk_num_alive_connections", len(srv.clients())),
        ("zk_avg_latency", avg),
        ("zk_outstanding_requests", srv.outstanding()),
        ("zk_znode_count", tree.node_count()),
        ("zk_global_sessions", len(eng.tracker.sessions)),
        ("zk_non_mtls_remote_conn_count", 0),
        ("zk_packets_sent", eng.packets_sent),
        ("zk_packets_received", eng.packets_received),
        ("zk_watch_count", eng.watches.watch_count()),
        ("zk_auth_failed_count", eng.auth_failed),
        ("zk_min_latency", lo),
        ("zk_max_file_descriptor_count", max_fds),
        ("zk_approximate_data_size", tree.approximate_data_size()),
        ("zk_open_file_descriptor_count", fds),
        ("zk_local_sessions", 0),
        ("zk_uptime", int(time.monotonic() * 1000) - srv.started_mono),
        ("zk_max_latency", hi),
        ("zk_last_processed_zxid", tree.last_zxid),
        ("zk_durable_zxid", srv.durable),
        ("zk_pending_txns", srv.pending_txns()),
        ("zk_last_snapshot_zxid", srv.last_snapshot_zxid),
        *srv.quorum_values(),
    ]


def run(cmd: str, srv: ServerView, me: Client) -> str:
    """Output of one whitelisted four-letter word."""
    eng = srv.engine
    cfg = srv.cfg
    if cmd == "ruok":
        return "imok"
    if cmd == "isro":
        return "ro" if srv.read_only else "rw" if srv.serving else "null"
    if not (srv.serving or srv.read_only) and cmd not in ("conf", "envi"):
        return NOT_SERVING
    if cmd == "srvr":
        return "\n".join([f"Zookeeper version: {VERSION}", *_server_lines(srv)]) + "\n"
    if cmd == "stat":
        clients = [_conn_brief(c) + ")" for c in _sorted_conns(srv, me)]
        return (
            "\n".join([f"Zookeeper version: {VERSION}", "Clients:", *clients, "", *_server_lines(srv)]) + "\n"
        )
    if cmd == "cons":
        return "\n".join(_conn_line(c) for c in _sorted_conns(srv, me)) + "\n\n"
    if cmd == "conf":
        dsize, lsize = _dir_size(cfg.data_dir), _dir_size(cfg.log_dir)
        lines = [
            f"clientPort={cfg.client_port}",
            "secureClientPort=-1",
            f"dataDir={cfg.data_dir}/version-2",
            f"dataDirSize={dsize}",
            f"dataLogDir={cfg.log_dir}/version-2",
            f"dataLogSize={lsize}",
            f"tickTime={cfg.tick_time}",
            f"maxClientCnxns={cfg.max_client_cnxns}",
            f"minSessionTimeout={cfg.min_timeout}",
            f"maxSessionTimeout={cfg.max_timeout}",
            "clientPortListenBacklog=-1",
            f"serverId={cfg.my_id if not cfg.standalone else 0}",
            *_quorum_conf(cfg),
        ]
        return "\n".join(lines) + "\n"
    if cmd == "envi":
        return _envi()
    if cmd == "wchs":
        by_w = eng.watches.paths_by_watcher()
        n_paths = len(eng.watches.watchers_by_path())
        return (
            f"{len(by_w)} connections watching {n_paths} paths\nTotal watches:{eng.watches.watch_count()}\n"
        )
    if cmd == "wchc":
        out = []
        for w, paths in eng.watches.paths_by_watcher().items():
            out.append(fmt_sid(getattr(w, "session_id", 0)))
            out.extend(f"\t{p}" for p in sorted(paths))
        return "\n".join(out) + "\n\n" if out else "\n"
    if cmd == "wchp":
        out = []
        for p, ws in sorted(eng.watches.watchers_by_path().items()):
            out.append(p)
            out.extend(f"\t{fmt_sid(getattr(w, 'session_id', 0))}" for w in ws)
        return "\n".join(out) + "\n\n" if out else "\n"
    if cmd == "dump":
        return _dump(srv)
    if cmd == "dirs":
        return f"datadir_size: {_dir_size(cfg.data_dir)}\nlogdir_size: {_dir_size(cfg.log_dir)}\n"
    if cmd == "crst":
        for c in srv.clients():
            c.reset_stats()
        return "Connection stats reset.\n"
    if cmd == "srst":
        srv.reset_stats()
        return "Server stats reset.\n"
    if cmd == "mntr":
        return "".join(f"{k}\t{v}\n" for k, v in mntr_values(srv))
    if cmd in ("gtmk", "stmk"):
        return f"{TRACE_MASK}\n"
    if cmd == "hash":
        return ""
    return ""


def _quorum_conf(cfg: ZkConfig) -> list[str]:
    """What QuorumZooKeeperServer.dumpConf adds on an ensemble member."""
    if cfg.standalone:
        return []
    me = cfg.servers[cfg.my_id]
    lines = [
        f"initLimit={cfg.init_limit}",
        f"syncLimit={cfg.sync_limit}",
        "electionAlg=3",
        f"electionPort={me.election_port}",
        f"quorumPort={me.quorum_port}",
        f"peerType={1 if me.role == 'observer' else 0}",
        "membership: ",
    ]
    for sid, s in sorted(cfg.servers.items()):
        client = f";{s.client_host or '0.0.0.0'}:{s.client_port}" if s.client_port else ""
        lines.append(f"server.{sid}={s.host}:{s.quorum_port}:{s.election_port}:{s.role}{client}")
    lines.append("version=0")
    return lines


def _envi() -> str:
    rows = [
        ("zookeeper.version", VERSION),
        ("host.name", socket.gethostname()),
        ("python.version", platform.python_version()),
        ("python.implementation", platform.python_implementation()),
        ("python.executable", sys.executable),
        ("os.name", platform.system()),
        ("os.arch", platform.machine()),
        ("os.version", platform.release()),
        ("user.name", os.environ.get("USER", "")),
        ("user.home", os.environ.get("HOME", "")),
        ("user.dir", os.getcwd()),
        ("os.memory.free", f"{_mem('MemAvailable')}MB"),
        ("os.memory.total", f"{_mem('MemTotal')}MB"),
    ]
    return "Environment:\n" + "".join(f"{k}={v}\n" for k, v in rows)


def _mem(key: str) -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return 0


def _dump(srv: ServerView) -> str:
    eng = srv.engine
    buckets = eng.tracker.buckets
    now_wall = int(time.time() * 1000)
    now_mono = int(time.monotonic() * 1000)
    lines = ["SessionTracker dump:", f"Session Sets ({len(buckets)})/({len(eng.tracker.sessions)}):"]
    for t in sorted(buckets):
        sids = sorted(buckets[t])
        lines.append(f"{len(sids)} expire at {_fmt_date(now_wall + t - now_mono)}:")
        lines.extend(f"\t{fmt_sid(s)}" for s in sids)
    eph = eng.tree.ephemerals
    lines.append("ephemeral nodes dump:")
    lines.append(f"Sessions with Ephemerals ({len(eph)}):")
    for sid, paths in eph.items():
        lines.append(f"{fmt_sid(sid)}:")
        lines.extend(f"\t{p}" for p in sorted(paths))
    lines.append("Connections dump:")
    conns = sorted(srv.clients(), key=lambda c: c.remote)
    lines.append(f"Connections Sets (1)/({len(conns)}):")
    lines.append(f"{len(conns)} expire at {_fmt_date(now_wall)}:")
    lines.extend(f"\tip: {c.remote} sessionId: {fmt_sid(c.session_id)}" for c in conns)
    return "\n".join(lines) + "\n"
