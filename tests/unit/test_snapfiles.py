"""zk_py.snapfiles: upstream's snapshot format, damage detection, and an autopurge that keeps recovery."""

from __future__ import annotations

import contextlib
import os
import struct
import subprocess
import tempfile
import time
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zk_py import snapfiles
from zk_py.snapfiles import (
    SnapshotError,
    is_valid_snapshot,
    latest_valid_snapshot,
    purge,
    read_snapshot,
    snapshot_files,
    write_snapshot,
)
from zk_py.txnlog import TxnLog, log_files, read_log

_TXN_HEADER = struct.Struct(">qiqqi")


def rec(zxid: int) -> tuple[int, bytes]:
    return zxid, _TXN_HEADER.pack(7, 1, zxid, 0, 1) + b"body%d" % zxid


def vdir(d: Path) -> Path:
    return d / "version-2"


def names(d: Path, prefix: str) -> list[str]:
    return sorted(
        (p.name for p in vdir(d).iterdir() if p.name.startswith(prefix)),
        key=lambda n: int(n[len(prefix) :], 16),
    )


# ------------------------------------------------------------------------------------------- format


def test_layout_matches_upstream(tmp_path: Path) -> None:
    path = write_snapshot(tmp_path, 0x2B, b"payload")
    assert path == vdir(tmp_path) / "snapshot.2b"
    raw = path.read_bytes()
    header = struct.pack(">iiq", 0x5A4B534E, 2, -1)
    assert raw[:16] == header and raw[16:23] == b"payload"
    assert raw[23:31] == struct.pack(">q", zlib.adler32(header + b"payload"))
    assert raw[31:] == b"\x00\x00\x00\x01/"  # jute string "/": upstream's seal
    assert os.listdir(vdir(tmp_path)) == ["snapshot.2b"]  # no temporary file left behind


@settings(max_examples=50, deadline=None)
@given(payload=st.binary(max_size=5000), zxid=st.integers(0, 2**63 - 1))
def test_round_trip(payload: bytes, zxid: int) -> None:
    with tempfile.TemporaryDirectory() as td:
        path = write_snapshot(Path(td), zxid, payload)
        assert read_snapshot(path) == payload
        assert is_valid_snapshot(path)
        assert latest_valid_snapshot(Path(td)) == (zxid, payload)


def test_rewriting_the_same_zxid_replaces_the_file(tmp_path: Path) -> None:
    write_snapshot(tmp_path, 5, b"old")
    write_snapshot(tmp_path, 5, b"new")
    assert latest_valid_snapshot(tmp_path) == (5, b"new")


def test_every_truncation_and_every_byte_flip_is_detected(tmp_path: Path) -> None:
    raw = write_snapshot(tmp_path, 1, bytes(range(40)) * 2).read_bytes()
    bad = tmp_path / "bad"
    for k in range(len(raw)):
        bad.write_bytes(raw[:k])
        with pytest.raises(SnapshotError):
            read_snapshot(bad)
        assert not is_valid_snapshot(bad)
        for flip in (0x01, 0x80, 0xFF):
            damaged = bytearray(raw)
            damaged[k] ^= flip
            bad.write_bytes(bytes(damaged))
            with pytest.raises(SnapshotError):
                read_snapshot(bad)
            assert not is_valid_snapshot(bad), (k, flip)


def test_missing_file_is_a_snapshot_error(tmp_path: Path) -> None:
    with pytest.raises(SnapshotError):
        read_snapshot(tmp_path / "snapshot.1")
    assert not is_valid_snapshot(tmp_path / "snapshot.1")


