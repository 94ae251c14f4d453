"""zk_py.txnlog: upstream's txn log format, group commit, rolls, and recovery from torn or corrupt files."""

from __future__ import annotations

import errno
import logging
import os
import struct
import subprocess
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zk_py import txnlog
from zk_py.txnlog import TxnLog, TxnLogError, log_files, read_log

_TXN_HEADER = struct.Struct(">qiqqi")  # clientId, cxid, zxid, time, type


def rec(zxid: int, body: bytes = b"", *, tag: int = 0) -> tuple[int, bytes]:
    """A (zxid, record) pair shaped like the lead's records: TxnHeader, then an opaque body."""
    return zxid, _TXN_HEADER.pack(0x1234 + tag, zxid & 0xFFFF, zxid, 1_700_000_000_000, 1) + body


def recs(first: int, n: int, size: int = 10) -> list[tuple[int, bytes]]:
    return [rec(z, bytes([z % 251]) * size) for z in range(first, first + n)]


def entry_len(record: bytes) -> int:
    return txnlog.ENTRY_OVERHEAD + len(record)


def vdir(d: Path) -> Path:
    return d / "version-2"


@pytest.fixture
def caplog_warn(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.WARNING, logger="zk_py.txnlog")
    yield caplog


def write_files(d: Path, batches: list[list[tuple[int, bytes]]], prealloc: int = 4096) -> None:
    """One file per batch (roll before each)."""
    tl = TxnLog(d, prealloc_bytes=prealloc)
    try:
        for b in batches:
            tl.roll()
            tl.append_batch(b)
    finally:
        tl.close()


# ------------------------------------------------------------------------------------------- format


def test_file_layout_matches_upstream(tmp_path: Path) -> None:
    tl = TxnLog(tmp_path, prealloc_bytes=0)
    batch = [rec(0x1A, b"hello"), rec(0x1B, b"")]
    tl.append_batch(batch)
    tl.close()
    [(first, path)] = log_files(tmp_path)
    assert first == 0x1A and path == vdir(tmp_path) / "log.1a"
    raw = path.read_bytes()
    assert raw[:16] == struct.pack(">iiq", 0x5A4B4C47, 2, 0)
    off = 16
    for _zxid, r in batch:
        crc, n = struct.unpack_from(">qi", raw, off)
        assert crc == zlib.adler32(r) and n == len(r)
        assert raw[off + 12 : off + 12 + n] == r and raw[off + 12 + n] == 0x42
        off += 12 + n + 1
    assert off == len(raw)  # no preallocation asked for


def test_preallocation_and_zeroed_tail(tmp_path: Path, caplog_warn: pytest.LogCaptureFixture) -> None:
    tl = TxnLog(tmp_path, prealloc_bytes=1024)
    batches = [recs(1 + 20 * i, 20, size=30) for i in range(5)]  # 5 * 20 * 63 bytes: several blocks
    for b in batches:
        tl.append_batch(b)
    tl.close()
    [(_, path)] = log_files(tmp_path)
    data_len = 16 + sum(entry_len(r) for b in batches for _, r in b)
    size = path.stat().st_size
    assert size % 1024 == 0 and size > data_len
    assert path.read_bytes()[data_len:] == bytes(size - data_len)
    assert list(read_log(tmp_path)) == [r for b in batches for r in b]
    assert not caplog_warn.records  # a zeroed tail is the normal end, not damage


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    plan=st.lists(
        st.tuples(st.lists(st.binary(max_size=80), min_size=1, max_size=12), st.booleans()),
        min_size=1,
        max_size=12,
    ),
    prealloc=st.sampled_from([0, 64, 1000, 4096]),
    gap=st.integers(1, 3),
    data=st.data(),
)
def test_round_trip_across_rolls_and_reopens(
    plan: list[tuple[list[bytes], bool]], prealloc: int, gap: int, data: st.DataObject
) -> None:
    """Whatever the batching, rolls and reopenings, reading gives back exactly what was appended."""
    with tempfile.TemporaryDirectory() as td:
        d = Path(td)
        written: list[tuple[int, bytes]] = []
        starts: list[int] = []
        zxid = 0
        tl = TxnLog(d, prealloc_bytes=prealloc)
        for bodies, action in plan:
            if action:  # alternately: roll (like a snapshot) or reopen (like a restart)
                if len(starts) % 2:
                    tl.roll()
                else:
                    tl.close()
                    tl = TxnLog(d, prealloc_bytes=prealloc)
                    assert tl.last_zxid() == zxid
            batch = []
            for b in bodies:
                zxid += gap
                batch.append(rec(zxid, b))
            new_file = not written or (action and len(starts) % 2 == 1)
            tl.append_batch(batch)
            if new_file:
                starts.append(batch[0][0])
            written += batch
            assert tl.last_zxid() == zxid
        tl.close()
        assert [f for f, _ in log_files(d)] == starts
        assert list(read_log(d)) == written
        after = data.draw(st.integers(0, zxid + 1))
        assert list(read_log(d, after)) == [r for r in written if r[0] > after]


