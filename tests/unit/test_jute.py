"""Round trip of every jute record type, plus the primitive encodings upstream relies on."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zk_py import proto
from zk_py.jute import BOOL, BUFFER, INT, LONG, USTRING, JuteError, Reader, Record, Vector, Writer

RECORDS = sorted(
    (c for _, c in inspect.getmembers(proto, inspect.isclass) if issubclass(c, Record) and c is not Record),
    key=lambda c: c.__name__,
)

_PRIM = {
    INT: st.integers(-(2**31), 2**31 - 1),
    LONG: st.integers(-(2**63), 2**63 - 1),
    BOOL: st.booleans(),
    USTRING: st.text(max_size=20),
    BUFFER: st.one_of(st.none(), st.binary(max_size=40)),
}


def strategy_for(t: Any) -> st.SearchStrategy[Any]:
    if isinstance(t, Vector):
        return st.lists(strategy_for(t.elem), max_size=4)
    if isinstance(t, type) and issubclass(t, Record):
        return st.builds(t, *(strategy_for(ft) for _, ft in t.FIELDS))
    return _PRIM[t]


def test_every_record_is_covered() -> None:
    assert len(RECORDS) > 40
    for cls in RECORDS:
        assert cls.FIELDS, cls


@pytest.mark.parametrize("cls", RECORDS, ids=lambda c: c.__name__)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_round_trip(cls: type[Record], data: st.DataObject) -> None:
    rec = data.draw(strategy_for(cls))
    raw = rec.to_bytes()
    assert cls.from_bytes(raw) == rec
    # A truncated record never decodes silently.
    if raw:
        with pytest.raises(JuteError):
            cls.from_bytes(raw[:-1])


def test_stat_is_68_bytes_like_kazoo() -> None:
    assert len(proto.Stat(*range(11)).to_bytes()) == 68


def test_null_encodings() -> None:
    w = Writer()
    w.ustring(None)
    w.buffer(None)
    w.vector(None, Writer.int)
    assert w.getvalue() == b"\xff\xff\xff\xff" * 3
    r = Reader(w.getvalue())
    assert r.ustring() == ""  # kazoo sends empty ids as null strings
    assert r.buffer() is None
    assert r.vector(Reader.int) == []


def test_hostile_lengths_are_rejected() -> None:
    with pytest.raises(JuteError):
        Reader(b"\x7f\xff\xff\xff").ustring()
    with pytest.raises(JuteError):
        Reader(b"\x7f\xff\xff\xff").vector(Reader.int)
    with pytest.raises(JuteError):
        Reader(b"\x00\x00\x00\x02\xff\xfe").ustring()  # invalid UTF-8


def test_connect_request_matches_kazoo_wire_layout() -> None:
    req = proto.ConnectRequest(0, 0, 10000, 0, b"\0" * 16)
    raw = req.to_bytes()
    assert len(raw) == 44  # + 1 readOnly byte on the wire = the 45 bytes kazoo sends
