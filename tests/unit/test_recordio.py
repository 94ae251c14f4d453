"""RecordIO framing: round trips across arbitrary chunk boundaries, and precise errors for bad streams."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paas_common.recordio import Decoder, RecordIOError, encode


@given(st.lists(st.binary(min_size=1, max_size=300), max_size=20), st.lists(st.integers(1, 50), min_size=1))
def test_records_survive_any_chunking(records: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(encode(r) for r in records)
    dec = Decoder()
    out: list[bytes] = []
    pos = i = 0
    while pos < len(stream):
        step = cuts[i % len(cuts)]
        out.extend(dec.feed(stream[pos : pos + step]))
        pos += step
        i += 1
    assert out == records
    assert not dec.buf


def test_mesos_example() -> None:
    event = b'{"type":"HEARTBEAT"}'
    assert encode(event) == b'20\n{"type":"HEARTBEAT"}'


@pytest.mark.parametrize(
    "stream,message",
    [
        (b"x1\nabc", "bad record length"),
        (b"0\n", "out of range"),
        (b"999999999\n", "out of range"),
        (b"99999999999\n", "no record length"),
        (b"1" * 40, "no record length"),
    ],
)
def test_bad_streams_are_refused(stream: bytes, message: str) -> None:
    with pytest.raises(RecordIOError, match=message):
        list(Decoder().feed(stream))


def test_empty_records_cannot_be_encoded() -> None:
    with pytest.raises(RecordIOError):
        encode(b"")
