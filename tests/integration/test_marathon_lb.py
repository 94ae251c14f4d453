"""marathon_py.lb with the real HAProxy (Debian's 2.6): a fake Marathon (aiohttp, ``/v2/apps`` and an SSE
``/v2/events``, behind basic auth, with a standby that redirects the stream) whose two tasks point at two
loopback HTTP backends; the bridge follows it and HAProxy routes (reference §9.2). Covered: both backends
reached through the service port and a vhost; a task turning unhealthy leaves the rotation after one event;
a dropped event stream is reattached and re-read; a config ``haproxy -c`` rejects is never installed (the
old one keeps serving; the bridge leaves the offending app out); reloads under a steady stream of new
connections drop none and keep the listening socket; a killed HAProxy is started again; ``--reload-command``
for an HAProxy run by others; the CLI serves and stops its HAProxy.

HAProxy runs as the current user with the config in a temporary directory (no chroot, user or daemon
directives); every master started is killed when its test ends, whatever happened.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import random
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from marathon_py.lb.bridge import Bridge, BridgeConfig, MarathonClient
from marathon_py.lb.config import LbOptions, render_config
from marathon_py.lb.haproxy import HAProxy, Outcome

HOST = "127.0.0.1"
WAIT = 20.0  # every single wait is bounded by this
AUTH = ("lb", "s3cret")

pytestmark = pytest.mark.skipif(
    shutil.which("haproxy") is None, reason="needs Debian's haproxy (apt-get install haproxy)"
)


def run(body: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(body(), 120))


@pytest.fixture
def lb_dir() -> Iterator[Path]:
    """A short directory (unix socket paths are limited) whose HAProxy masters die with the test."""
    path = Path(tempfile.mkdtemp(prefix="mlb-"))
    try:
        yield path
    finally:
        for pid_file in path.glob("*.pid"):  # a master leads its own process group, workers included
            with contextlib.suppress(ValueError, ProcessLookupError, PermissionError):
                os.killpg(int(pid_file.read_text().split()[0]), signal.SIGKILL)
        shutil.rmtree(path, ignore_errors=True)


async def until(check: Callable[[], bool | Awaitable[bool]], what: str) -> None:
    """Poll ``check`` (plain or async) until it holds; fail after WAIT seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while True:
        result = check()
        if result if isinstance(result, bool) else await result:
            return
        if loop.time() > deadline:
            raise AssertionError(f"not within {WAIT:g}s: {what}")
        await asyncio.sleep(0.05)


def frontend_ports(n: int) -> list[int]:
    """``n`` distinct free ports for HAProxy frontends, below the ephemeral range.

    HAProxy binds them later (at a reload) while the test's clients open hundreds of connections; a port from
    the bind-0 trick lies in the ephemeral range, so one of those connections could take it as its source
    port in between and make the reload fail. Marathon's service ports (10000-20000) stay below it too.
    """
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    ports: list[int] = []
    for port in random.sample(range(20000, low), 200):
        with socket.socket() as probe:
            try:
                probe.bind((HOST, port))
            except OSError:
                continue
        ports.append(port)
        if len(ports) == n:
            return ports
    raise RuntimeError("no free ports below the ephemeral range")


def listeners(port: int) -> list[int]:
    """Inodes of the kernel's listening sockets on ``port`` (``/proc/net/tcp``, state 0A = LISTEN)."""
    rows = (line.split() for line in Path("/proc/net/tcp").read_text().splitlines()[1:])
    return sorted(int(r[9]) for r in rows if r[3] == "0A" and int(r[1].rsplit(":", 1)[1], 16) == port)


def bound_socket() -> socket.socket:
    """A listening socket on a port the kernel picked (no window in which someone else takes it)."""
    sock = socket.socket()
    sock.bind((HOST, 0))
    sock.listen(128)
    return sock


class LoopbackServer:
    """An aiohttp app on a port the kernel picked."""

    def __init__(self, routes: list[web.RouteDef]) -> None:
        self.sock = bound_socket()
        self.port = self.sock.getsockname()[1]
        self.url = f"http://{HOST}:{self.port}"
        app = web.Application()
        app.add_routes(routes)
        self.runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)

    async def start(self) -> None:
        await self.runner.setup()
        await web.SockSite(self.runner, self.sock).start()

    async def stop(self) -> None:
        await self.runner.cleanup()


class Backend(LoopbackServer):
    """A task: answers every path (HAProxy's checks included) with its name."""

    def __init__(self, name: str) -> None:
        super().__init__([web.get("/{tail:.*}", self.handle)])
        self.name = name

    async def handle(self, request: web.Request) -> web.Response:
        return web.Response(text=self.name)