def test_latest_valid_snapshot_skips_damaged_ones(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    assert latest_valid_snapshot(tmp_path) is None
    for z in (0x10, 0x20, 0x30, 0x40):
        write_snapshot(tmp_path, z, b"tree at %x" % z)
    p40, p30 = vdir(tmp_path) / "snapshot.40", vdir(tmp_path) / "snapshot.30"
    p40.write_bytes(p40.read_bytes()[:-3])  # torn
    raw = bytearray(p30.read_bytes())
    raw[20] ^= 4  # bit rot
    p30.write_bytes(bytes(raw))
    (vdir(tmp_path) / "snapshot.50").write_bytes(b"")
    (vdir(tmp_path) / "snapshot.60.tmp").write_bytes(b"junk")  # not a snapshot name
    assert latest_valid_snapshot(tmp_path) == (0x20, b"tree at 20")
    assert "snapshot.40" in caplog.text and "snapshot.30" in caplog.text and "checksum" in caplog.text


def test_upstream_digest_trailer_validates(tmp_path: Path) -> None:
    """Upstream 3.8 writes a digest and a second seal after the first; the final checksum covers it all."""
    header = struct.pack(">iiq", 0x5A4B534E, 2, -1)
    body = header + b"tree"
    body += struct.pack(">q", zlib.adler32(body)) + b"\x00\x00\x00\x01/"
    body += struct.pack(">qiq", 0x33, 2, 0xABCDEF)  # ZxidDigest
    raw = body + struct.pack(">q", zlib.adler32(body)) + b"\x00\x00\x00\x01/"
    path = vdir(tmp_path) / "snapshot.33"
    path.parent.mkdir(parents=True)
    path.write_bytes(raw)
    assert is_valid_snapshot(path)
    assert read_snapshot(path).startswith(b"tree")


# ------------------------------------------------------------------------------------------- purge


def build(
    data_dir: Path, log_dir: Path, total: int, snaps: dict[int, bool], rolls: set[int]
) -> list[tuple[int, bytes]]:
    """Txns 1..total; after zxid z: a log roll if z in rolls, a snapshot if z in snaps (valid or torn)."""
    tl = TxnLog(log_dir, prealloc_bytes=256)
    out = []
    for z in range(total + 1):
        if z:
            r = rec(z)
            tl.append_batch([r])
            out.append(r)
        if z in rolls:
            tl.roll()
        if z in snaps:
            p = write_snapshot(data_dir, z, b"tree at %d" % z)
            if not snaps[z]:
                p.write_bytes(p.read_bytes()[:-1])
    tl.close()
    return out


def test_purge_follows_upstream(tmp_path: Path) -> None:
    # Snapshots 0, 0x11, 0x21, 0x33 and logs 1, 0x13, 0x23 -- what Apache 3.8 wrote with snapCount=20.
    build(tmp_path, tmp_path, 0x40, {0: True, 0x11: True, 0x21: True, 0x33: True}, {0x12, 0x22})
    assert names(tmp_path, "log.") == ["log.1", "log.13", "log.23"]
    deleted = purge(tmp_path, tmp_path, keep=3)
    assert sorted(p.name for p in deleted) == ["snapshot.0"]  # log.1 holds 0x12, needed by snapshot.11
    assert names(tmp_path, "snapshot.") == ["snapshot.11", "snapshot.21", "snapshot.33"]
    write_snapshot(tmp_path, 0x40, b"t")
    deleted = purge(tmp_path, tmp_path, keep=3)
    assert sorted(p.name for p in deleted) == ["log.1", "snapshot.11"]
    assert names(tmp_path, "log.") == ["log.13", "log.23"]
    assert purge(tmp_path, tmp_path, keep=3) == []  # idempotent


def test_purge_keeps_at_least_three_and_counts_only_valid_snapshots(tmp_path: Path) -> None:
    snaps = {10: True, 20: True, 30: True, 40: True, 50: False, 60: True}
    build(tmp_path, tmp_path, 65, snaps, {10, 20, 30, 40, 50, 60})
    deleted = purge(tmp_path, tmp_path, keep=1)
    # Valid, newest first: 60, 40, 30 -> the torn 50 is newer than the oldest kept, so it stays.
    assert names(tmp_path, "snapshot.") == ["snapshot.1e", "snapshot.28", "snapshot.32", "snapshot.3c"]
    # log.1f starts after snapshot 30 (0x1e): the log starting at or before 30 is log.15 (0x15 = 21).
    assert names(tmp_path, "log.") == ["log.15", "log.1f", "log.29", "log.33", "log.3d"]
    assert {p.name for p in deleted} == {"snapshot.a", "snapshot.14", "log.1", "log.b"}


def test_purge_without_a_valid_snapshot_deletes_nothing(tmp_path: Path) -> None:
    build(tmp_path, tmp_path, 30, {10: False, 20: False}, {10, 20})
    before = sorted(os.listdir(vdir(tmp_path)))
    assert purge(tmp_path, tmp_path) == []
    assert sorted(os.listdir(vdir(tmp_path))) == before


def test_purge_with_separate_log_dir_and_stale_temp_files(tmp_path: Path) -> None:
    data, logs = tmp_path / "data", tmp_path / "logs"
    build(data, logs, 50, {z: True for z in (10, 20, 30, 40, 50)}, {10, 20, 30, 40, 50})
    old, fresh = vdir(data) / "tmp.snapshot.5.1.0", vdir(data) / "tmp.snapshot.6.1.1"
    old.write_bytes(b"x")
    fresh.write_bytes(b"x")
    hour_ago = time.time() - snapfiles.STALE_TEMP_SECONDS - 60
    os.utime(old, (hour_ago, hour_ago))
    deleted = purge(data, logs, keep=3)
    assert old in deleted and not old.exists() and fresh.exists()  # a fresh one may be a write in progress
    assert names(data, "snapshot.") == ["snapshot.1e", "snapshot.28", "snapshot.32"]
    assert names(logs, "log.") == ["log.15", "log.1f", "log.29"]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    total=st.integers(1, 60),
    data=st.data(),
    keep=st.integers(0, 6),
    separate=st.booleans(),
)
def test_purge_never_strands_recovery(total: int, data: st.DataObject, keep: int, separate: bool) -> None:
    """After any purge, the newest valid snapshots are kept and each of them can be rolled forward to the
    last txn from the logs left behind."""
    zxids = st.sets(st.integers(0, total), max_size=12)
    snap_at = data.draw(zxids, label="snapshots")
    valid = {z: data.draw(st.integers(0, 4), label=f"valid {z}") > 0 for z in sorted(snap_at)}
    rolls = data.draw(zxids, label="rolls")
    with tempfile.TemporaryDirectory() as td:
        d = Path(td)
        data_dir, log_dir = (d / "data", d / "logs") if separate else (d, d)
        written = build(data_dir, log_dir, total, valid, rolls)
        deleted = purge(data_dir, log_dir, keep)
        valid_desc = sorted((z for z, ok in valid.items() if ok), reverse=True)
        kept = valid_desc[: max(3, keep)]
        remaining = {z for z, _ in snapshot_files(data_dir)}
        assert set(kept) <= remaining
        if kept:
            assert all(z >= kept[-1] for z in remaining)
        else:
            assert deleted == []
        for z in kept:
            assert list(read_log(log_dir, z)) == [r for r in written if r[0] > z]
        latest = latest_valid_snapshot(data_dir)
        assert (latest[0] if latest else None) == (kept[0] if kept else None)
        assert all(not p.exists() for p in deleted)
        assert log_files(log_dir), "the newest log file is never deleted"


