"""marathon_py.http served by real aiohttp runners on 127.0.0.1: a standby proxying to a leader on another
port (reference §1.2: passthrough of status, body and headers, X-Marathon-Via loops, a refused leader, the
302 for /v2/events, authentication before proxying), event streams as production serves them (a slow
consumer dropped while another keeps receiving, a detach when a client goes, §3) and HTTPS from PEM files."""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import shutil
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from marathon_py.http import create_app
from marathon_py.http.auth import BasicAuth, leader_ssl_context, server_ssl_context
from marathon_py.http.errors import NotFound, json_response
from marathon_py.http.events import EventBus
from marathon_py.http.leader import LeaderProxy, Leadership
from marathon_py.http.system import Metrics, SystemRoutes
from tests.support.servers import free_port

HOST = "127.0.0.1"
WAIT = 5.0  # every single wait is bounded by this
SSE = {"Accept": "text/event-stream"}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def run(body: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(body(), 60))


class Node:
    """One marathon_py HTTP layer on its own port, with the daemon stubbed (``system.Status``)."""

    def __init__(
        self,
        *,
        leader: Node | str | None = None,
        routes: dict[tuple[str, str], Handler] | None = None,
        auth: BasicAuth | None = None,
        bus: EventBus | None = None,
        heartbeat: float = 10.0,
        tls: ssl.SSLContext | None = None,
        **proxy: Any,
    ) -> None:
        self.port = free_port()
        self.me = f"{HOST}:{self.port}"
        self.leader = leader
        self.bus = EventBus() if bus is None else bus
        self.tls = tls
        proxy.setdefault("scheme", "https" if tls else "http")
        self.proxy = LeaderProxy(self.me, self.leadership, **proxy)
        system = SystemRoutes(self, bus=self.bus)
        self.app = create_app(self.proxy, system, self.bus, auth=auth, heartbeat_interval=heartbeat)
        for (method, path), handler in (routes or {}).items():
            self.app.router.add_route(method, path, handler)
        self.runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=0.5)

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.me}"

    def leadership(self) -> Leadership:
        if self.leader is None:
            return Leadership(True, self.me)
        return Leadership(False, self.leader if isinstance(self.leader, str) else self.leader.me)

    def framework_id(self) -> str | None:
        return None

    def mesos_leader_ui_url(self) -> str | None:
        return None

    def metrics(self) -> Metrics:
        return Metrics()

    def abdicate(self) -> None:
        pass

    async def start(self) -> None:
        await self.runner.setup()
        await web.TCPSite(self.runner, HOST, self.port, ssl_context=self.tls).start()

    async def stop(self) -> None:
        self.bus.close()
        await self.runner.cleanup()


@asynccontextmanager
async def serving(*nodes: Node) -> AsyncIterator[aiohttp.ClientSession]:
    """The nodes started (and always stopped), and a client session for the test."""
    async with AsyncExitStack() as stack:
        for node in nodes:
            await node.start()
            stack.push_async_callback(node.stop)
        session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        stack.push_async_callback(session.close)
        yield session


async def answer(resp: aiohttp.ClientResponse) -> tuple[int, Any]:
    return resp.status, await resp.json(content_type=None)


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


# ---------------------------------------------------------------- proxying (§1.2)