class FakeMarathon(LoopbackServer):
    """``GET /v2/apps?embed=apps.tasks`` and ``GET /v2/events`` behind basic auth, as Marathon 1.10."""

    def __init__(self) -> None:
        super().__init__([web.get("/v2/apps", self.get_apps), web.get("/v2/events", self.events)])
        self.apps: list[dict[str, Any]] = []
        self.app_reads = 0
        self.stream_queries: list[str] = []
        self._streams: list[asyncio.Queue[bytes | None]] = []

    def _authorized(self, request: web.Request) -> bool:
        token = base64.b64encode(":".join(AUTH).encode()).decode()
        return request.headers.get("Authorization") == f"Basic {token}"

    async def get_apps(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return web.json_response({"message": "Invalid username or password."}, status=401)
        assert request.query.getall("embed") == ["apps.tasks"]
        self.app_reads += 1
        return web.json_response({"apps": self.apps})

    async def events(self, request: web.Request) -> web.StreamResponse:
        if not self._authorized(request):
            return web.json_response({"message": "Invalid username or password."}, status=401)
        if request.headers.get("Accept") != "text/event-stream":
            return web.json_response({"message": "HTTP 405 Method Not Allowed"}, status=405)
        self.stream_queries.append(request.query_string)
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._streams.append(queue)
        await resp.write(self._frame("event_stream_attached", {"remoteAddress": HOST}))
        try:
            while (frame := await queue.get()) is not None:
                await resp.write(frame)
        finally:
            self._streams.remove(queue)
        return resp

    @staticmethod
    def _frame(kind: str, payload: dict[str, Any]) -> bytes:
        doc = {**payload, "eventType": kind, "timestamp": "2026-01-01T00:00:00.000Z"}
        return f"event: {kind}\r\ndata: {json.dumps(doc)}\r\n\r\n".encode()

    def emit(self, kind: str, **payload: Any) -> None:
        for queue in self._streams:
            queue.put_nowait(self._frame(kind, payload))

    def drop_streams(self) -> None:
        for queue in self._streams:
            queue.put_nowait(None)

    async def stop(self) -> None:
        self.drop_streams()
        await super().stop()


class Standby(LoopbackServer):
    """A Marathon that does not lead: proxies ``/v2/apps``, redirects ``/v2/events`` to the leader (§1.2)."""

    def __init__(self, leader: FakeMarathon) -> None:
        super().__init__([web.get("/v2/apps", leader.get_apps), web.get("/v2/events", self.events)])
        self.leader = leader
        self.redirects = 0

    async def events(self, request: web.Request) -> web.StreamResponse:
        self.redirects += 1
        raise web.HTTPFound(self.leader.url + request.path_qs)


HEALTH = {
    "protocol": "HTTP",
    "path": "/health",
    "portIndex": 0,
    "timeoutSeconds": 2,
    "intervalSeconds": 60,
    "gracePeriodSeconds": 300,
    "maxConsecutiveFailures": 3,
    "ignoreHttp1xx": False,
    "delaySeconds": 15,
}


def marathon_app(
    app_id: str, service_port: int, tasks: list[dict[str, Any]], **labels: str
) -> dict[str, Any]:
    """An app as ``GET /v2/apps?embed=apps.tasks`` shows it (the fields marathon-lb reads, §9.2)."""
    return {
        "id": app_id,
        "instances": len(tasks),
        "labels": {"HAPROXY_GROUP": "external", **labels},
        "portDefinitions": [{"port": service_port, "protocol": "tcp", "name": "http", "labels": {}}],
        "networks": [{"mode": "host"}],
        "healthChecks": [HEALTH],
        "tasks": tasks,
        "deployments": [],
        "versionInfo": {"lastScalingAt": "2026-01-01T00:00:00.000Z"},
    }


def marathon_task(task_id: str, host: str, port: int, alive: bool = True) -> dict[str, Any]:
    return {
        "id": task_id,
        "host": host,
        "ports": [port],
        "state": "TASK_RUNNING",
        "ipAddresses": [{"ipAddress": HOST, "protocol": "IPv4"}],
        "healthCheckResults": [{"alive": alive, "consecutiveFailures": 0, "taskId": task_id}],
    }


async def hit(session: aiohttp.ClientSession, port: int, host: str | None = None) -> str:
    """One request on a new connection: the backend's name, or what went wrong."""
    headers = {"Host": host} if host else {}
    try:
        async with session.get(f"http://{HOST}:{port}/", headers=headers) as resp:
            text = await resp.text()
            return text if resp.status == 200 else f"HTTP {resp.status}"
    except (aiohttp.ClientError, TimeoutError) as e:
        return f"error {e!r}"


async def answers(session: aiohttp.ClientSession, port: int, n: int, host: str | None = None) -> list[str]:
    return [await hit(session, port, host) for _ in range(n)]


@asynccontextmanager
async def cluster() -> AsyncIterator[tuple[FakeMarathon, Backend, Backend, aiohttp.ClientSession]]:
    """A fake Marathon, backends "a" and "b", and a client that opens a new connection per request."""
    async with AsyncExitStack() as stack:
        parts = (FakeMarathon(), Backend("a"), Backend("b"))
        for part in parts:
            await part.start()
            stack.push_async_callback(part.stop)
        connector = aiohttp.TCPConnector(force_close=True)
        session = aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=5))
        stack.push_async_callback(session.close)
        yield (*parts, session)