def test_read_log_after_zxid_boundaries(tmp_path: Path) -> None:
    batches = [recs(1, 10), recs(11, 10), recs(21, 10)]  # log.1, log.b, log.15
    write_files(tmp_path, batches)
    everything = [r for b in batches for r in b]
    for after in range(0, 33):
        assert [z for z, _ in read_log(tmp_path, after)] == [z for z, _ in everything if z > after], after


def test_read_log_starts_at_the_right_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the file holding after_zxid + 1 and later ones are opened."""
    write_files(tmp_path, [recs(1, 10), recs(11, 10), recs(21, 10)])
    opened: list[str] = []
    real = txnlog._FileScan.__init__

    def spy(self: txnlog._FileScan, path: Path) -> None:
        opened.append(path.name)
        real(self, path)

    monkeypatch.setattr(txnlog._FileScan, "__init__", spy)
    list(read_log(tmp_path, 10))
    assert opened == ["log.b", "log.15"]
    opened.clear()
    list(read_log(tmp_path, 9))
    assert opened == ["log.1", "log.b", "log.15"]


def test_empty_directory(tmp_path: Path) -> None:
    assert list(read_log(tmp_path / "nothing")) == []
    assert log_files(tmp_path) == []
    tl = TxnLog(tmp_path)
    assert tl.last_zxid() == 0
    tl.close()
    assert vdir(tmp_path).is_dir() and log_files(tmp_path) == []


# ------------------------------------------------------------------------------------------- appending


def test_append_rejects_bad_zxids_before_writing(tmp_path: Path) -> None:
    tl = TxnLog(tmp_path, prealloc_bytes=0)
    tl.append_batch(recs(1, 3))
    with pytest.raises(TxnLogError, match="does not follow"):
        tl.append_batch([rec(4), rec(3)])
    with pytest.raises(TxnLogError, match="does not follow"):
        tl.append_batch([rec(2)])
    with pytest.raises(TxnLogError, match="TxnHeader"):
        tl.append_batch([(5, rec(6)[1])])
    with pytest.raises(TxnLogError, match="TxnHeader"):
        tl.append_batch([(5, b"short")])
    tl.append_batch([rec(4)])  # none of the rejected batches left anything behind
    tl.close()
    assert [z for z, _ in read_log(tmp_path)] == [1, 2, 3, 4]


def test_one_write_and_one_sync_per_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tl = TxnLog(tmp_path, prealloc_bytes=1 << 20)
    tl.append_batch(recs(1, 5))  # opens the file (header write, syncs)
    calls: list[str] = []
    real_pwrite, real_sync = os.pwrite, txnlog._datasync

    def pwrite(fd: int, data: bytes, off: int) -> int:
        calls.append("write")
        return real_pwrite(fd, data, off)

    def sync(fd: int) -> None:
        calls.append("sync")
        real_sync(fd)

    monkeypatch.setattr(os, "pwrite", pwrite)
    monkeypatch.setattr(os, "fsync", sync)
    monkeypatch.setattr(txnlog, "_datasync", sync)
    tl.append_batch(recs(6, 500))
    assert calls == ["write", "sync"]
    calls.clear()
    tl.close()
    assert calls == []  # already durable: nothing left to sync
    assert len(list(read_log(tmp_path))) == 505


def test_force_sync_off_syncs_only_on_close(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tl = TxnLog(tmp_path, prealloc_bytes=4096, force_sync=False)
    tl.append_batch(recs(1, 2))
    syncs: list[int] = []
    real = txnlog._datasync

    def sync(fd: int) -> None:
        syncs.append(fd)
        real(fd)

    monkeypatch.setattr(txnlog, "_datasync", sync)
    for i in range(10):
        tl.append_batch(recs(3 + i * 5, 5))
    assert syncs == []
    tl.close()
    assert len(syncs) == 1
    assert len(list(read_log(tmp_path))) == 52


def test_failed_write_poisons_the_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tl = TxnLog(tmp_path, prealloc_bytes=0)
    tl.append_batch(recs(1, 3))

    def enospc(fd: int, data: bytes, off: int) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "pwrite", enospc)
    with pytest.raises(OSError):
        tl.append_batch(recs(4, 3))
    monkeypatch.undo()
    with pytest.raises(TxnLogError, match="earlier failure"):
        tl.append_batch(recs(4, 3))
    assert tl.last_zxid() == 3
    tl.close()
    tl2 = TxnLog(tmp_path, prealloc_bytes=0)  # a restart recovers
    tl2.append_batch(recs(4, 3))
    tl2.close()
    assert [z for z, _ in read_log(tmp_path)] == [1, 2, 3, 4, 5, 6]


def test_closed_log_refuses_appends(tmp_path: Path) -> None:
    tl = TxnLog(tmp_path)
    tl.close()
    tl.close()  # idempotent
    with pytest.raises(TxnLogError, match="closed"):
        tl.append_batch(recs(1, 1))


def test_new_files_appear_atomically(tmp_path: Path) -> None:
    """A leftover temporary file (crash while creating a log file) is not a log and is cleaned up."""
    vdir(tmp_path).mkdir(parents=True)
    (vdir(tmp_path) / "tmp.log.5").write_bytes(b"ZK")
    write_files(tmp_path, [recs(1, 4)])
    assert sorted(p.name for p in vdir(tmp_path).iterdir()) == ["log.1"]


# ------------------------------------------------------------------------------------------- damage


def _last_entry_span(path: Path, records: list[tuple[int, bytes]]) -> tuple[int, int]:
    end = 16 + sum(entry_len(r) for _, r in records)
    return end - entry_len(records[-1][1]), end


@pytest.mark.parametrize("prealloc", [0, 4096])
@pytest.mark.parametrize("damage", ["truncate", "zero"])
def test_torn_last_record_at_every_byte_offset(tmp_path: Path, prealloc: int, damage: str) -> None:
    """Cut (or zero, as in a preallocated file) the last entry from every offset on: recovery returns
    exactly the records before it, and appending after reopening continues right after them."""
    src = tmp_path / "src"
    first, second = recs(1, 3, size=5), recs(4, 4, size=7)
    tl = TxnLog(src, prealloc_bytes=prealloc)
    tl.append_batch(first)
    tl.append_batch(second)
    tl.close()
    [(_, path)] = log_files(src)
    original = path.read_bytes()
    start, end = _last_entry_span(path, first + second)
    kept = first + second[:-1]
    for k in range(start, end):
        d = tmp_path / f"{damage}{k}"
        vdir(d).mkdir(parents=True)
        torn = original[:k] if damage == "truncate" else original[:k] + bytes(len(original) - k)
        (vdir(d) / path.name).write_bytes(torn)
        assert list(read_log(d)) == kept, k
        tl = TxnLog(d, prealloc_bytes=prealloc)
        assert tl.last_zxid() == 6
        replacement = rec(7, b"new", tag=1)
        tl.append_batch([replacement, rec(8)])
        tl.close()
        assert list(read_log(d)) == [*kept, replacement, rec(8)], k


def test_torn_tail_is_reported(tmp_path: Path, caplog_warn: pytest.LogCaptureFixture) -> None:
    write_files(tmp_path, [recs(1, 5)], prealloc=0)
    [(_, path)] = log_files(tmp_path)
    raw = path.read_bytes()
    path.write_bytes(raw[:-4])
    assert [z for z, _ in read_log(tmp_path)] == [1, 2, 3, 4]
    assert "cut short by the end of the file" in caplog_warn.text and "after zxid 0x4" in caplog_warn.text


def test_reopen_cuts_a_torn_tail_so_stale_bytes_never_resurface(tmp_path: Path) -> None:
    """A batch whose first page was lost but later pages landed: its entries must not reappear after the
    (shorter) entries appended following recovery."""
    tl = TxnLog(tmp_path, prealloc_bytes=1 << 16)
    tl.append_batch(recs(1, 2, size=4))
    tl.append_batch([rec(3, b"x" * 3), rec(4, b"y" * 4), rec(5, b"z" * 5)])
    tl.close()
    [(_, path)] = log_files(tmp_path)
    raw = bytearray(path.read_bytes())
    third_at = 16 + 2 * entry_len(rec(1, b"1234")[1])
    raw[third_at : third_at + entry_len(rec(3, b"xxx")[1])] = bytes(entry_len(rec(3, b"xxx")[1]))
    path.write_bytes(bytes(raw))
    assert [z for z, _ in read_log(tmp_path)] == [1, 2]  # a zero entry: the end of the data
    tl = TxnLog(tmp_path, prealloc_bytes=1 << 16)
    assert tl.last_zxid() == 2
    # Exactly as long as the lost entry 3: without the cut, old 4 and 5 would follow it.
    tl.append_batch([rec(3, b"X" * 3)])
    tl.close()
    assert list(read_log(tmp_path)) == [*recs(1, 2, size=4), rec(3, b"X" * 3)]


def test_damaged_tail_is_kept_aside(tmp_path: Path) -> None:
    write_files(tmp_path, [recs(1, 6)], prealloc=4096)
    [(_, path)] = log_files(tmp_path)
    raw = bytearray(path.read_bytes())
    fourth = 16 + 3 * entry_len(rec(1, bytes(10))[1])
    raw[fourth + 20] ^= 0xFF
    path.write_bytes(bytes(raw))
    TxnLog(tmp_path).close()
    [aside] = vdir(tmp_path).glob("damaged-log.*")
    assert aside.name == f"damaged-log.1.{fourth}"
    tail_len = 3 * entry_len(rec(1, bytes(10))[1])
    assert aside.read_bytes() == bytes(raw[fourth : fourth + tail_len])
    assert [f for f, _ in log_files(tmp_path)] == [1]  # not mistaken for a log file


@pytest.mark.parametrize(
    ("where", "message"),
    [(30, "checksum mismatch"), (-1, "end-of-record marker"), (8, "cut short"), (0, "checksum mismatch")],
)
def test_corruption_in_the_middle_stops_there_and_warns(
    tmp_path: Path, caplog_warn: pytest.LogCaptureFixture, where: int, message: str
) -> None:
    records = recs(1, 10, size=20)
    write_files(tmp_path, [records], prealloc=0)
    [(_, path)] = log_files(tmp_path)
    raw = bytearray(path.read_bytes())
    fifth = 16 + 4 * entry_len(records[0][1])
    raw[fifth + where if where >= 0 else fifth + entry_len(records[0][1]) + where] ^= 0x5A
    path.write_bytes(bytes(raw))
    assert list(read_log(tmp_path)) == records[:4]
    assert (
        message in caplog_warn.text and "log.1" in caplog_warn.text and f"offset {fifth}" in caplog_warn.text
    )


def test_corrupt_length_field(tmp_path: Path, caplog_warn: pytest.LogCaptureFixture) -> None:
    records = recs(1, 5)
    write_files(tmp_path, [records], prealloc=0)
    [(_, path)] = log_files(tmp_path)
    raw = bytearray(path.read_bytes())
    third = 16 + 2 * entry_len(records[0][1])
    for bad in (-7, 3, 1 << 30):
        raw[third + 8 : third + 12] = struct.pack(">i", bad)
        path.write_bytes(bytes(raw))
        assert list(read_log(tmp_path)) == records[:2]


def test_corruption_in_an_older_file_stops_replay_and_truncate_after_reconciles(
    tmp_path: Path, caplog_warn: pytest.LogCaptureFixture
) -> None:
    """Replaying past a hole would build a state that never existed: reading stops at the damage, and
    the server can cut the log back to what it recovered before appending."""
    batches = [recs(1, 10), recs(11, 10), recs(21, 10)]
    write_files(tmp_path, batches)
    path = log_files(tmp_path)[0][1]
    raw = bytearray(path.read_bytes())
    raw[16 + 5 * entry_len(batches[0][0][1]) + 15] ^= 1  # inside zxid 6
    path.write_bytes(bytes(raw))
    assert [z for z, _ in read_log(tmp_path)] == [1, 2, 3, 4, 5]
    assert "ignoring it and every later log file" in caplog_warn.text
    tl = TxnLog(tmp_path, prealloc_bytes=4096)
    assert tl.last_zxid() == 30  # the append side only looks at the newest file
    with pytest.raises(TxnLogError):
        tl.append_batch([rec(6)])  # would reuse zxids the log already holds
    tl.truncate_after(5)
    assert tl.last_zxid() == 5
    assert [f for f, _ in log_files(tmp_path)] == [1]
    tl.append_batch([rec(6, b"redo"), rec(7)])
    tl.close()
    assert list(read_log(tmp_path)) == [*batches[0][:5], rec(6, b"redo"), rec(7)]


def test_upstream_restart_pattern_torn_tail_then_new_file(
    tmp_path: Path, caplog_warn: pytest.LogCaptureFixture
) -> None:
    """Upstream never appends to an old file: after a crash it leaves the torn tail and starts a new file at
    the next zxid.  Reading goes on into that file."""
    batches = [recs(1, 5), recs(5, 3)]  # zxid 5 is torn in the first file and rewritten in the second
    write_files(tmp_path, batches[:1], prealloc=4096)
    write_files(tmp_path / "other", batches[1:], prealloc=4096)
    (vdir(tmp_path / "other") / "log.5").rename(vdir(tmp_path) / "log.5")
    first = log_files(tmp_path)[0][1]
    raw = bytearray(first.read_bytes())
    fifth = 16 + 4 * entry_len(batches[0][0][1])
    raw[fifth + 14] ^= 0xFF
    first.write_bytes(bytes(raw))
    assert list(read_log(tmp_path)) == batches[0][:4] + batches[1]
    assert "checksum mismatch" in caplog_warn.text


def test_empty_newest_files_are_removed(tmp_path: Path, caplog_warn: pytest.LogCaptureFixture) -> None:
    """A file created just before a crash holds nothing: header only, torn header or zeroed header."""
    write_files(tmp_path, [recs(1, 5)], prealloc=4096)
    hdr = struct.pack(">iiq", 0x5A4B4C47, 2, 0)
    for name, content in [
        ("log.6", hdr + bytes(100)),
        ("log.7", b"ZKL"),
        ("log.8", bytes(64)),
        ("log.9", b""),
    ]:
        (vdir(tmp_path) / name).write_bytes(content)
    assert [z for z, _ in read_log(tmp_path)] == [1, 2, 3, 4, 5]
    tl = TxnLog(tmp_path, prealloc_bytes=4096)
    assert tl.last_zxid() == 5
    assert [f for f, _ in log_files(tmp_path)] == [1]
    tl.append_batch(recs(6, 2))  # continues in log.1, right after zxid 5
    tl.close()
    assert [f for f, _ in log_files(tmp_path)] == [1]
    assert [z for z, _ in read_log(tmp_path)] == [1, 2, 3, 4, 5, 6, 7]


def test_foreign_file_header_is_an_error(tmp_path: Path) -> None:
    vdir(tmp_path).mkdir(parents=True)
    (vdir(tmp_path) / "log.1").write_bytes(struct.pack(">iiq", 0x5A4B534E, 2, -1) + bytes(50))
    with pytest.raises(TxnLogError, match="not a version 2"):
        list(read_log(tmp_path))
    with pytest.raises(TxnLogError):
        TxnLog(tmp_path)


def test_names_not_matching_are_ignored(tmp_path: Path) -> None:
    write_files(tmp_path, [recs(1, 2)])
    for name in ("log.zz", "log.1.bak", "snapshot.1", "damaged-log.1.16", "log."):
        (vdir(tmp_path) / name).write_bytes(b"junk")
    assert [f for f, _ in log_files(tmp_path)] == [1]
    assert [z for z, _ in read_log(tmp_path)] == [1, 2]


# ------------------------------------------------------------------------------------------- truncate_after


@pytest.mark.parametrize("cut", [0, 1, 5, 9, 10, 11, 15, 20, 25, 30, 99])
def test_truncate_after(tmp_path: Path, cut: int) -> None:
    batches = [recs(1, 10), recs(11, 10), recs(21, 10)]
    write_files(tmp_path, batches)
    tl = TxnLog(tmp_path, prealloc_bytes=4096)
    tl.truncate_after(cut)
    expected = [r for b in batches for r in b if r[0] <= cut]
    assert tl.last_zxid() == (expected[-1][0] if expected else 0)
    assert list(read_log(tmp_path)) == expected
    nxt = tl.last_zxid() + 1
    tl.append_batch([rec(nxt, b"after")])
    tl.close()
    assert list(read_log(tmp_path)) == [*expected, rec(nxt, b"after")]
    tl = TxnLog(tmp_path)
    assert tl.last_zxid() == nxt
    tl.close()


# ------------------------------------------------------------------------------------------- upstream tools


def _toolkit(path: Path) -> subprocess.CompletedProcess[str]:
    from tests.support.servers import APACHE_JAR, java_executable, require_apache

    require_apache()
    java = java_executable()
    assert java is not None
    cmd = [java, "-cp", str(APACHE_JAR), "org.apache.zookeeper.server.persistence.TxnLogToolkit", str(path)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.apache
def test_upstream_txn_log_toolkit_reads_our_log(tmp_path: Path) -> None:
    from zk_py.datatree import encode_record
    from zk_py.proto import OPEN_ACL_UNSAFE, CreateTxn, Op, TxnHeader

    tl = TxnLog(tmp_path, prealloc_bytes=4096)
    for i in range(1, 6):
        hdr = TxnHeader(clientId=0x77, cxid=i, zxid=i, time=1_700_000_000_000 + i, type=Op.CREATE)
        body = CreateTxn(path=f"/n{i}", data=b"v", acl=OPEN_ACL_UNSAFE, ephemeral=False, parentCVersion=i)
        tl.append_batch([(i, encode_record(hdr, body))])
    tl.close()
    out = _toolkit(log_files(tmp_path)[0][1])
    assert out.returncode == 0, out.stderr + out.stdout
    for i in range(1, 6):
        assert f"/n{i}" in out.stdout
    assert "CRC ERROR" not in out.stdout


def test_an_empty_file_does_not_hide_a_hole_after_damage(
    tmp_path: Path, caplog_warn: pytest.LogCaptureFixture
) -> None:
    write_files(tmp_path, [recs(1, 10)], prealloc=0)
    path = log_files(tmp_path)[0][1]
    raw = bytearray(path.read_bytes())
    raw[16 + 5 * entry_len(recs(1, 1)[0][1]) + 20] ^= 1  # inside zxid 6
    path.write_bytes(bytes(raw))
    (vdir(tmp_path) / "log.6").write_bytes(struct.pack(">iiq", 0x5A4B4C47, 2, 0))  # header only
    write_files(tmp_path / "b", [recs(20, 3)])
    (vdir(tmp_path / "b") / "log.14").rename(vdir(tmp_path) / "log.14")
    assert [z for z, _ in read_log(tmp_path)] == [1, 2, 3, 4, 5]
    assert "log.14 starts at zxid 0x14" in caplog_warn.text
