"""Durability of zk_py: nothing acknowledged is ever lost.

Real server processes: kill -9 under concurrent write load, a torn log tail, snapshots and
autopurge, and sessions that survive a restart.
"""

from __future__ import annotations

import struct
import threading
import time
from pathlib import Path

from kazoo.client import KazooClient

from tests.support.servers import ZkServer

VALUE = b"v" * 64


def _client(srv: ZkServer, **kw: object) -> KazooClient:
    zk = KazooClient(hosts=srv.hosts, timeout=10, connection_retry={"max_tries": 0}, **kw)  # type: ignore[arg-type]
    zk.start(timeout=10)
    return zk


def _writer(srv: ZkServer, wid: int, acked: list[str], stop: threading.Event) -> None:
    """Pipelined creates; a path is recorded only once the server acknowledged it."""
    try:
        zk = _client(srv)
    except Exception:
        return
    try:
        zk.ensure_path(f"/load/w{wid}")
        i = 0
        while not stop.is_set() and i < 20_000:
            batch = [zk.create_async(f"/load/w{wid}/n{i + k:06d}", VALUE) for k in range(50)]
            for a in batch:
                try:
                    acked.append(a.get(timeout=5))
                except Exception:
                    return
            i += 50
    finally:
        try:
            zk.stop()
            zk.close()
        except Exception:
            pass


def test_kill_9_under_concurrent_writes_loses_nothing_acknowledged(tmp_path: Path) -> None:
    srv = ZkServer("zk_py", tmp_path)
    srv.start()
    try:
        acked: list[list[str]] = [[] for _ in range(4)]
        stop = threading.Event()
        threads = [
            threading.Thread(target=_writer, args=(srv, i, acked[i], stop), daemon=True) for i in range(4)
        ]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 30
        while sum(map(len, acked)) < 3000 and time.monotonic() < deadline:
            time.sleep(0.05)
        srv.kill()  # SIGKILL mid-load: no chance to flush anything
        stop.set()
        for t in threads:
            t.join(timeout=30)
        total = sum(map(len, acked))
        assert total >= 1000, "the load never got going"

        srv.restart()
        zk = _client(srv)
        try:
            for i, paths in enumerate(acked):
                present = set(zk.get_children(f"/load/w{i}")) if paths else set()
                missing = [p for p in paths if p.rsplit("/", 1)[1] not in present]
                assert not missing, (
                    f"writer {i}: {len(missing)} acknowledged creates lost, e.g. {missing[:3]}"
                )
            sample = acked[0][len(acked[0]) // 2]
            assert zk.get(sample)[0] == VALUE
        finally:
            zk.stop()
            zk.close()
    finally:
        srv.stop()


def _log_files(srv: ZkServer) -> list[Path]:
    return sorted((srv.data_dir / "version-2").glob("log.*"), key=lambda p: int(p.name[4:], 16))


def _end_of_records(path: Path) -> int:
    """Offset just past the last good record (header 16 bytes; record = crc8 + len4 + data + 'B')."""
    raw = path.read_bytes()
    off = 16
    while off + 12 <= len(raw):
        (n,) = struct.unpack_from("!i", raw, off + 8)
        if n <= 0 or off + 12 + n + 1 > len(raw) or raw[off + 12 + n] != 0x42:
            break
        off += 12 + n + 1
    return off


def test_torn_log_tail_is_dropped_and_the_server_goes_on(tmp_path: Path) -> None:
    srv = ZkServer("zk_py", tmp_path)
    srv.start()
    try:
        zk = _client(srv)
        for i in range(20):
            zk.create(f"/t{i}", b"%d" % i)
        zk.stop()
        zk.close()
        srv.kill()
        log = _log_files(srv)[-1]
        end = _end_of_records(log)
        with log.open("r+b") as f:  # a record whose write was cut short by the crash
            f.seek(end)
            f.write(struct.pack("!qi", 12345, 500) + b"\x07" * 37)
        srv.restart()
        zk = _client(srv)
        assert sorted(c for c in zk.get_children("/") if c.startswith("t")) == sorted(
            f"t{i}" for i in range(20)
        )
        zk.create("/after", b"ok")  # appends after the torn tail work, and survive another crash
        zk.stop()
        zk.close()
        srv.kill()
        srv.restart()
        zk = _client(srv)
        assert zk.get("/after")[0] == b"ok"
        assert zk.get("/t19")[0] == b"19"
        zk.stop()
        zk.close()
    finally:
        srv.stop()


def test_snapshots_and_autopurge(tmp_path: Path) -> None:
    cfg = {"snapCount": "40", "autopurge.snapRetainCount": "3", "autopurge.purgeInterval": "1"}
    srv = ZkServer("zk_py", tmp_path, extra_cfg=cfg)
    srv.start()
    try:
        zk = _client(srv)
        for i in range(400):
            zk.create(f"/s{i:03d}", b"x")
        zk.set("/s000", b"changed")
        zk.stop()
        zk.close()
        time.sleep(0.5)  # let the last snapshot file land
        snaps = list((srv.data_dir / "version-2").glob("snapshot.*"))
        assert len(snaps) >= 5, "snapCount=40 over 400 writes takes several snapshots"
        srv.stop()
        srv.start()  # autopurge runs at start, as upstream's DatadirCleanupManager does
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            snaps = list((srv.data_dir / "version-2").glob("snapshot.*"))
            if len(snaps) <= 3:
                break
            time.sleep(0.1)
        assert len(snaps) == 3
        srv.kill()
        srv.restart()  # recovery from the newest snapshot + the remaining log
        zk = _client(srv)
        assert len([c for c in zk.get_children("/") if c.startswith("s")]) == 400
        assert zk.get("/s000")[0] == b"changed"
        zk.stop()
        zk.close()
    finally:
        srv.stop()


def test_sessions_and_ephemerals_survive_a_restart(tmp_path: Path) -> None:
    srv = ZkServer("zk_py", tmp_path)
    srv.start()
    try:
        zk = KazooClient(hosts=srv.hosts, timeout=10)
        zk.start(timeout=10)
        zk.create("/eph", b"mine", ephemeral=True)
        sid, passwd = zk.client_id
        srv.stop()
        srv.restart()
        # Resume the same session (as kazoo does on reconnect): the ephemeral is still there and still ours.
        zk2 = KazooClient(hosts=srv.hosts, timeout=10, client_id=(sid, passwd))
        zk2.start(timeout=10)
        data, stat = zk2.get("/eph")
        assert data == b"mine" and stat.ephemeralOwner == sid
        zk2.stop()  # closeSession removes it
        zk2.close()
        zk3 = _client(srv)
        assert zk3.exists("/eph") is None
        zk3.stop()
        zk3.close()
        zk.stop()
        zk.close()
    finally:
        srv.stop()