class LeaderRoutes:
    """Handlers on the leader that show what arrived."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    def routes(self) -> dict[tuple[str, str], Handler]:
        return {
            ("POST", "/v2/apps"): self.create,
            ("GET", "/v2/apps"): self.echo,
            ("GET", "/v2/apps/missing"): self.missing,
            ("GET", "/zipped"): self.zipped,
        }

    def record(self, request: web.Request, body: bytes) -> None:
        self.seen.append({
            "query": request.query_string,
            "via": request.headers.getall("X-Marathon-Via", []),
            "forwarded": request.headers.get("X-Forwarded-For"),
            "type": request.headers.get("Content-Type"),
            "auth": request.headers.get("Authorization"),
            "body": body,
        })  # fmt: skip

    async def create(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.record(request, body)
        headers = {"Location": "http://leader/v2/apps/x", "Marathon-Deployment-Id": "d-1"}
        return json_response({"id": json.loads(body)["id"], "tasks": []}, 201, headers)

    async def echo(self, request: web.Request) -> web.StreamResponse:
        self.record(request, await request.read())
        return json_response({"apps": []})

    async def missing(self, request: web.Request) -> web.StreamResponse:
        raise NotFound.app("/missing")

    async def zipped(self, request: web.Request) -> web.StreamResponse:
        zipped = gzip.compress(b'{"zipped":true}')
        return web.Response(
            body=zipped, content_type="application/json", headers={"Content-Encoding": "gzip"}
        )


def test_a_standby_passes_requests_and_answers_through() -> None:
    seen = LeaderRoutes()
    leader = Node(routes=seen.routes())
    standby = Node(leader=leader)

    async def body() -> None:
        async with serving(leader, standby) as http:
            resp = await http.post(
                f"{standby.url}/v2/apps?force=true",
                data=b'{"id": "/x"}',
                headers={"Content-Type": "application/json"},
            )
            assert await answer(resp) == (201, {"id": "/x", "tasks": []})
            assert resp.headers["Location"] == "http://leader/v2/apps/x"
            assert resp.headers["Marathon-Deployment-Id"] == "d-1"
            assert resp.headers["X-Marathon-Leader"] == leader.url
            assert resp.headers.getall("X-Marathon-Via") == [f"1.1 {standby.me}"]
            assert seen.seen[-1] == {
                "query": "force=true", "via": [f"1.1 {standby.me}"], "forwarded": HOST,
                "type": "application/json", "auth": None, "body": b'{"id": "/x"}',
            }  # fmt: skip

            query = "label=a%3D%3Db&embed=apps.tasks&embed=apps.counts"
            assert await answer(await http.get(f"{standby.url}/v2/apps?{query}")) == (200, {"apps": []})
            assert seen.seen[-1]["query"] == query and seen.seen[-1]["body"] == b""

            missing = await http.get(f"{standby.url}/v2/apps/missing")
            assert await answer(missing) == (404, {"message": "App '/missing' does not exist"})
            nothing = await http.get(
                f"{standby.url}/v2/nothing"
            )  # the leader's router decides, quirks included
            assert await answer(nothing) == (500, {"message": "URI not found"})

            zipped = await http.get(f"{standby.url}/zipped", headers={"Accept-Encoding": "gzip"})
            assert zipped.headers["Content-Encoding"] == "gzip" and await zipped.json() == {"zipped": True}

            pong = await http.get(f"{standby.url}/ping")  # as in Marathon, even /ping is the leader's
            assert await pong.text() == "pong" and pong.headers["X-Marathon-Leader"] == leader.url
            info = await http.get(f"{standby.url}/v2/info")
            assert (await info.json())["elected"] is True

            moved = await http.get(
                f"{standby.url}/v2/events?event_type=a&event_type=b", allow_redirects=False
            )
            assert moved.status == 302
            assert moved.headers["Location"] == f"{leader.url}/v2/events?event_type=a&event_type=b"
            assert moved.headers["X-Marathon-Leader"] == leader.url

    run(body)


def test_proxy_loops_and_an_unreachable_leader_get_502() -> None:
    first = Node(retries=0)
    second = Node(leader=first, retries=0)
    first.leader = second  # each believes the other leads
    orphan = Node(leader=f"{HOST}:{free_port()}", retries=0)

    async def body() -> None:
        async with serving(first, second, orphan) as http:
            resp = await http.get(f"{first.url}/v2/info")
            assert await answer(resp) == (502, {"message": "Detected proxying loop."})
            refused = await http.get(f"{orphan.url}/v2/apps")
            assert await answer(refused) == (502, {"message": "Connection to leader refused."})

    run(body)


def test_a_standby_authenticates_before_it_proxies() -> None:
    seen = LeaderRoutes()
    auth = BasicAuth("ops:pa55")
    leader = Node(routes=seen.routes(), auth=auth)
    standby = Node(leader=leader, auth=auth)

    async def body() -> None:
        async with serving(leader, standby) as http:
            refused = await http.get(f"{standby.url}/v2/apps", headers=basic("ops", "nope"))
            assert await answer(refused) == (401, {"message": "Invalid username or password."})
            assert seen.seen == []
            resp = await http.get(f"{standby.url}/v2/apps", headers=basic("ops", "pa55"))
            assert await answer(resp) == (200, {"apps": []})
            assert seen.seen[-1]["auth"] == basic("ops", "pa55")["Authorization"]

    run(body)


# ---------------------------------------------------------------- event streams (§3)


async def next_event(resp: aiohttp.ClientResponse) -> dict[str, Any]:
    """The next event's JSON (heartbeat comments skipped)."""

    async def read() -> dict[str, Any]:
        while True:
            line = (await resp.content.readline()).decode()
            if not line:
                raise EOFError("stream ended")
            if line.startswith("data: "):
                doc: dict[str, Any] = json.loads(line[len("data: ") :])
                return doc

    return await asyncio.wait_for(read(), WAIT)


