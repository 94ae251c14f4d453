"""RecordIO framing of Mesos' streaming HTTP APIs: ``<decimal length>\\n<length bytes>`` per record.

Records are independent of HTTP chunk boundaries, so the decoder is incremental: feed it whatever
arrived and it yields each record once it is complete.
"""

from __future__ import annotations

from collections.abc import Iterator

MAX_RECORD = 64 * 1024 * 1024  # a record this large is a broken or hostile stream, not an event
_MAX_DIGITS = len(str(MAX_RECORD))


class RecordIOError(ValueError):
    """The stream is not RecordIO (bad length line, zero or oversized record)."""


def encode(record: bytes) -> bytes:
    if not record:
        raise RecordIOError("RecordIO records are never empty")
    return b"%d\n%s" % (len(record), record)


class Decoder:
    """Incremental decoder: ``feed(bytes)`` yields complete records in order."""

    def __init__(self, max_record: int = MAX_RECORD) -> None:
        self.buf = bytearray()
        self.max_record = max_record

    def feed(self, data: bytes) -> Iterator[bytes]:
        buf = self.buf
        buf += data
        pos = 0
        while True:
            nl = buf.find(b"\n", pos, pos + _MAX_DIGITS + 2)
            if nl < 0:
                if len(buf) - pos > _MAX_DIGITS + 1:
                    raise RecordIOError(f"no record length in {bytes(buf[pos : pos + 24])!r}")
                break
            digits = bytes(buf[pos:nl])
            if not digits.isdigit():
                raise RecordIOError(f"bad record length {digits!r}")
            n = int(digits)
            if n == 0 or n > self.max_record:
                raise RecordIOError(f"record length {n} out of range (1..{self.max_record})")
            if len(buf) - nl - 1 < n:
                break
            yield bytes(buf[nl + 1 : nl + 1 + n])
            pos = nl + 1 + n
        if pos:
            del buf[:pos]