@asynccontextmanager
async def bridged(lb_dir: Path, options: LbOptions, *urls: str) -> AsyncIterator[Bridge]:
    """The bridge following Marathon at ``urls`` until the block ends; its HAProxy is stopped in any case."""
    cfg = BridgeConfig(
        marathons=urls,
        options=options,
        auth=AUTH,
        debounce=0.05,
        backoff_initial=0.1,
        max_backoff=0.5,
    )
    async with aiohttp.ClientSession() as session:
        haproxy = HAProxy(lb_dir / "haproxy.cfg")
        bridge = Bridge(cfg, MarathonClient(session, cfg), haproxy)
        task = asyncio.create_task(bridge.run())
        try:
            yield bridge
        finally:
            bridge.stop()
            try:
                await asyncio.wait_for(task, WAIT)
            finally:
                await haproxy.stop()


def lb_options(http_port: int | None = None, stats_port: int | None = None) -> LbOptions:
    """Everything on loopback; the fixed frontends only when a test asks for them."""
    return LbOptions(
        bind_address=HOST, http_port=http_port, appid_port=None, stats_port=stats_port, maxconn=2000
    )


def test_bridge_routes_to_healthy_tasks_and_follows_events(
    lb_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="marathon_py.lb")  # the bridge's story, shown if the test fails

    async def body() -> None:
        async with cluster() as (marathon, a, b, session):
            web_port, http_port, stats_port = frontend_ports(3)
            tasks = [marathon_task("web.a", HOST, a.port), marathon_task("web.b", "localhost", b.port)]
            marathon.apps = [marathon_app("/web", web_port, tasks, HAPROXY_0_VHOST="web.example")]
            options = lb_options(http_port=http_port, stats_port=stats_port)
            async with AsyncExitStack() as stack:
                standby = Standby(marathon)
                await standby.start()
                stack.push_async_callback(standby.stop)
                # a Marathon that refuses, a standby (apps proxied, events redirected), the leader
                urls = ("http://127.0.0.1:9", standby.url, marathon.url)
                bridge = await stack.enter_async_context(bridged(lb_dir, options, *urls))

                async def reaches_both() -> bool:
                    return set(await answers(session, web_port, 4)) == {"a", "b"}

                await until(reaches_both, "both tasks behind the service port")
                assert set(await answers(session, http_port, 4, host="web.example:80")) == {"a", "b"}
                assert await hit(session, http_port, host="other.example") == "HTTP 503"
                for path in ("/_haproxy_health_check", "/haproxy?stats"):
                    async with session.get(f"http://{HOST}:{stats_port}{path}") as resp:
                        assert resp.status == 200
                assert standby.redirects >= 1  # the stream followed the 302, credentials and all
                assert marathon.stream_queries and "plan-format=light" in marathon.stream_queries[0]
                assert "event_type=health_status_changed_event" in marathon.stream_queries[0]

                # b turns unhealthy: one event, and it leaves the rotation (b itself still answers 200)
                reads = marathon.app_reads
                tasks[1]["healthCheckResults"][0]["alive"] = False
                marathon.emit("health_status_changed_event", appId="/web", instanceId="web.b", alive=False)

                async def only_a() -> bool:
                    return await answers(session, web_port, 6) == ["a"] * 6

                await until(only_a, "b out of the rotation")
                assert await answers(session, web_port, 20) == ["a"] * 20
                assert marathon.app_reads > reads
                assert (await bridge.haproxy.show_proc()).reloads >= 1  # a reload, not a restart

                # the event stream drops; b recovers meanwhile, unannounced: the reattached stream re-reads
                tasks[1]["healthCheckResults"][0]["alive"] = True
                marathon.drop_streams()
                await until(reaches_both, "b back after the stream was reattached")
                assert len(marathon.stream_queries) >= 2

                # a bad label makes the rendered config invalid: haproxy -c refuses it, the good app
                # posted with it is served, the bad one left out, and /web keeps serving throughout
                api_port, bad_port = frontend_ports(2)
                marathon.apps = [
                    *marathon.apps,
                    marathon_app("/api", api_port, [marathon_task("api.a", HOST, a.port)]),
                    marathon_app(
                        "/bad", bad_port, [marathon_task("bad.b", HOST, b.port)], HAPROXY_0_BALANCE="bogus"
                    ),
                ]
                marathon.emit("api_post_event", uri="/v2/apps/bad")

                async def api_served() -> bool:
                    return await hit(session, api_port) == "a"

                await until(api_served, "the valid part of the new config")
                assert (await hit(session, bad_port)).startswith("error")
                assert set(await answers(session, web_port, 4)) == {"a", "b"}
                live = bridge.haproxy.config_path.read_text()
                assert "api_" in live and "bogus" not in live
                assert "balance bogus" in bridge.haproxy.rejected_path.read_text()

    run(body)


