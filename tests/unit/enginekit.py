"""Drive :class:`zk_py.engine.Engine` in-process with real wire frames (no sockets)."""

from __future__ import annotations

import struct
from typing import Any

from zk_py.datatree import DataTree
from zk_py.engine import Client, Engine, EngineConfig
from zk_py.jute import Reader
from zk_py.proto import ConnectRequest, ConnectResponse, Id, RequestHeader

_HDR = struct.Struct("!iqi")


class Kit:
    def __init__(self, tree: DataTree | None = None, **cfg: Any) -> None:
        self.engine = Engine(EngineConfig(**cfg), tree, mono_ms=1_000)
        self.engine.wall = 1_700_000_000_000
        self.engine.mono = 1_000
        self.records: list[tuple[int, bytes]] = []
        self.inbox: dict[Client, list[bytes | None]] = {}

    def session(self, ip: str = "127.0.0.1") -> Client:
        c = Client(remote_ip=ip, remote=f"/{ip}:1", auth=[Id("ip", ip)])
        self.engine.connect(c, ConnectRequest(0, 0, 10000, 0, b"\0" * 16), True)
        frames = self.drain(c)
        assert frames and frames[0] is not None
        ConnectResponse.from_bytes(frames[0][4:])
        return c

    def drain(self, c: Client) -> list[bytes | None]:
        """Everything sent to ``c`` so far (frames, or None for a close), in order."""
        for cl, f in self.engine.out:
            self.inbox.setdefault(cl, []).append(f)
        self.engine.out = []
        self.records.extend(self.engine.log)
        self.engine.log = []
        return self.inbox.pop(c, [])

    def call(self, c: Client, xid: int, op: int, rec: Any = None) -> tuple[int, int, Reader, list[bytes]]:
        """Send one request: (err, zxid, body reader, notifications sent to ``c`` before the reply)."""
        frame = RequestHeader(xid, op).to_bytes() + (rec.to_bytes() if rec is not None else b"")
        self.engine.request(c, frame)
        frames = [f for f in self.drain(c) if f is not None]
        notes = [f for f in frames if struct.unpack_from("!i", f, 4)[0] == -1]
        replies = [f for f in frames if struct.unpack_from("!i", f, 4)[0] == xid]
        assert len(replies) == 1, frames
        _rx, zxid, err = struct.unpack_from("!iqi", replies[0], 4)
        return err, zxid, Reader(replies[0][20:]), notes
