"""Session ids, passwords and bucketed expiry (SessionTrackerImpl, ExpiryQueue).

Pure: callers pass the clock in milliseconds.  Passwords are the ones upstream derives
from the session id with java.util.Random, so any member of an ensemble (or Apache
ZooKeeper itself) can validate a reconnect without shared state.
"""

from __future__ import annotations

from dataclasses import dataclass

SUPER_SECRET = 0xB3415C00
_MASK48 = (1 << 48) - 1
_MULT = 0x5DEECE66D


def _signed64(v: int) -> int:
    v &= (1 << 64) - 1
    return v - (1 << 64) if v >= 1 << 63 else v


def java_random_bytes(seed: int, n: int) -> bytes:
    """``new java.util.Random(seed).nextBytes(new byte[n])``."""
    s = (seed ^ _MULT) & _MASK48
    out = bytearray()
    while len(out) < n:
        s = (s * _MULT + 0xB) & _MASK48
        rnd = s >> 16  # next(32), as an unsigned 32-bit value
        for _ in range(min(4, n - len(out))):
            out.append(rnd & 0xFF)
            rnd >>= 8
    return bytes(out)


def session_password(session_id: int) -> bytes:
    return java_random_bytes(session_id ^ SUPER_SECRET, 16)


def initial_session_id(server_id: int, elapsed_ms: int) -> int:
    """First session id of a server: ``((elapsed << 24) >>> 8) | (sid << 56)``."""
    nxt = ((elapsed_ms << 24) & ((1 << 64) - 1)) >> 8
    nxt |= (server_id & 0xFF) << 56
    return _signed64(nxt)


def fmt_sid(session_id: int) -> str:
    """Session id as upstream prints it: 0x + unsigned hex."""
    return hex(session_id & ((1 << 64) - 1))


@dataclass(slots=True)
class SessionState:
    session_id: int
    timeout: int
    expires_at: int
    closing: bool = False


class SessionTracker:
    """Expiry in tickTime buckets: a session expires between T and T+tick after its last packet."""

    def __init__(self, tick_ms: int) -> None:
        self.tick = tick_ms
        self.sessions: dict[int, SessionState] = {}
        self.buckets: dict[int, set[int]] = {}

    def _bucket(self, t: int) -> int:
        return (t // self.tick + 1) * self.tick

    def add(self, session_id: int, timeout: int, now: int) -> None:
        self.remove(session_id)
        exp = self._bucket(now + timeout)
        self.sessions[session_id] = SessionState(session_id, timeout, exp)
        self.buckets.setdefault(exp, set()).add(session_id)

    def touch(self, session_id: int, now: int) -> bool:
        s = self.sessions.get(session_id)
        if s is None or s.closing:
            return False
        exp = self._bucket(now + s.timeout)
        if exp != s.expires_at:
            b = self.buckets.get(s.expires_at)
            if b is not None:
                b.discard(session_id)
                if not b:
                    del self.buckets[s.expires_at]
            s.expires_at = exp
            self.buckets.setdefault(exp, set()).add(session_id)
        return True

    def set_timeout(self, session_id: int, timeout: int, now: int) -> None:
        s = self.sessions.get(session_id)
        if s is not None:
            s.timeout = timeout
            self.touch(session_id, now)

    def remove(self, session_id: int) -> None:
        s = self.sessions.pop(session_id, None)
        if s is not None:
            b = self.buckets.get(s.expires_at)
            if b is not None:
                b.discard(session_id)
                if not b:
                    del self.buckets[s.expires_at]

    def mark_closing(self, session_id: int) -> None:
        s = self.sessions.get(session_id)
        if s is not None:
            s.closing = True

    def expired(self, now: int) -> list[int]:
        """Sessions whose bucket has passed; they are marked closing (the caller logs closeSession)."""
        out: list[int] = []
        for t in sorted(k for k in self.buckets if k <= now):
            for sid in sorted(self.buckets.pop(t)):
                s = self.sessions.get(sid)
                if s is not None and not s.closing:
                    s.closing = True
                    out.append(sid)
        return out

    def alive(self, session_id: int) -> bool:
        s = self.sessions.get(session_id)
        return s is not None and not s.closing