def test_bridge_restarts_an_haproxy_that_died(lb_dir: Path) -> None:
    async def body() -> None:
        async with cluster() as (marathon, a, _, session):
            (port,) = frontend_ports(1)
            marathon.apps = [marathon_app("/web", port, [marathon_task("web.a", HOST, a.port)])]
            async with bridged(lb_dir, lb_options(), marathon.url) as bridge:

                async def served() -> bool:
                    return await hit(session, port) == "a"

                await until(served, "the first HAProxy")
                first = bridge.haproxy.master_pid
                assert first is not None
                os.killpg(first, signal.SIGKILL)
                await until(lambda: bridge.haproxy.master_pid not in (None, first), "a new master")
                await until(served, "the new HAProxy")

    run(body)


def test_invalid_config_is_rejected_and_the_old_one_keeps_serving(lb_dir: Path) -> None:
    async def body() -> None:
        async with cluster() as (_, a, b, session):
            (port,) = frontend_ports(1)
            tasks = [marathon_task("web.a", HOST, a.port), marathon_task("web.b", HOST, b.port)]
            good = render_config([marathon_app("/web", port, tasks)], lb_options()).text
            bad = render_config(
                [marathon_app("/web", port, tasks, HAPROXY_0_BALANCE="bogus")], lb_options()
            ).text
            haproxy = HAProxy(lb_dir / "haproxy.cfg")
            try:
                assert (await haproxy.apply(good)).outcome is Outcome.STARTED
                before = await haproxy.show_proc()
                applied = await haproxy.apply(bad)
                assert applied.outcome is Outcome.INVALID and "balance" in applied.detail
                assert haproxy.config_path.read_text() == good
                assert set(await answers(session, port, 4)) == {"a", "b"}
                after = await haproxy.show_proc()
                assert (after.reloads, after.newest_worker) == (before.reloads, before.newest_worker)
                assert (await haproxy.apply(good)).outcome is Outcome.UNCHANGED
            finally:
                await haproxy.stop()

    run(body)


def test_an_haproxy_run_by_others_is_reloaded_by_command(lb_dir: Path) -> None:
    """``--reload-command`` (e.g. ``systemctl reload haproxy`` for Debian's unit): run once per new config."""

    async def body() -> None:
        runs = lb_dir / "runs"
        record = [sys.executable, "-c", f"open({str(runs)!r}, 'a').write('reload\\n')"]
        (port,) = frontend_ports(1)
        texts = [
            render_config(
                [marathon_app("/web", port, [marathon_task(f"web.{n}", HOST, 31000 + n)])], lb_options()
            ).text
            for n in range(2)
        ]
        haproxy = HAProxy(lb_dir / "haproxy.cfg", manage=False, reload_command=record)
        assert (await haproxy.apply(texts[0])).outcome is Outcome.RELOADED
        assert (await haproxy.apply(texts[0])).outcome is Outcome.UNCHANGED
        assert (await haproxy.apply(texts[1])).outcome is Outcome.RELOADED
        assert runs.read_text() == "reload\nreload\n" and haproxy.config_path.read_text() == texts[1]
        failing = HAProxy(
            lb_dir / "haproxy.cfg", manage=False, reload_command=[sys.executable, "-c", "exit(3)"]
        )
        assert (await failing.apply(texts[1])).outcome is Outcome.UNCHANGED  # what is on disk is served
        assert (await failing.apply(texts[0])).outcome is Outcome.FAILED

    run(body)


