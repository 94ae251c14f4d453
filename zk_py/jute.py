"""Jute, ZooKeeper's binary record encoding (big-endian, no tags, no padding).

Records are declared once as dataclasses with a ``FIELDS`` schema; an encoder and a
decoder are generated for each record at import time, merging runs of fixed-size
fields into a single precompiled ``struct`` so that hot records (Stat, headers)
cost one ``pack``/``unpack`` call.  Pure code: bytes in, records out.
"""

from __future__ import annotations

import builtins
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, dataclass_transform, get_type_hints

INT = "i"
LONG = "q"
BOOL = "?"
USTRING = "s"
BUFFER = "b"
_FIXED = {INT: 4, LONG: 8, BOOL: 1}

_I = struct.Struct("!i")
_Q = struct.Struct("!q")


class JuteError(ValueError):
    """Raised when bytes do not decode as the expected record (truncated or garbage)."""


@dataclass(frozen=True, slots=True)
class Vector:
    """Field type: ``vector<elem>``; ``elem`` is a primitive code or a record class."""

    elem: Any


class _NullString(str):
    """Type of :data:`NULL_STRING`."""

    __slots__ = ()


# The jute null string (length -1).  It equals "" because kazoo sends empty ids that way, yet stays
# distinguishable (``is NULL_STRING``) where upstream fails on a null, such as a request path.
NULL_STRING = _NullString()


class Reader:
    """Cursor over one frame's payload."""

    __slots__ = ("buf", "end", "pos")

    def __init__(self, buf: bytes | memoryview, pos: builtins.int = 0) -> None:
        self.buf = buf
        self.pos = pos
        self.end = len(buf)

    def remaining(self) -> builtins.int:
        return self.end - self.pos

    def _need(self, n: builtins.int) -> None:
        if n < 0:
            raise JuteError(f"unreasonable length {n} at offset {self.pos}")
        if self.pos + n > self.end:
            raise JuteError(
                f"truncated record: need {n} bytes at offset {self.pos}, have {self.end - self.pos}"
            )

    def unpack(self, st: struct.Struct) -> tuple[Any, ...]:
        self._need(st.size)
        v = st.unpack_from(self.buf, self.pos)
        self.pos += st.size
        return v

    def int(self) -> builtins.int:
        self._need(4)
        v: builtins.int = _I.unpack_from(self.buf, self.pos)[0]
        self.pos += 4
        return v

    def long(self) -> builtins.int:
        self._need(8)
        v: builtins.int = _Q.unpack_from(self.buf, self.pos)[0]
        self.pos += 8
        return v

    def bool(self) -> bool:
        self._need(1)
        v = self.buf[self.pos] != 0
        self.pos += 1
        return v

    def buffer(self) -> bytes | None:
        n = self.int()
        if n == -1:
            return None
        self._need(n)
        v = bytes(self.buf[self.pos : self.pos + n])
        self.pos += n
        return v

    def ustring(self) -> str:
        """A null string (length -1, as kazoo sends for empty ids) reads as ``""``."""
        n = self.int()
        if n == -1:
            return NULL_STRING
        self._need(n)
        raw = bytes(self.buf[self.pos : self.pos + n])
        self.pos += n
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise JuteError(f"invalid UTF-8 in string: {e}") from e

    def vector(self, read: Callable[[Reader], Any]) -> list[Any]:
        n = self.int()
        if n < 0:
            return []
        if n > self.remaining():  # every element takes at least one byte
            raise JuteError(f"vector length {n} exceeds the frame")
        return [read(self) for _ in range(n)]


class Writer:
    """Append-only output buffer."""

    __slots__ = ("buf",)

    def __init__(self) -> None:
        self.buf = bytearray()

    def int(self, v: builtins.int) -> None:
        self.buf += _I.pack(v)

    def long(self, v: builtins.int) -> None:
        self.buf += _Q.pack(v)

    def bool(self, v: bool) -> None:
        self.buf.append(1 if v else 0)

    def buffer(self, v: bytes | None) -> None:
        if v is None:
            self.buf += b"\xff\xff\xff\xff"
        else:
            self.buf += _I.pack(len(v))
            self.buf += v

    def ustring(self, v: str | None) -> None:
        if v is None or v is NULL_STRING:
            self.buf += b"\xff\xff\xff\xff"
        else:
            b = v.encode("utf-8")
            self.buf += _I.pack(len(b))
            self.buf += b

    def vector(self, items: list[Any] | None, write: Callable[[Writer, Any], None]) -> None:
        if items is None:
            self.buf += b"\xff\xff\xff\xff"
            return
        self.buf += _I.pack(len(items))
        for it in items:
            write(self, it)

    def getvalue(self) -> bytes:
        return bytes(self.buf)


