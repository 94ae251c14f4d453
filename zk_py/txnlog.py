"""Transaction log files in upstream ZooKeeper's on-disk format (``server/persistence/FileTxnLog``).

A file ``<dataLogDir>/version-2/log.<hex zxid of its first txn>`` is a FileHeader {"ZKLG", 2, dbid 0}
followed by entries ``long Adler32(record) | int len | record | byte 'B'``, where a record is
``TxnHeader + txn body`` (opaque here; its zxid sits at bytes 12..20).  Files are preallocated with
zeros, so a zero-length entry marks the normal end of the data.

Crash safety rests on three rules:

* a batch is acknowledged only after one ``write`` and one ``fdatasync`` (group commit), so a torn or
  half-persisted entry can only exist after the last acknowledged one;
* reading stops at the first entry that is truncated, fails its checksum or lacks its end marker;
* before appending to an existing file, everything after its last good entry is cut off, so new entries
  follow that entry directly and no stale bytes from an unacknowledged batch can ever be read back as
  records after them.

Files are never rewritten in place otherwise; new files appear atomically (written under a temporary
name, fsynced, renamed, directory fsynced), so a crash never leaves a log file with a torn header.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import mmap
import os
import re
import struct
import threading
import zlib
from collections.abc import Generator, Iterator
from pathlib import Path

from .proto import FileHeader

log = logging.getLogger("zk_py.txnlog")

TXNLOG_MAGIC = 0x5A4B4C47  # "ZKLG"
LOG_VERSION = 2
LOG_DBID = 0
HEADER_LEN = 16
ENTRY_OVERHEAD = 13  # checksum 8 + length 4 + end-of-record 1
EOR = 0x42  # 'B'
MIN_RECORD = 20  # enough of the TxnHeader to hold the zxid
ZXID_OFFSET = 12  # TxnHeader: long clientId, int cxid, long zxid, ...

_FILE_HEADER = FileHeader(magic=TXNLOG_MAGIC, version=LOG_VERSION, dbid=LOG_DBID).to_bytes()
_HEADER = struct.Struct(">iiq")
_ENTRY = struct.Struct(">qi")
_ZXID = struct.Struct(">q")
_LOG_NAME = re.compile(r"log\.([0-9a-fA-F]+)")
_SUBDIR = "version-2"
_TMP_PREFIX = "tmp.log."  # "tmp." first: upstream tools only look at names whose first part is "log"
_DAMAGED_PREFIX = "damaged-log."


class TxnLogError(Exception):
    """The log cannot be used as asked: foreign file header, bad append, or an earlier I/O error."""


# ---------------------------------------------------------------------------------------------- helpers


def version_dir(log_dir: Path) -> Path:
    return Path(log_dir) / _SUBDIR


def fsync_dir(path: Path) -> None:
    """Make created, renamed or removed directory entries durable (a file's fsync does not cover them)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_datasync = getattr(os, "fdatasync", os.fsync)


def _pwrite_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, offset)
        view = view[n:]
        offset += n


def _allocate(fd: int, offset: int, length: int) -> None:
    """Reserve zero-filled space (real blocks where the file system can, else a sparse extension)."""
    try:
        os.posix_fallocate(fd, offset, length)
    except AttributeError:
        os.ftruncate(fd, offset + length)
    except OSError as e:
        if e.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
            raise
        os.ftruncate(fd, offset + length)


def numbered_files(d: Path, pattern: re.Pattern[str]) -> list[tuple[int, Path]]:
    """Files of ``d`` named ``<prefix>.<hex zxid>`` as (zxid, path), oldest first."""
    try:
        names = os.listdir(d)
    except FileNotFoundError:
        return []
    out = []
    for name in names:
        m = pattern.fullmatch(name)
        if m:
            out.append((int(m.group(1), 16), d / name))
    out.sort()
    return out


def log_files(log_dir: Path) -> list[tuple[int, Path]]:
    """The log files of ``log_dir`` (the dataLogDir) as (first zxid, path), oldest first."""
    return numbered_files(version_dir(log_dir), _LOG_NAME)


def _follows(last: int, first: int) -> bool:
    """May a file starting at ``first`` continue a history whose last zxid is ``last``?

    Contiguous (or overlapping) zxids, or a new epoch -- a new leader's first txn restarts the counter.
    """
    return first <= last + 1 or (first >> 32) > (last >> 32)


