"""A malformed request to an aiohttp daemon (marathon-py, master-py, agent-py) is the client's fault: it is
answered 400 and logged as one WARNING line, not an ERROR with a traceback; the server's own faults stay
ERRORs."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

import pytest
from aiohttp import web

from paas_common.runtime import client_fault_as_warning


async def _exchange(port: int, raw: bytes) -> bytes:
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5)
    writer.write(raw)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(65536), 5)
    writer.close()
    return answer


async def _serve_and_send(raws: list[bytes]) -> list[bytes]:
    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError("server fault")

    app = web.Application()
    app.router.add_get("/boom", boom)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        return [await _exchange(port, raw) for raw in raws]
    finally:
        await runner.cleanup()


@pytest.fixture
def server_log() -> Iterator[logging.Logger]:
    log = logging.getLogger("aiohttp.server")
    log.addFilter(client_fault_as_warning)
    yield log
    log.removeFilter(client_fault_as_warning)


def test_malformed_requests_are_one_warning_line(
    server_log: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    bad_header = b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n"
    bad_chunk = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
    server_fault = b"GET /boom HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    with caplog.at_level(logging.DEBUG, logger="aiohttp.server"):
        answers = asyncio.run(_serve_and_send([bad_header, bad_chunk, server_fault]))
    assert [a.split(b"\r\n", 1)[0].split(b" ", 1)[1] for a in answers] == [
        b"400 Bad Request",
        b"400 Bad Request",
        b"500 Internal Server Error",
    ]
    records = [r for r in caplog.records if r.name == "aiohttp.server"]
    warnings = [r for r in records if r.levelno == logging.WARNING]
    errors = [r for r in records if r.levelno == logging.ERROR]
    assert [r.getMessage().split(": ", 1)[1] for r in warnings] == [
        "400 Invalid header token: b'Bad Header'",
        "400 Invalid character in chunk size: b'zz'",
    ]
    assert all(r.exc_info is None and "\n" not in r.getMessage() for r in warnings)
    assert len(errors) == 1 and errors[0].exc_info is not None  # the server's own fault stays an ERROR