async def until(condition: Callable[[], bool]) -> None:
    for _ in range(int(WAIT / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met in time")


async def stalled_stream(port: int) -> socket.socket:
    """A stream whose client never reads (a tiny receive buffer, so the server's writes back up soon)."""
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await loop.sock_connect(sock, (HOST, port))
    request = f"GET /v2/events HTTP/1.1\r\nHost: {HOST}\r\nAccept: text/event-stream\r\n\r\n"
    await loop.sock_sendall(sock, request.encode())
    return sock


async def drained_to_the_end(sock: socket.socket) -> bool:
    """Read until the server's side is gone: EOF or a reset."""
    loop = asyncio.get_running_loop()

    async def read() -> bool:
        while True:
            try:
                if not await loop.sock_recv(sock, 1 << 20):
                    return True
            except ConnectionResetError:
                return True

    return await asyncio.wait_for(read(), WAIT)


def test_a_slow_consumer_is_dropped_while_the_others_keep_receiving() -> None:
    bus = EventBus(max_outstanding=4)
    leader = Node(bus=bus)
    payload = "x" * (256 * 1024)

    async def body() -> None:
        async with serving(leader) as http:
            fast = await http.get(
                f"{leader.url}/v2/events?event_type=api_post_event&event_type=event_stream_detached",
                headers=SSE,
            )
            assert fast.status == 200
            slow = await stalled_stream(leader.port)
            try:
                await until(lambda: len(bus) == 2)
                dropped_after = None
                for i in range(400):  # ~4 MiB of socket buffers fill after a few dozen events
                    bus.publish({"eventType": "api_post_event", "timestamp": str(i), "uri": payload})
                    event = await next_event(fast)
                    if event["eventType"] == "event_stream_detached":
                        dropped_after = i
                        event = await next_event(fast)
                    assert event["eventType"] == "api_post_event" and event["timestamp"] == str(i)
                    if dropped_after is not None:
                        break
                assert dropped_after is not None, "the stalled stream was never dropped"
                assert len(bus) == 1
                bus.publish({"eventType": "api_post_event", "timestamp": "after", "uri": ""})
                assert (await next_event(fast))["timestamp"] == "after"
                assert await drained_to_the_end(slow)
            finally:
                slow.close()
                fast.close()

    run(body)


def test_a_client_that_goes_away_is_detached() -> None:
    leader = Node(heartbeat=0.05)  # the server notices a closed client at its next write

    async def body() -> None:
        async with serving(leader) as http:
            staying = await http.get(f"{leader.url}/v2/events?event_type=event_stream_detached", headers=SSE)
            leaving = await http.get(f"{leader.url}/v2/events", headers=SSE)
            assert (await next_event(leaving))["eventType"] == "event_stream_attached"
            leaving.close()
            detached = await next_event(staying)
            assert detached["eventType"] == "event_stream_detached" and detached["remoteAddress"] == HOST
            await until(lambda: len(leader.bus) == 1)
            staying.close()

    run(body)


# ---------------------------------------------------------------- TLS


@pytest.mark.skipif(
    shutil.which("openssl") is None, reason="needs the openssl CLI for a self-signed certificate"
)
def test_https_from_pem_files_and_a_standby_proxying_to_it(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    auth = BasicAuth("ops:pa55")
    leader = Node(tls=server_ssl_context(cert, key), auth=auth)
    # the certificate names localhost, we dial 127.0.0.1: Marathon's --leader_proxy_ssl_ignore_hostname
    client_ssl = leader_ssl_context(cert, check_hostname=False)
    standby = Node(leader=leader, auth=auth, scheme="https", client_ssl=client_ssl)

    async def body() -> None:
        async with serving(leader, standby) as http:
            trusted = ssl.create_default_context(cafile=str(cert))
            trusted.check_hostname = False
            pong = await http.get(f"{leader.url}/ping", headers=basic("ops", "pa55"), ssl=trusted)
            assert pong.status == 200 and await pong.text() == "pong"
            assert pong.headers["X-Marathon-Leader"] == f"https://{leader.me}"
            refused = await http.get(f"{leader.url}/ping", ssl=trusted)
            assert refused.status == 401
            info = await http.get(f"{standby.url}/v2/info", headers=basic("ops", "pa55"))
            assert (await info.json())["elected"] is True

    run(body)
