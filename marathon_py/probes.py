"""The I/O of Marathon-run health checks (reference §6; Marathon 1.10.26 ``HealthCheckWorker.scala``): one
``GET`` for ``HTTP``/``HTTPS`` (certificates not verified, redirects not followed: a 3xx is healthy anyway) or
one TCP connect for ``TCP``, bounded by ``timeoutSeconds``.  What the answer means is ``health.http_result``;
what to do with it is ``health.AppHealth.result``.  Also the ``GET`` of a readiness check (§6), whose answer
becomes a TaskReadinessCheckResult's ``lastResponse``.
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
    url = _url(protocol, host, port, check.get("path"))
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


READINESS_BODY_MAX = 64 * 1024  # bytes of a readiness answer kept as lastResponse (bounded memory per task)


async def readiness(
    check: Mapping[str, Any], host: str, port: int, session: aiohttp.ClientSession
) -> tuple[bool, dict[str, Any] | None]:
    """Run a readiness check against ``host:port`` (from ``reactor.readiness_target``): ready when the
    status is one of ``httpStatusCodesForReady`` (default 200), and the answer (``status``, ``contentType``,
    ``body``), or None when there was none (refused, timed out)."""
    url = _url(str(check.get("protocol", "HTTP")), host, port, check.get("path"))
    codes = set(check.get("httpStatusCodesForReady") or [200])
    timeout = aiohttp.ClientTimeout(total=float(check.get("timeoutSeconds", 10)))
    try:
        async with session.get(url, ssl=False, timeout=timeout, allow_redirects=False) as resp:
            body = b""
            while len(body) < READINESS_BODY_MAX:  # read(n) gives what has arrived, up to n
                chunk = await resp.content.read(READINESS_BODY_MAX - len(body))
                if not chunk:
                    break
                body += chunk
            answer = {
                "status": resp.status,
                "contentType": resp.headers.get("Content-Type", ""),
                "body": body.decode("utf-8", errors="replace"),
            }
            return resp.status in codes, answer
    except (aiohttp.ClientError, OSError, TimeoutError):
        return False, None


def _url(protocol: str, host: str, port: int, path: object) -> str:
    text = str(path or "")
    return f"{protocol.lower()}://{host}:{port}{text if text.startswith('/') else '/' + text}"
