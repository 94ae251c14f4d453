"""The I/O of Marathon-run health checks (reference §6; Marathon 1.10.26 ``HealthCheckWorker.scala``): one
``GET`` for ``HTTP``/``HTTPS`` (certificates not verified, redirects not followed: a 3xx is healthy anyway) or
one TCP connect for ``TCP``, bounded by ``timeoutSeconds``.  What the answer means is ``health.http_result``;
what to do with it is ``health.AppHealth.result``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import Any

import aiohttp

from marathon_py.health import Result, http_result


async def probe(
    check: Mapping[str, Any], host: str, port: int, session: aiohttp.ClientSession | None = None
) -> Result:
    """Run one Marathon check against ``host:port`` (from ``health.probe_target``).  Pass a shared
    ``session`` when probing many instances; without one a session is opened for this probe."""
    timeout = float(check.get("timeoutSeconds", 20))
    protocol = check.get("protocol", "HTTP")
    if protocol == "TCP":
        return await tcp_probe(host, port, timeout)
    if protocol not in ("HTTP", "HTTPS"):
        raise ValueError(f"{protocol} checks are not run by Marathon")
    path = str(check.get("path") or "")
    url = f"{protocol.lower()}://{host}:{port}{path if path.startswith('/') else '/' + path}"
    ignore_1xx = protocol == "HTTP" and bool(check.get("ignoreHttp1xx", False))
    if session is not None:
        return await http_probe(session, url, timeout, ignore_1xx)
    async with aiohttp.ClientSession() as own:
        return await http_probe(own, url, timeout, ignore_1xx)


async def http_probe(session: aiohttp.ClientSession, url: str, timeout: float, ignore_1xx: bool) -> Result:
    try:
        limit = aiohttp.ClientTimeout(total=timeout)
        async with session.get(url, ssl=False, allow_redirects=False, timeout=limit) as resp:
            return http_result(resp.status, resp.reason or "", ignore_1xx)
    except TimeoutError:
        return Result(False, f"Health check timed out after {timeout:g} seconds")
    except (aiohttp.ClientError, OSError) as e:
        return Result(False, str(e) or type(e).__name__)


async def tcp_probe(host: str, port: int, timeout: float) -> Result:
    """Healthy when a connection opens within ``timeout`` (it is closed at once); the cause of a failure
    reads like Marathon's ``<exception class>: <message>``."""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except TimeoutError:
        return Result(False, f"SocketTimeoutException: connect timed out after {timeout:g} seconds")
    except OSError as e:
        return Result(False, f"{type(e).__name__}: {e}")
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return Result(True)
