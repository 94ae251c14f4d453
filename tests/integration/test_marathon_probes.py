"""marathon_py.probes against real servers on 127.0.0.1 started by each test: HTTP status classes, no
redirect following, timeouts, HTTPS without certificate checks, TCP connects; and one probe round through
``probe_target`` and ``AppHealth`` as the leader runs it (reference §6)."""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from marathon_py.constraints import Placement
from marathon_py.health import AppHealth, Result, probe_target
from marathon_py.instances import InstanceRecord
from marathon_py.probes import READINESS_BODY_MAX, probe, readiness

HOST = "127.0.0.1"
HTTP = {"protocol": "HTTP", "path": "/ok", "portIndex": 0, "timeoutSeconds": 5, "ignoreHttp1xx": False}
HTTP |= {"gracePeriodSeconds": 0, "maxConsecutiveFailures": 3, "intervalSeconds": 1}


async def _slow(_: web.Request) -> web.Response:
    await asyncio.sleep(5)  # cut short by the runner's shutdown_timeout when the test ends
    return web.Response(text="late")


def _respond(
    status: int, headers: dict[str, str] | None = None
) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(_: web.Request) -> web.Response:
        return web.Response(status=status, headers=headers)

    return handler


def _routes() -> web.Application:
    app = web.Application()
    app.router.add_get("/ok", _respond(200))
    app.router.add_get("/moved", _respond(302, {"Location": "/nowhere"}))
    app.router.add_get("/fail", _respond(503))
    app.router.add_get("/slow", _slow)
    app.router.add_get("/warming", _text(503, "warming up"))
    app.router.add_get("/big", _text(200, "x" * (READINESS_BODY_MAX + 10)))
    return app


def _text(status: int, text: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(_: web.Request) -> web.Response:
        return web.Response(status=status, text=text)

    return handler


@asynccontextmanager
async def serving(ssl_context: ssl.SSLContext | None = None) -> AsyncIterator[int]:
    """The test app on an OS-picked port; always cleaned up."""
    runner = web.AppRunner(_routes(), shutdown_timeout=0.1)
    await runner.setup()
    try:
        site = web.TCPSite(runner, HOST, 0, ssl_context=ssl_context)
        await site.start()
        server = site._server
        assert isinstance(server, asyncio.Server)
        yield int(server.sockets[0].getsockname()[1])
    finally:
        await runner.cleanup()


def run(body: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(body(), 30))


def closed_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/ok", Result(True)),
        ("ok", Result(True)),  # Marathon adds the leading slash
        ("/moved", Result(True)),  # 3xx is healthy and not followed
        ("/fail", Result(False, "503 Service Unavailable")),
        ("/missing", Result(False, "404 Not Found")),
    ],
)
def test_http_probe_status_classes(path: str, expected: Result) -> None:
    async def body() -> None:
        async with serving() as port:
            assert await probe(HTTP | {"path": path}, HOST, port) == expected

    run(body)


def test_http_probe_times_out_and_reports_connection_failures() -> None:
    async def body() -> None:
        async with serving() as port, aiohttp.ClientSession() as session:
            slow = await probe(HTTP | {"path": "/slow", "timeoutSeconds": 0.2}, HOST, port, session)
            assert slow.healthy is False and "timed out" in slow.cause
        refused = await probe(HTTP, HOST, closed_port())
        assert refused.healthy is False and refused.cause

    run(body)


def test_readiness_check_answers_and_their_last_response() -> None:
    check = {"protocol": "HTTP", "path": "/warming", "timeoutSeconds": 2, "httpStatusCodesForReady": [200]}

    async def body() -> None:
        async with serving() as port, aiohttp.ClientSession() as session:
            ready, answer = await readiness(check, HOST, port, session)
            assert not ready
            assert answer == {"status": 503, "contentType": "text/plain; charset=utf-8", "body": "warming up"}
            ready, _ = await readiness(check | {"httpStatusCodesForReady": [200, 503]}, HOST, port, session)
            assert ready
            ready, answer = await readiness(check | {"path": "/moved"}, HOST, port, session)
            assert not ready and answer is not None and answer["status"] == 302  # redirects not followed
            ready, answer = await readiness(check | {"path": "/big"}, HOST, port, session)
            assert ready and answer is not None and len(answer["body"]) == READINESS_BODY_MAX
            assert await readiness(check, HOST, closed_port(), session) == (False, None)
            slow = check | {"path": "/slow", "timeoutSeconds": 0.2}
            assert await readiness(slow, HOST, port, session) == (False, None)

    run(body)


def test_tcp_probe() -> None:
    async def body() -> None:
        async with serving() as port:
            assert await probe({"protocol": "TCP", "timeoutSeconds": 2}, HOST, port) == Result(True)
        refused = await probe({"protocol": "TCP", "timeoutSeconds": 2}, HOST, closed_port())
        assert refused.healthy is False and refused.cause.startswith("ConnectionRefusedError: ")

    run(body)


def test_mesos_run_checks_are_not_probed_here() -> None:
    async def body() -> None:
        with pytest.raises(ValueError, match="MESOS_HTTP"):
            await probe({"protocol": "MESOS_HTTP"}, HOST, 1)

    run(body)


@pytest.mark.skipif(
    shutil.which("openssl") is None, reason="needs the openssl CLI for a self-signed certificate"
)
def test_https_probe_accepts_a_self_signed_certificate(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    openssl = [
        "openssl",
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=localhost",
    ]
    subprocess.run(
        [*openssl, "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    async def body() -> None:
        async with serving(context) as port:
            assert await probe(HTTP | {"protocol": "HTTPS"}, HOST, port) == Result(True)
            fail = await probe(HTTP | {"protocol": "HTTPS", "path": "/fail"}, HOST, port)
            assert fail == Result(False, "503 Service Unavailable")

    run(body)


def test_a_probe_round_as_the_leader_runs_it() -> None:
    """probe_target picks the host port by portIndex; results drive alive, events and the instance health."""
    app: dict[str, Any] = {"id": "/web", "version": "2020-01-01T00:00:00.000Z", "healthChecks": [HTTP]}
    app |= {"portDefinitions": [{"port": 10000}], "networks": [{"mode": "host"}]}
    base = InstanceRecord("web.instance-1", "/web", app["version"], condition="Running", since=0.0)

    async def body() -> None:
        async with serving() as port:
            health = AppHealth(app)
            rec = replace(
                base, task_id="web.instance-1._app.1", placement=Placement(HOST), host_ports=(port,)
            )
            for i, path in enumerate(["/ok", "/fail"]):
                check = {**health.checks[0], "path": path}
                target = probe_target(app, check, rec)
                assert target == (HOST, port)
                verdict = health.result(0, rec, await probe(check, *target), 100.0 + i)
                assert verdict.health_changed and verdict.healthy is (path == "/ok")
            assert [h.alive for h in health.results(rec.instance_id)] == [False]
            assert health.results(rec.instance_id)[0].last_failure_cause == "503 Service Unavailable"

    run(body)