# ------------------------------------------------------------------------------------------- upstream tools


def _java() -> str:
    from tests.support.servers import java_executable, require_apache

    require_apache()
    java = java_executable()
    assert java is not None
    return java


@pytest.mark.apache
def test_upstream_snapshot_formatter_reads_our_snapshot(tmp_path: Path) -> None:
    from tests.support.servers import APACHE_JAR
    from zk_py.datatree import DataTree

    java = _java()
    tree = DataTree()
    path = write_snapshot(tmp_path, tree.last_zxid, tree.serialize())
    cmd = [java, "-cp", str(APACHE_JAR), "org.apache.zookeeper.server.SnapshotFormatter", str(path)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "/zookeeper/quota" in out.stdout
    assert "corrupt" not in (out.stdout + out.stderr).lower()


@pytest.mark.apache
def test_we_read_what_apache_zookeeper_wrote(tmp_path: Path) -> None:
    """Apache's own files (64 MiB preallocated logs, snapshots with digests) recover here."""
    from kazoo.client import KazooClient

    from tests.support.servers import ZkServer
    from zk_py.datatree import DataTree, decode_record
    from zk_py.proto import ZkError

    _java()
    srv = ZkServer("apache", tmp_path / "apache", extra_cfg={"snapCount": "20"})
    srv.start()
    try:
        zk = KazooClient(hosts=srv.hosts, timeout=10)
        zk.start(timeout=30)
        try:
            for i in range(50):
                zk.create(f"/a{i}", b"%d" % i)
        finally:
            zk.stop()
            zk.close()
    finally:
        srv.stop()
    d = srv.data_dir
    assert len(log_files(d)) >= 2 and len(snapshot_files(d)) >= 2
    assert all(is_valid_snapshot(p) for _, p in snapshot_files(d))
    zxids = [z for z, _ in read_log(d)]
    assert zxids == list(range(1, zxids[-1] + 1))
    snap = latest_valid_snapshot(d)
    assert snap is not None and snap[0] == snapshot_files(d)[-1][0]
    tree = DataTree.deserialize(snap[1], snap[0])
    for _z, r in read_log(d, snap[0]):
        hdr, txn = decode_record(r)
        with contextlib.suppress(ZkError):  # upstream snapshots are fuzzy: replay may repeat a txn
            tree.apply(hdr, txn, [])
    assert all(f"/a{i}" in tree.nodes for i in range(50))
    n_snaps = len(snapshot_files(d))
    purge(d, d)  # upstream's layout purges by the same rule, and recovery still works from what is left
    assert len(snapshot_files(d)) == min(3, n_snaps)
    assert latest_valid_snapshot(d) == snap
    oldest = snapshot_files(d)[0][0]
    assert [z for z, _ in read_log(d, oldest)] == list(range(oldest + 1, zxids[-1] + 1))