class _FileScan:
    """Walks the entries of one log file; once walked, says where the good data ends and why."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.size = 0
        self.end = HEADER_LEN  # offset just past the last good entry
        self.count = 0
        self.last_zxid: int | None = None
        self.damage: str | None = None  # None: a clean end (EOF or zeros); else what was wrong

    def entries(self) -> Generator[tuple[int, bytes], None, None]:
        with open(self.path, "rb") as f:
            self.size = size = os.fstat(f.fileno()).st_size
            if size < HEADER_LEN:
                self.end = size
                if size:
                    self.damage = f"torn file header ({size} bytes)"
                return
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                yield from self._walk(mm, size)

    def _walk(self, mm: mmap.mmap, size: int) -> Iterator[tuple[int, bytes]]:
        magic, version, _dbid = _HEADER.unpack_from(mm, 0)
        if magic != TXNLOG_MAGIC or version != LOG_VERSION:
            if not any(mm[:HEADER_LEN]):
                self.end = 0
                self.damage = "zeroed file header"
                return
            raise TxnLogError(
                f"{self.path}: not a version {LOG_VERSION} ZooKeeper txn log "
                f"(magic 0x{magic & 0xFFFFFFFF:08x}, version {version})"
            )
        unpack_entry = _ENTRY.unpack_from
        unpack_zxid = _ZXID.unpack_from
        adler32 = zlib.adler32
        off = HEADER_LEN
        last = -1
        while True:
            if off + 12 > size:
                if any(mm[off:size]):
                    self.damage = "truncated entry header"
                return
            crc, n = unpack_entry(mm, off)
            if n == 0:
                if crc:
                    self.damage = "zero-length entry"
                return
            if n < MIN_RECORD:
                self.damage = f"bad entry length {n}"
                return
            stop = off + 12 + n
            if stop >= size:
                self.damage = f"entry of {n} bytes cut short by the end of the file"
                return
            if mm[stop] != EOR:
                self.damage = "missing end-of-record marker"
                return
            rec = mm[off + 12 : stop]
            if adler32(rec) != crc:
                self.damage = "checksum mismatch"
                return
            (zxid,) = unpack_zxid(rec, ZXID_OFFSET)
            if zxid <= last:
                self.damage = f"zxid 0x{zxid:x} does not follow 0x{last:x}"
                return
            last = zxid
            off = stop + 1
            self.end = off
            self.count += 1
            self.last_zxid = zxid
            yield zxid, rec

    def describe_damage(self) -> str:
        after = f"zxid 0x{self.last_zxid:x}" if self.last_zxid is not None else "the file header"
        return (
            f"{self.path.name}: {self.damage} at offset {self.end} (after {after}); "
            f"ignoring the remaining {self.size - self.end} bytes"
        )


def _last_nonzero(path: Path, start: int, size: int) -> int:
    """Offset just past the last non-zero byte in [start, size) -- how much of a dropped tail holds data."""
    chunk = 1 << 20
    with open(path, "rb") as f:
        pos = size
        while pos > start:
            lo = max(start, pos - chunk)
            f.seek(lo)
            data = f.read(pos - lo).rstrip(b"\0")
            if data:
                return lo + len(data)
            pos = lo
    return start


# ---------------------------------------------------------------------------------------------- reading


def read_log(log_dir: Path, after_zxid: int = 0) -> Iterator[tuple[int, bytes]]:
    """Every good (zxid, record) with zxid > ``after_zxid``, in order, across all log files.

    Starts at the newest file whose first zxid is <= after_zxid + 1.  Within a file, reading stops at the
    first damaged entry (warning what is dropped).  After a damaged file, the next file is still read if
    it continues the history (as after an upstream restart, which leaves a torn tail and opens a new file
    at the next zxid); if it does not, the damage ate txns, and it and every later file are ignored with
    a warning, because replaying past that hole would build a state that never existed.  A file with a
    foreign header raises TxnLogError.
    """
    files = log_files(log_dir)
    if not files:
        return
    start = 0
    for i, (first, _path) in enumerate(files):
        if first > after_zxid + 1:
            break
        start = i
    first0 = files[start][0]
    if after_zxid and first0 > after_zxid + 1 and (first0 >> 32) == (after_zxid >> 32):
        log.warning(
            "txn log starts at zxid 0x%x but recovery needs the txns after 0x%x: 0x%x..0x%x are missing",
            first0,
            after_zxid,
            after_zxid + 1,
            first0 - 1,
        )
    last: int | None = None
    damaged = False
    for first, path in files[start:]:
        if damaged and last is not None and not _follows(last, first):
            log.warning(
                "txn log %s starts at zxid 0x%x but the readable log before it ends at 0x%x; "
                "ignoring it and every later log file",
                path.name,
                first,
                last,
            )
            return
        scan = _FileScan(path)
        for zxid, rec in scan.entries():
            if last is not None and zxid <= last:
                continue  # overlaps what an earlier file already gave
            last = zxid
            if zxid > after_zxid:
                yield zxid, rec
        if scan.damage is not None:
            damaged = True
            log.warning("txn log %s", scan.describe_damage())
        elif scan.count:
            damaged = False  # an empty file in between proves nothing either way


# ---------------------------------------------------------------------------------------------- writing


class TxnLog:
    """The append side: group commits into preallocated files, rolled after each snapshot.

    The server calls it from one worker thread; a lock serialises calls anyway, and ``last_zxid`` is a
    plain read that any thread may make.
    """

    def __init__(
        self, log_dir: Path, *, prealloc_bytes: int = 64 * 1024 * 1024, force_sync: bool = True
    ) -> None:
        self.log_dir = Path(log_dir)
        self.dir = version_dir(self.log_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.prealloc = max(0, int(prealloc_bytes))
        self.force_sync = force_sync
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._path: Path | None = None
        self._pos = 0  # where the next entry goes
        self._size = 0  # file length, preallocation included
        self._last = 0
        self._roll = False
        self._closed = False
        self._failed: BaseException | None = None
        self._remove_temp_files()
        self._open_newest()

    # -------------------------------------------------------------------------------------- public API

    def append_batch(self, records: list[tuple[int, bytes]]) -> None:
        """Write (zxid, record) pairs (zxid order) with one write and -- if force_sync -- one fdatasync.

        Raises TxnLogError for zxids that do not increase past the log's last one or that disagree with
        the record's TxnHeader, before anything is written.  After an I/O error the log refuses all
        further appends: after a failed fsync the kernel may have dropped the dirty pages, so nothing
        written since the last good sync can be trusted.
        """
        if not records:
            return
        with self._lock:
            self._check_usable()
            last = self._last
            pack_entry = _ENTRY.pack
            unpack_zxid = _ZXID.unpack_from
            adler32 = zlib.adler32
            parts: list[bytes] = []
            for zxid, rec in records:
                if zxid <= last:
                    raise TxnLogError(f"zxid 0x{zxid:x} does not follow the log's last zxid 0x{last:x}")
                if len(rec) < MIN_RECORD or unpack_zxid(rec, ZXID_OFFSET)[0] != zxid:
                    raise TxnLogError(f"record for zxid 0x{zxid:x} does not carry that zxid in its TxnHeader")
                parts.append(pack_entry(adler32(rec), len(rec)))
                parts.append(rec)
                parts.append(b"B")
                last = zxid
            buf = b"".join(parts)
            try:
                if self._fd is None or self._roll:
                    self._start_file(records[0][0])
                assert self._fd is not None
                self._write(buf)
                if self.force_sync:
                    _datasync(self._fd)
            except BaseException as e:
                self._failed = e
                raise
            self._pos += len(buf)
            self._last = last

    def roll(self) -> None:
        """Close the current file; the next append starts ``log.<its first zxid>``."""
        with self._lock:
            self._close_fd()
            self._roll = True

    def last_zxid(self) -> int:
        """Highest zxid in the log (0 if none)."""
        return self._last

    def close(self) -> None:
        with self._lock:
            self._close_fd()
            self._closed = True

    def truncate_after(self, zxid: int) -> None:
        """Drop every record above ``zxid``: later files are removed, the file holding ``zxid`` is cut.

        Files go newest first, so a crash half way leaves a shorter but consistent log.
        """
        with self._lock:
            if self._closed:
                raise TxnLogError("txn log is closed")
            self._close_fd()
            files = log_files(self.log_dir)
            removed = False
            while files and files[-1][0] > zxid:
                _, path = files.pop()
                log.info("truncating txn log after 0x%x: removing %s", zxid, path.name)
                path.unlink()
                removed = True
            if removed:
                fsync_dir(self.dir)
            if files:
                path = files[-1][1]
                scan = _FileScan(path)
                cut = scan.end
                with contextlib.closing(scan.entries()) as entries:
                    for z, _rec in entries:
                        if z > zxid:
                            break
                        cut = scan.end
                if scan.size > cut:
                    log.info("truncating txn log after 0x%x: cutting %s at offset %d", zxid, path.name, cut)
                    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
                    try:
                        os.ftruncate(fd, cut)
                        os.fsync(fd)
                    finally:
                        os.close(fd)
            self._roll = False
            self._last = 0
            self._open_newest()

    # -------------------------------------------------------------------------------------- internals

    def _check_usable(self) -> None:
        if self._closed:
            raise TxnLogError("txn log is closed")
        if self._failed is not None:
            raise TxnLogError(f"txn log unusable after an earlier failure: {self._failed!r}")

    def _remove_temp_files(self) -> None:
        """A file still under its temporary name never got its header synced: it holds nothing."""
        for p in self.dir.glob(_TMP_PREFIX + "*"):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()

    def _open_newest(self) -> None:
        """Find the append point: just past the last good entry of the newest file that has any."""
        files = log_files(self.log_dir)
        while files:
            _first, path = files.pop()
            scan = _FileScan(path)
            for _ in scan.entries():
                pass
            if scan.count == 0:
                log.warning(
                    "removing txn log %s: it holds no transactions%s",
                    path.name,
                    f" ({scan.damage})" if scan.damage else "",
                )
                path.unlink()
                fsync_dir(self.dir)
                continue
            if scan.damage is not None:
                log.warning("txn log %s", scan.describe_damage())
                self._keep_damaged_tail(path, scan)
            fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
            try:
                # Cut the preallocated zeros too: any bytes after the last good entry may hold pieces of
                # an unacknowledged batch, which must never resurface after the entries appended next.
                if scan.size > scan.end:
                    os.ftruncate(fd, scan.end)
                # A killed predecessor may have left its last batch in the page cache only; make it durable
                # before building on it.
                os.fsync(fd)
            except BaseException:
                os.close(fd)
                raise
            self._fd, self._path = fd, path
            self._pos = self._size = scan.end
            assert scan.last_zxid is not None
            self._last = scan.last_zxid
            return
        self._last = 0

    def _keep_damaged_tail(self, path: Path, scan: _FileScan) -> None:
        """Copy a damaged tail that holds data aside before cutting it, for an operator to inspect.

        After a crash this is an unacknowledged partial batch; after disk corruption it may be more.
        The copy's name does not start with "log." so neither we nor upstream tools read it as a log.
        """
        end = _last_nonzero(path, scan.end, scan.size)
        if end <= scan.end:
            return
        dest = self.dir / f"{_DAMAGED_PREFIX}{path.name[4:]}.{scan.end}"
        with open(path, "rb") as src, open(dest, "wb") as out:
            src.seek(scan.end)
            remaining = end - scan.end
            while remaining:
                data = src.read(min(remaining, 1 << 20))
                if not data:
                    break
                out.write(data)
                remaining -= len(data)
            out.flush()
            os.fsync(out.fileno())
        log.warning("kept the %d dropped bytes of %s in %s", end - scan.end, path.name, dest.name)

    def _start_file(self, first_zxid: int) -> None:
        self._close_fd()
        name = f"log.{first_zxid:x}"
        path = self.dir / name
        if path.exists():
            raise TxnLogError(f"{path} already exists")
        tmp = self.dir / f"tmp.{name}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            _pwrite_all(fd, _FILE_HEADER, 0)
            self._fd, self._pos, self._size = fd, HEADER_LEN, HEADER_LEN
            self._reserve(1)  # the first block now, so the first batch's sync need not grow the file
            os.fsync(fd)
            os.rename(tmp, path)
            fsync_dir(self.dir)
        except BaseException:
            self._fd = None
            os.close(fd)
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        self._path = path
        self._roll = False
        log.info("started txn log %s", name)

    def _reserve(self, nbytes: int) -> None:
        """Grow the file in preallocation blocks so most syncs need not update its size."""
        end = self._pos + nbytes
        if self.prealloc and end > self._size:
            new_size = (end // self.prealloc + 1) * self.prealloc
            assert self._fd is not None
            _allocate(self._fd, self._size, new_size - self._size)
            self._size = new_size

    def _write(self, buf: bytes) -> None:
        assert self._fd is not None
        self._reserve(len(buf))
        _pwrite_all(self._fd, buf, self._pos)
        self._size = max(self._size, self._pos + len(buf))

    def _close_fd(self) -> None:
        fd, self._fd, self._path = self._fd, None, None
        if fd is None:
            return
        try:
            if not self.force_sync and self._failed is None:
                _datasync(fd)
        finally:
            os.close(fd)