def test_reloads_drop_no_connection(lb_dir: Path) -> None:
    """New connections keep arriving from 4 clients while HAProxy reloads 6 times: every one is answered.

    Each reload alternates the balance algorithm so the config really changes and a new worker takes over;
    the test waits for requests to complete between reloads so the stream overlaps every one of them. On
    loopback even plain ``-sf`` rarely loses a connection (the window is short), so the test also checks
    the mechanism: the port's listening socket stays the same kernel object across every reload (plain
    ``-sf`` binds a new one and resets what waits in the old one's accept queue).
    """

    async def body() -> None:
        async with cluster() as (_, a, b, session):
            (port,) = frontend_ports(1)
            tasks = [marathon_task("web.a", HOST, a.port), marathon_task("web.b", HOST, b.port)]

            def text(balance: str) -> str:
                return render_config(
                    [marathon_app("/web", port, tasks, HAPROXY_0_BALANCE=balance)], lb_options()
                ).text

            haproxy = HAProxy(lb_dir / "haproxy.cfg")
            done: list[str] = []
            stop = asyncio.Event()

            async def client() -> None:
                while not stop.is_set():
                    done.append(await hit(session, port))

            try:
                assert (await haproxy.apply(text("roundrobin"))).outcome is Outcome.STARTED
                clients = [asyncio.create_task(client()) for _ in range(4)]
                workers = {(await haproxy.show_proc()).newest_worker}
                listening = listeners(port)
                assert len(listening) == 1
                for i in range(6):
                    mark = len(done)
                    await until(lambda mark=mark: len(done) > mark + 20, "requests flowing")
                    applied = await haproxy.apply(text("leastconn" if i % 2 == 0 else "roundrobin"))
                    assert applied.outcome is Outcome.RELOADED, applied
                    workers.add((await haproxy.show_proc()).newest_worker)
                    assert listeners(port) == listening  # handed over, never closed and re-bound
                mark = len(done)
                await until(lambda: len(done) > mark + 20, "requests after the last reload")
                stop.set()
                await asyncio.gather(*clients)
            finally:
                stop.set()
                await haproxy.stop()
            assert len(workers) == 7  # every reload handed over to a new worker
            failures = [r for r in done if r not in ("a", "b")]
            assert failures == [] and len(done) > 140

    run(body)


def test_cli_serves_until_sigterm_and_takes_haproxy_along(lb_dir: Path) -> None:
    async def body() -> None:
        async with cluster() as (marathon, a, _, session):
            (port,) = frontend_ports(1)
            marathon.apps = [marathon_app("/web", port, [marathon_task("web.a", HOST, a.port)])]
            config = lb_dir / "haproxy.cfg"
            common = [
                "--marathon",
                marathon.url,
                "--auth-credentials",
                ":".join(AUTH),
                "--bind-address",
                HOST,
            ]
            common += ["--http-port", "0", "--appid-port", "0", "--stats-port", "0", "--maxconn", "2000"]
            lb = [sys.executable, "-m", "marathon_py", "lb", *common, "--haproxy-config", str(config)]

            dry = await asyncio.create_subprocess_exec(*lb, "--dry", stdout=asyncio.subprocess.PIPE)
            out, _ = await asyncio.wait_for(dry.communicate(), WAIT)
            assert dry.returncode == 0 and f"frontend web_{port}\n" in out.decode() and not config.exists()

            once = await asyncio.create_subprocess_exec(*lb, "--once")
            assert await asyncio.wait_for(once.wait(), WAIT) == 0
            assert f"frontend web_{port}\n" in config.read_text()
            assert await hit(session, port) != "a"  # --once installs the file; nobody was started

            daemon = await asyncio.create_subprocess_exec(*lb, "--debounce", "0.05")
            try:

                async def served() -> bool:
                    return await hit(session, port) == "a"

                await until(served, "the daemon's HAProxy")
                master = int((lb_dir / "haproxy.cfg.pid").read_text().split()[0])
                daemon.send_signal(signal.SIGTERM)
                assert await asyncio.wait_for(daemon.wait(), WAIT) == 0

                async def master_gone() -> bool:
                    try:
                        os.kill(master, 0)
                    except ProcessLookupError:
                        return True
                    return False

                await until(master_gone, "HAProxy stopped with the bridge")
                assert (await hit(session, port)).startswith("error")
            finally:
                if daemon.returncode is None:
                    daemon.kill()
                    await daemon.wait()

    run(body)
