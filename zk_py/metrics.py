"""Prometheus ``/metrics`` for zk_py, where Apache's PrometheusMetricsProvider would serve it.

Enabled by the same zoo.cfg keys (``metricsProvider.className=...PrometheusMetricsProvider``,
``metricsProvider.httpPort`` default 7000, ``metricsProvider.httpHost`` default 0.0.0.0);
metric names are the ``mntr`` keys without ``zk_``, as upstream exports them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Any

log = logging.getLogger("zk_py.metrics")


def render(values: Iterable[tuple[str, Any]]) -> str:
    """Prometheus text exposition of the numeric mntr values."""
    lines: list[str] = []
    for key, value in values:
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        name = key.removeprefix("zk_")
        lines.append(f"# TYPE {name} gauge")
        lines.append(f"{name} {value}")
    return "\n".join(lines) + "\n"


async def serve(host: str, port: int, values: Callable[[], Iterable[tuple[str, Any]]]) -> asyncio.Server:
    """A minimal HTTP/1.0 responder: GET /metrics → 200, anything else → 404."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5)
            parts = head.split(b" ", 2)
            path = parts[1].split(b"?", 1)[0] if len(parts) > 1 else b""
            if parts[0] == b"GET" and path == b"/metrics":
                body = render(values()).encode()
                status, ctype = b"200 OK", b"text/plain; version=0.0.4; charset=utf-8"
            else:
                body, status, ctype = b"not found\n", b"404 Not Found", b"text/plain"
            writer.write(
                b"HTTP/1.0 "
                + status
                + b"\r\nContent-Type: "
                + ctype
                + b"\r\nContent-Length: "
                + str(len(body)).encode()
                + b"\r\nConnection: close\r\n\r\n"
                + body
            )
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, host, port)
    log.info("Prometheus metrics on http://%s:%d/metrics", host, port)
    return server
