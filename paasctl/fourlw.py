"""Four-letter-word client: one TCP connection per command, read until the server closes it.

Kept apart from kazoo on purpose: ``status`` must work against servers that refuse sessions (no
quorum), and must look at every server of the connect string, not just the one kazoo picked.
"""

from __future__ import annotations

import socket
import time
from concurrent.futures import ThreadPoolExecutor

from paasctl.zkformat import ServerStatus, format_address, judge

MAX_REPLY = 1 << 20  # a srvr reply is a few hundred bytes; cap what a confused peer can make us buffer


def send_command(host: str, port: int, cmd: str, timeout: float) -> str:
    """Send ``cmd`` and return the whole reply; raises OSError (incl. TimeoutError) on failure.

    ``timeout`` bounds the whole exchange, not each recv, so a trickling peer cannot stall us.
    """
    deadline = time.monotonic() + timeout
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(cmd.encode("ascii"))
        chunks: list[bytes] = []
        size = 0
        while size < MAX_REPLY:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no complete reply to {cmd} within {timeout:g}s")
            sock.settimeout(left)
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    return b"".join(chunks).decode("utf-8", errors="replace")


def _describe(err: OSError) -> str:
    if isinstance(err, ConnectionRefusedError):
        return "connection refused"
    if isinstance(err, TimeoutError):
        return str(err) if str(err) and str(err) != "timed out" else "timed out"
    return err.strerror or str(err) or type(err).__name__


def probe(host: str, port: int, timeout: float) -> ServerStatus:
    """Ask one server ``ruok`` and ``srvr`` and judge the answers."""
    replies: dict[str, str | None] = {"ruok": None, "srvr": None}
    errors: dict[str, str | None] = {"ruok": None, "srvr": None}
    for cmd in ("ruok", "srvr"):
        try:
            replies[cmd] = send_command(host, port, cmd, timeout)
        except OSError as e:
            errors[cmd] = _describe(e)
            break  # unreachable: asking again would only spend another timeout
    return judge(format_address(host, port), replies["ruok"], errors["ruok"], replies["srvr"], errors["srvr"])


def probe_all(servers: list[tuple[str, int]], timeout: float) -> list[ServerStatus]:
    """Probe every server in parallel so a dead one costs one timeout, not one per server."""
    with ThreadPoolExecutor(max_workers=min(16, len(servers))) as pool:
        return list(pool.map(lambda hp: probe(hp[0], hp[1], timeout), servers))
