"""Snapshot files in upstream ZooKeeper's format (``FileSnap``/``SnapStream``), and autopurge.

``<dataDir>/version-2/snapshot.<hex zxid>`` is a FileHeader {"ZKSN", 2, dbid -1}, the payload (the
serialised tree, produced by the lead's DataTree), then upstream's seal: ``long Adler32`` of every byte
before it and the jute string "/".  Upstream checks the same seal (its light validity test looks only at
the trailing ``int 1, '/'``; its reader compares the checksum), so either side reads the other's files.
Upstream 3.8 appends a digest and a second seal after the first; the final seal's checksum covers
everything before it, so such files validate here too, and their payload ends with the first seal and
the digest -- a tree reader stops at the "/" node anyway.

A snapshot is written under a temporary name, fsynced, renamed and the directory fsynced, so a crash
leaves either no file or a complete one; a file damaged later fails the checksum and is skipped.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import re
import struct
import time
import zlib
from pathlib import Path

from .proto import FileHeader
from .txnlog import fsync_dir, log_files, numbered_files, version_dir

log = logging.getLogger("zk_py.snapfiles")

SNAP_MAGIC = 0x5A4B534E  # "ZKSN"
SNAP_VERSION = 2
SNAP_DBID = -1
HEADER_LEN = 16
SEAL_TAIL = struct.pack(">i", 1) + b"/"  # jute string "/"
TRAILER_LEN = 8 + len(SEAL_TAIL)
MIN_KEEP = 3  # upstream PurgeTxnLog refuses to keep fewer
STALE_TEMP_SECONDS = 3600  # a temporary file this old belongs to no write still running

_FILE_HEADER = FileHeader(magic=SNAP_MAGIC, version=SNAP_VERSION, dbid=SNAP_DBID).to_bytes()
_HEADER = struct.Struct(">iiq")
_CRC = struct.Struct(">q")
_SNAP_NAME = re.compile(r"snapshot\.([0-9a-fA-F]+)")
_TMP_PREFIX = "tmp.snapshot."  # upstream tools only read names whose first part is "snapshot"
_tmp_seq = itertools.count()


class SnapshotError(Exception):
    """A snapshot file is missing, torn or corrupt."""


def snapshot_files(data_dir: Path) -> list[tuple[int, Path]]:
    """The snapshot files of ``data_dir`` as (zxid, path), oldest first (valid or not)."""
    return numbered_files(version_dir(data_dir), _SNAP_NAME)


def write_snapshot(data_dir: Path, zxid: int, payload: bytes) -> Path:
    """Write ``snapshot.<hex zxid>`` atomically and durably; returns its path."""
    d = version_dir(data_dir)
    d.mkdir(parents=True, exist_ok=True)
    final = d / f"snapshot.{zxid:x}"
    tmp = d / f"{_TMP_PREFIX}{zxid:x}.{os.getpid()}.{next(_tmp_seq)}"
    crc = zlib.adler32(payload, zlib.adler32(_FILE_HEADER))
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(_FILE_HEADER)
            f.write(payload)
            f.write(_CRC.pack(crc) + SEAL_TAIL)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)
        fsync_dir(d)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return final


def _check_header(head: bytes, path: Path) -> None:
    magic, version, _dbid = _HEADER.unpack_from(head, 0)
    if magic != SNAP_MAGIC or version != SNAP_VERSION:
        raise SnapshotError(
            f"{path}: not a version {SNAP_VERSION} snapshot "
            f"(magic 0x{magic & 0xFFFFFFFF:08x}, version {version})"
        )


def read_snapshot(path: Path) -> bytes:
    """The payload of a snapshot file; SnapshotError if short, foreign, unsealed or failing its checksum."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise SnapshotError(f"{path}: {e}") from e
    if len(data) < HEADER_LEN + TRAILER_LEN:
        raise SnapshotError(f"{path}: too short ({len(data)} bytes)")
    _check_header(data, path)
    if data[-len(SEAL_TAIL) :] != SEAL_TAIL:
        raise SnapshotError(f"{path}: no end seal (torn or truncated)")
    body = len(data) - TRAILER_LEN
    (stored,) = _CRC.unpack_from(data, body)
    with memoryview(data) as view:
        actual = zlib.adler32(view[:body])
    if stored != actual:
        raise SnapshotError(f"{path}: checksum mismatch (stored 0x{stored:x}, computed 0x{actual:x})")
    return data[HEADER_LEN:body]


def is_valid_snapshot(path: Path) -> bool:
    """The same checks as read_snapshot, streaming, so that purge need not hold whole snapshots in memory."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size < HEADER_LEN + TRAILER_LEN:
                return False
            head = f.read(HEADER_LEN)
            _check_header(head, Path(path))
            crc = zlib.adler32(head)
            remaining = size - TRAILER_LEN - HEADER_LEN
            while remaining:
                chunk = f.read(min(remaining, 1 << 20))
                if not chunk:
                    return False
                crc = zlib.adler32(chunk, crc)
                remaining -= len(chunk)
            trailer = f.read(TRAILER_LEN)
    except (OSError, SnapshotError):
        return False
    return len(trailer) == TRAILER_LEN and trailer[8:] == SEAL_TAIL and _CRC.unpack_from(trailer)[0] == crc


def latest_valid_snapshot(data_dir: Path) -> tuple[int, bytes] | None:
    """(zxid, payload) of the newest snapshot that validates; damaged ones are skipped with a warning."""
    for zxid, path in reversed(snapshot_files(data_dir)):
        try:
            return zxid, read_snapshot(path)
        except SnapshotError as e:
            log.warning("skipping snapshot: %s", e)
    return None


def purge(data_dir: Path, log_dir: Path, keep: int = MIN_KEEP) -> list[Path]:
    """Autopurge as upstream's PurgeTxnLog does it; returns the deleted files.

    Keeps the newest ``keep`` (at least 3) valid snapshots.  With X the oldest kept one, deletes older
    snapshots, and the log files before the newest one that starts at or before X: that one may hold
    X + 1 and later (it is upstream's rule, one file more cautious than "the file holding X + 1").
    Nothing is deleted without a valid snapshot.  Also removes temporary files left by crashed writes.
    """
    keep = max(MIN_KEEP, keep)
    deleted: list[Path] = []
    snaps = snapshot_files(data_dir)
    kept: list[int] = []
    for zxid, path in reversed(snaps):
        if is_valid_snapshot(path):
            kept.append(zxid)
            if len(kept) == keep:
                break
    if kept:
        oldest = kept[-1]
        doomed = [p for z, p in snaps if z < oldest]
        logs = log_files(log_dir)
        needed = 0
        for i, (first, _p) in enumerate(logs):
            if first <= oldest:
                needed = i
        doomed += [p for _z, p in logs[:needed]]
        for p in doomed:
            try:
                p.unlink()
            except FileNotFoundError:
                continue
            deleted.append(p)
    deleted += _remove_stale_temp_files(version_dir(data_dir), _TMP_PREFIX)
    if deleted:
        log.info("purge removed %s", ", ".join(p.name for p in deleted))
    return deleted


def _remove_stale_temp_files(d: Path, prefix: str) -> list[Path]:
    out = []
    cutoff = time.time() - STALE_TEMP_SECONDS
    for p in d.glob(prefix + "*"):
        with contextlib.suppress(FileNotFoundError):
            if p.stat().st_mtime < cutoff:
                p.unlink()
                out.append(p)
    return out