Int = Annotated[int, INT]
Long = Annotated[int, LONG]
Bool = Annotated[bool, BOOL]
UString = Annotated[str, USTRING]
Buffer = Annotated[bytes | None, BUFFER]
UStrings = Annotated[list[str], Vector(USTRING)]


class Record:
    """Base of every jute record; subclasses declare fields with the annotated types above."""

    __slots__ = ()
    FIELDS: ClassVar[tuple[tuple[str, Any], ...]] = ()
    _enc: ClassVar[Callable[[Writer, Any], None]]
    _dec: ClassVar[Callable[[Reader], Any]]

    def write(self, w: Writer) -> None:
        type(self)._enc(w, self)

    def to_bytes(self) -> bytes:
        w = Writer()
        type(self)._enc(w, self)
        return bytes(w.buf)

    @classmethod
    def read(cls, r: Reader) -> Any:
        return cls._dec(r)

    @classmethod
    def from_bytes(cls, data: bytes | memoryview) -> Any:
        return cls._dec(Reader(data))


def _elem_reader(t: Any) -> Callable[[Reader], Any]:
    if isinstance(t, type) and issubclass(t, Record):
        return t._dec
    return {
        INT: Reader.int,
        LONG: Reader.long,
        BOOL: Reader.bool,
        USTRING: Reader.ustring,
        BUFFER: Reader.buffer,
    }[t]


def _elem_writer(t: Any) -> Callable[[Writer, Any], None]:
    if isinstance(t, type) and issubclass(t, Record):
        return t._enc
    writers: dict[str, Callable[[Writer, Any], None]] = {
        INT: Writer.int,
        LONG: Writer.long,
        BOOL: Writer.bool,
        USTRING: Writer.ustring,
        BUFFER: Writer.buffer,
    }
    return writers[t]


@dataclass_transform()
def record(cls: type[Any]) -> type[Any]:
    """Class decorator: make ``cls`` a slotted dataclass and generate its jute codec.

    Consecutive fixed-size fields are packed with one struct; the generated code is
    plain Python so a profile shows one frame per record.
    """
    hints = get_type_hints(cls, include_extras=True)
    fields: list[tuple[str, Any]] = []
    for fname in cls.__annotations__:
        hint = hints[fname]
        meta = getattr(hint, "__metadata__", None)
        if meta:
            fields.append((fname, meta[0]))
        elif isinstance(hint, type) and issubclass(hint, Record):
            fields.append((fname, hint))
    cls = dataclass(slots=True)(cls)
    cls.FIELDS = tuple(fields)
    ns: dict[str, Any] = {"cls": cls}
    dec: list[str] = ["def _dec(r):"]
    enc: list[str] = ["def _enc(w, o):"]
    names: list[str] = []
    i = 0
    k = 0
    while i < len(fields):
        name, t = fields[i]
        if isinstance(t, str) and t in _FIXED:
            run = []
            while i < len(fields) and isinstance(fields[i][1], str) and fields[i][1] in _FIXED:
                run.append(fields[i])
                i += 1
            st = struct.Struct("!" + "".join(f[1] for f in run))
            ns[f"_s{k}"] = st
            vars_ = [f"v_{f[0]}" for f in run]
            dec.append(f"    {', '.join(vars_)}, = r.unpack(_s{k})")
            enc.append(f"    w.buf += _s{k}.pack({', '.join('o.' + f[0] for f in run)})")
            names.extend(vars_)
            k += 1
            continue
        if isinstance(t, Vector):
            ns[f"_r{k}"] = _elem_reader(t.elem)
            ns[f"_w{k}"] = _elem_writer(t.elem)
            dec.append(f"    v_{name} = r.vector(_r{k})")
            enc.append(f"    w.vector(o.{name}, _w{k})")
        else:
            ns[f"_r{k}"] = _elem_reader(t)
            ns[f"_w{k}"] = _elem_writer(t)
            dec.append(f"    v_{name} = _r{k}(r)")
            enc.append(f"    _w{k}(w, o.{name})")
        names.append(f"v_{name}")
        k += 1
        i += 1
    dec.append(f"    return cls({', '.join(names)})")
    if len(enc) == 1:
        enc.append("    pass")
    exec("\n".join(dec), ns)
    exec("\n".join(enc), ns)
    cls._dec = staticmethod(ns["_dec"])
    cls._enc = staticmethod(ns["_enc"])
    return cls
